package dns

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// ResolvConf returns the resolv.conf for a pod in namespace ns: the node's
// DNS server, the cluster search path and ndots:5 (so a short name such as
// "web" or "web.other" is tried inside the cluster first), plus any extra
// options ("timeout:2", "attempts:3", ...). Domain "" means cluster.local.
func ResolvConf(ns, nameserver, domain string, options ...string) []byte {
	if domain == "" {
		domain = "cluster.local"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "search %s.svc.%s svc.%s %s\n", ns, domain, domain, domain)
	fmt.Fprintf(&b, "nameserver %s\n", nameserver)
	b.WriteString("options ndots:5")
	for _, o := range options {
		b.WriteString(" " + o)
	}
	b.WriteString("\n")
	return []byte(b.String())
}

// ParseResolvConf returns the nameserver addresses of a resolv.conf as
// "ip:53" (or "[ip]:53"), in order. Lines it does not understand are
// skipped, as the C library does; IPv6 zones are kept.
func ParseResolvConf(r io.Reader) []string {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		ip, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		out = append(out, netip.AddrPortFrom(ip, 53).String())
	}
	return out
}
