// Package iptables is moor's fallback service proxy backend for hosts that
// must stay on iptables: it renders a proxy.Table as one
// `iptables-restore --noflush` text (nat and filter tables, chains named
// MOOR- plus a hash, stale MOOR- chains deleted) and applies it in one call.
//
// Render is pure and golden-tested; Backend runs iptables-restore (inside
// the configured network namespace via nsenter). It touches only chains
// whose names start with MOOR- and the jumps to them from built-in chains.
package iptables

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/moor-dev/moor/netplane/proxy"
)

// Fixed chains (in both nat and filter unless noted).
const (
	ChainServices    = "MOOR-SERVICES"    // nat: VIP dispatch; filter: VIP rejects
	ChainNodePorts   = "MOOR-NODEPORTS"   // nat: NodePort dispatch
	ChainExternal    = "MOOR-EXTERNAL"    // filter: NodePort rejects
	ChainPostrouting = "MOOR-POSTROUTING" // nat: masquerade marked packets
	ChainMarkMasq    = "MOOR-MARK-MASQ"   // nat: set the masquerade mark
	masqMark         = "0x4000"
)

// Options are the parts of proxy.Config the renderer needs.
type Options struct {
	ClusterCIDR   netip.Prefix
	MasqueradeAll bool
}

// Chain is one nat chain a service owns, with its rules as restore lines
// without the leading "-A NAME".
type Chain struct {
	Name  string
	Rules []string
}

// Fragment is what one service contributes: its own nat chains and its
// lines in the shared chains.
type Fragment struct {
	Key, Hash string
	Chains    []Chain
	Services  []string // nat MOOR-SERVICES
	NodePorts []string // nat MOOR-NODEPORTS
	Filter    []string // filter MOOR-SERVICES
	External  []string // filter MOOR-EXTERNAL
}

func chainName(kind, id string) string { return "MOOR-" + kind + "-" + proxy.ShortHash(id, 16) }

func proto(p proxy.Protocol) string { return strings.ToLower(string(p)) }

// RenderService renders one sorted service; nil for headless or portless.
func RenderService(s *proxy.Service, o Options) *Fragment {
	if s.Headless() || len(s.Ports) == 0 {
		return nil
	}
	f := &Fragment{Key: s.Key(), Hash: s.Hash()}
	for i := range s.Ports {
		p := &s.Ports[i]
		id := proxy.PortID(s, p)
		pr := proto(p.Protocol)
		match := fmt.Sprintf("-d %s/32 -p %s -m %s --dport %d", s.ClusterIP, pr, pr, p.Port)
		npMatch := fmt.Sprintf("-p %s -m %s --dport %d", pr, pr, p.NodePort)
		comment := fmt.Sprintf("-m comment --comment %q", id)
		ready := p.ReadyEndpoints()
		if len(ready) == 0 {
			f.Filter = append(f.Filter, fmt.Sprintf("%s %s -j REJECT", comment, match))
			if p.NodePort != 0 {
				f.External = append(f.External, fmt.Sprintf("%s -m addrtype --dst-type LOCAL %s -j REJECT", comment, npMatch))
			}
			continue
		}
		svc := Chain{Name: chainName("SVC", id)}
		f.Services = append(f.Services, fmt.Sprintf("%s %s -j %s", comment, match, svc.Name))
		switch {
		case o.MasqueradeAll:
			svc.Rules = append(svc.Rules, fmt.Sprintf("%s -j %s", match, ChainMarkMasq))
		case o.ClusterCIDR.IsValid():
			svc.Rules = append(svc.Rules, fmt.Sprintf("! -s %s %s -j %s", o.ClusterCIDR.Masked(), match, ChainMarkMasq))
		}
		seps := make([]Chain, len(ready))
		for j, e := range ready {
			to := netip.AddrPortFrom(e.IP, e.Port)
			sep := Chain{Name: chainName("SEP", id+"|"+to.String())}
			if e.Local {
				sep.Rules = append(sep.Rules, fmt.Sprintf("-s %s/32 -j %s", e.IP, ChainMarkMasq))
			}
			recent := ""
			if s.SessionAffinity == proxy.AffinityClientIP {
				recent = fmt.Sprintf(" -m recent --name %s --set", sep.Name)
			}
			sep.Rules = append(sep.Rules, fmt.Sprintf("-p %s%s -m %s -j DNAT --to-destination %s", pr, recent, pr, to))
			seps[j] = sep
		}
		if s.SessionAffinity == proxy.AffinityClientIP {
			for _, sep := range seps {
				svc.Rules = append(svc.Rules, fmt.Sprintf("-m recent --name %s --rcheck --seconds %d --reap -j %s", sep.Name, s.Timeout(), sep.Name))
			}
		}
		for j, sep := range seps {
			if left := len(seps) - j; left > 1 {
				svc.Rules = append(svc.Rules, fmt.Sprintf("-m statistic --mode random --probability %.10f -j %s", 1/float64(left), sep.Name))
			} else {
				svc.Rules = append(svc.Rules, "-j "+sep.Name)
			}
		}
		f.Chains = append(f.Chains, svc)
		if p.NodePort != 0 {
			ext := Chain{Name: chainName("EXT", id), Rules: []string{"-j " + ChainMarkMasq, "-j " + svc.Name}}
			f.Chains = append(f.Chains, ext)
			f.NodePorts = append(f.NodePorts, fmt.Sprintf("%s %s -j %s", comment, npMatch, ext.Name))
		}
		f.Chains = append(f.Chains, seps...)
	}
	return f
}

// Render renders every service of a sorted table.
func Render(t *proxy.Table, o Options) []*Fragment {
	var out []*Fragment
	for i := range t.Services {
		if f := RenderService(&t.Services[i], o); f != nil {
			out = append(out, f)
		}
	}
	return out
}

// Text builds the iptables-restore --noflush input: the shared chains are
// always rewritten whole; a service's own chains only when write is nil or
// names its key; stale chains are flushed and deleted.
func Text(frags []*Fragment, write map[string]bool, stale []string) string {
	var b strings.Builder
	line := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	b.WriteString("*nat\n")
	for _, c := range []string{ChainServices, ChainNodePorts, ChainPostrouting, ChainMarkMasq} {
		line(":%s - [0:0]", c)
	}
	for _, f := range frags {
		if write == nil || write[f.Key] {
			for _, c := range f.Chains {
				line(":%s - [0:0]", c.Name)
			}
		}
	}
	slices.Sort(stale)
	for _, c := range stale {
		line(":%s - [0:0]", c)
	}
	line("-A %s -j MARK --or-mark %s", ChainMarkMasq, masqMark)
	line("-A %s -m mark ! --mark %s/%s -j RETURN", ChainPostrouting, masqMark, masqMark)
	line("-A %s -j MARK --xor-mark %s", ChainPostrouting, masqMark)
	line("-A %s -j MASQUERADE --random-fully", ChainPostrouting)
	for _, f := range frags {
		for _, r := range f.Services {
			line("-A %s %s", ChainServices, r)
		}
		for _, r := range f.NodePorts {
			line("-A %s %s", ChainNodePorts, r)
		}
	}
	line("-A %s ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j %s", ChainServices, ChainNodePorts)
	for _, f := range frags {
		if write == nil || write[f.Key] {
			for _, c := range f.Chains {
				for _, r := range c.Rules {
					line("-A %s %s", c.Name, r)
				}
			}
		}
	}
	for _, c := range stale {
		line("-X %s", c)
	}
	b.WriteString("COMMIT\n*filter\n")
	line(":%s - [0:0]", ChainServices)
	line(":%s - [0:0]", ChainExternal)
	for _, f := range frags {
		for _, r := range f.Filter {
			line("-A %s %s", ChainServices, r)
		}
		for _, r := range f.External {
			line("-A %s %s", ChainExternal, r)
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// Jumps are the rules in built-in chains that enter moor's chains.
var Jumps = []struct{ Table, Chain, Target string }{
	{"nat", "PREROUTING", ChainServices},
	{"nat", "OUTPUT", ChainServices},
	{"nat", "POSTROUTING", ChainPostrouting},
	{"filter", "INPUT", ChainServices},
	{"filter", "INPUT", ChainExternal},
	{"filter", "FORWARD", ChainServices},
	{"filter", "OUTPUT", ChainServices},
}
