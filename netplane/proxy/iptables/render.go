// Package iptables is moor's fallback service proxy backend for hosts that
// must stay on iptables: it renders a proxy.Table as one
// `iptables-restore --noflush` text (nat and filter tables, one chain per
// service port named MOOR-SVC- plus a hash, stale MOOR- chains deleted) and
// applies it in one call. A partial sync sends only the changed services'
// chains and their lines in the shared chains (PartialText).
//
// Render, Text and PartialText are pure and golden-tested; Backend runs the
// iptables tools (inside the configured network namespace via nsenter). It
// touches only the chains Owned reports (MOOR-PODNET-* belong to
// netplane/podnet) and the jumps to them from built-in chains.
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
	Key       string
	Chains    []Chain  // nat: MOOR-SVC-* per port with ready endpoints, MOOR-EXT-* per such NodePort
	Services  []string // nat MOOR-SERVICES
	NodePorts []string // nat MOOR-NODEPORTS
	Filter    []string // filter MOOR-SERVICES
	External  []string // filter MOOR-EXTERNAL
	// Hairpin lists the ready local endpoints, sorted: an endpoint reaching
	// itself through the service is masqueraded in MOOR-POSTROUTING.
	Hairpin []netip.Addr
}

func chainName(kind, id string) string { return "MOOR-" + kind + "-" + proxy.ShortHash(id, 16) }

func proto(p proxy.Protocol) string { return strings.ToLower(string(p)) }

// RenderService renders one sorted service; nil for headless or portless.
//
// A port with ready endpoints gets one chain, MOOR-SVC-<hash>, which marks
// traffic for masquerading and DNATs straight to an endpoint with a cascade
// of `-m statistic` rules, as kube-proxy does but without its per-endpoint
// chains: iptables-restore (nf_tables flavour) spends time per rule in
// proportion to the number of chains, so ten endpoints' chains per service
// made a 10k-service load take tens of minutes. ClientIP affinity needs no
// chain either: `-m recent --update` rules, one per endpoint, come first,
// and the statistic rule that picks an endpoint also records it.
func RenderService(s *proxy.Service, o Options) *Fragment {
	if s.Headless() || len(s.Ports) == 0 {
		return nil
	}
	f := &Fragment{Key: s.Key()}
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
			svc.Rules = append(svc.Rules, "-j "+ChainMarkMasq)
		case o.ClusterCIDR.IsValid():
			svc.Rules = append(svc.Rules, fmt.Sprintf("! -s %s -j %s", o.ClusterCIDR.Masked(), ChainMarkMasq))
		}
		affinity := s.SessionAffinity == proxy.AffinityClientIP
		// recent names the -m recent list remembering the clients of
		// endpoint e (named like kube-proxy's per-endpoint chains).
		recent := func(to netip.AddrPort) string { return chainName("SEP", id+"|"+to.String()) }
		if affinity {
			for _, e := range ready {
				to := netip.AddrPortFrom(e.IP, e.Port)
				svc.Rules = append(svc.Rules, fmt.Sprintf("-p %s -m recent --name %s --update --seconds %d --reap -j DNAT --to-destination %s",
					pr, recent(to), s.Timeout(), to))
			}
		}
		for j, e := range ready {
			to := netip.AddrPortFrom(e.IP, e.Port)
			r := "-p " + pr
			if left := len(ready) - j; left > 1 {
				r += fmt.Sprintf(" -m statistic --mode random --probability %.10f", 1/float64(left))
			}
			if affinity {
				r += " -m recent --name " + recent(to) + " --set"
			}
			svc.Rules = append(svc.Rules, r+" -j DNAT --to-destination "+to.String())
			if e.Local {
				f.Hairpin = append(f.Hairpin, e.IP)
			}
		}
		f.Chains = append(f.Chains, svc)
		if p.NodePort != 0 {
			ext := Chain{Name: chainName("EXT", id), Rules: []string{"-j " + ChainMarkMasq, "-j " + svc.Name}}
			f.Chains = append(f.Chains, ext)
			f.NodePorts = append(f.NodePorts, fmt.Sprintf("%s %s -j %s", comment, npMatch, ext.Name))
		}
	}
	slices.SortFunc(f.Hairpin, netip.Addr.Compare)
	f.Hairpin = slices.Compact(f.Hairpin)
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

// restore accumulates iptables-restore lines.
type restore struct{ strings.Builder }

func (b *restore) line(format string, a ...any) {
	fmt.Fprintf(b, format, a...)
	b.WriteByte('\n')
}

func (b *restore) declare(chains ...string) {
	for _, c := range chains {
		b.line(":%s - [0:0]", c)
	}
}

func (b *restore) postrouting(hairpin []netip.Addr) {
	for _, a := range hairpin {
		b.line("-A %s -s %s/32 -d %s/32 -j MASQUERADE --random-fully", ChainPostrouting, a, a)
	}
	b.line("-A %s -m mark ! --mark %s/%s -j RETURN", ChainPostrouting, masqMark, masqMark)
	b.line("-A %s -j MARK --xor-mark %s", ChainPostrouting, masqMark)
	b.line("-A %s -j MASQUERADE --random-fully", ChainPostrouting)
}

func (b *restore) rules(chains []Chain) {
	for _, c := range chains {
		for _, r := range c.Rules {
			b.line("-A %s %s", c.Name, r)
		}
	}
}

// Hairpin returns the sorted union of the fragments' hairpin addresses.
func Hairpin(frags []*Fragment) []netip.Addr {
	var out []netip.Addr
	for _, f := range frags {
		out = append(out, f.Hairpin...)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// Text builds the iptables-restore --noflush input of a full sync: every
// chain of moor's is flushed and written whole, stale chains are flushed
// and deleted.
func Text(frags []*Fragment, stale []string) string {
	var b restore
	b.WriteString("*nat\n")
	b.declare(ChainServices, ChainNodePorts, ChainPostrouting, ChainMarkMasq)
	for _, f := range frags {
		for _, c := range f.Chains {
			b.declare(c.Name)
		}
	}
	stale = slices.Sorted(slices.Values(stale))
	b.declare(stale...)
	b.line("-A %s -j MARK --or-mark %s", ChainMarkMasq, masqMark)
	b.postrouting(Hairpin(frags))
	for _, f := range frags {
		for _, r := range f.Services {
			b.line("-A %s %s", ChainServices, r)
		}
		for _, r := range f.NodePorts {
			b.line("-A %s %s", ChainNodePorts, r)
		}
	}
	b.line("-A %s %s", ChainServices, nodePortsJump)
	for _, f := range frags {
		b.rules(f.Chains)
	}
	for _, c := range stale {
		b.line("-X %s", c)
	}
	b.WriteString("COMMIT\n*filter\n")
	b.declare(ChainServices, ChainExternal)
	for _, f := range frags {
		for _, r := range f.Filter {
			b.line("-A %s %s", ChainServices, r)
		}
		for _, r := range f.External {
			b.line("-A %s %s", ChainExternal, r)
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// nodePortsJump ends nat MOOR-SERVICES: NodePorts on local addresses.
const nodePortsJump = "! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j " + ChainNodePorts

// Update replaces one service's fragment; Old is nil for an added service,
// New for a removed one.
type Update struct{ Old, New *Fragment }

// PartialText builds the iptables-restore --noflush input that turns a
// kernel holding every Old fragment into one holding the New ones, sending
// nothing of the unchanged services: the changed services' own chains are
// rewritten, those no longer needed deleted, and their lines in the shared
// chains deleted (-D) or added one by one. When rewriteHairpin is set,
// MOOR-POSTROUTING is rewritten with the complete hairpin list. It returns
// "" when there is nothing to do.
func PartialText(ups []Update, hairpin []netip.Addr, rewriteHairpin bool) string {
	var chains, stale []string
	var natDel, natAdd, filterDel, filterAdd restore
	var rules restore
	for _, u := range ups {
		o, n := u.Old, u.New
		if o == nil {
			o = &Fragment{}
		}
		if n == nil {
			n = &Fragment{}
		}
		keep := map[string]bool{}
		for _, c := range n.Chains {
			keep[c.Name] = true
			chains = append(chains, c.Name)
		}
		for _, c := range o.Chains {
			if !keep[c.Name] {
				stale = append(stale, c.Name)
			}
		}
		rules.rules(n.Chains)
		diffLines(&natDel, &natAdd, ChainServices, o.Services, n.Services, true)
		diffLines(&natDel, &natAdd, ChainNodePorts, o.NodePorts, n.NodePorts, false)
		diffLines(&filterDel, &filterAdd, ChainServices, o.Filter, n.Filter, false)
		diffLines(&filterDel, &filterAdd, ChainExternal, o.External, n.External, false)
	}
	var b restore
	if len(chains)+len(stale) > 0 || natDel.Len()+natAdd.Len() > 0 || rewriteHairpin {
		b.WriteString("*nat\n")
		b.declare(chains...)
		b.declare(stale...)
		if rewriteHairpin {
			b.declare(ChainPostrouting)
		}
		b.WriteString(natDel.String())
		b.WriteString(natAdd.String())
		b.WriteString(rules.String())
		if rewriteHairpin {
			b.postrouting(hairpin)
		}
		for _, c := range stale {
			b.line("-X %s", c)
		}
		b.WriteString("COMMIT\n")
	}
	if filterDel.Len()+filterAdd.Len() > 0 {
		b.WriteString("*filter\n")
		b.WriteString(filterDel.String())
		b.WriteString(filterAdd.String())
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// diffLines writes -D for the old lines of chain that are not among the new
// ones and adds the new ones that are not among the old; insert puts them
// first (nat MOOR-SERVICES must end with the NodePorts jump).
func diffLines(del, add *restore, chain string, old, new []string, insert bool) {
	for _, l := range old {
		if !slices.Contains(new, l) {
			del.line("-D %s %s", chain, l)
		}
	}
	for _, l := range new {
		if slices.Contains(old, l) {
			continue
		}
		if insert {
			add.line("-I %s 1 %s", chain, l)
		} else {
			add.line("-A %s %s", chain, l)
		}
	}
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

// Owned reports whether an iptables chain belongs to this backend (the
// MOOR-PODNET-* chains belong to netplane/podnet).
func Owned(chain string) bool {
	switch chain {
	case ChainServices, ChainNodePorts, ChainExternal, ChainPostrouting, ChainMarkMasq:
		return true
	}
	for _, p := range []string{"MOOR-SVC-", "MOOR-SEP-", "MOOR-EXT-"} {
		if strings.HasPrefix(chain, p) {
			return true
		}
	}
	return false
}
