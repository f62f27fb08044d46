package nft

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/moor-dev/moor/netplane/proxy"
)

// Options are the parts of proxy.Config the renderer needs.
type Options struct {
	ClusterCIDR   netip.Prefix
	MasqueradeAll bool
}

var loopback = netip.MustParsePrefix(loopbackPrefixString)

// Render turns a sorted, valid table into the complete ruleset.
func Render(t *proxy.Table, o Options) *Ruleset {
	rs := Base()
	for i := range t.Services {
		if f := RenderService(&t.Services[i], o); f != nil {
			rs.Services = append(rs.Services, f)
		}
	}
	rs.Selects = SelectChains(rs.Services, o)
	return rs
}

// Base returns the fixed maps and chains every table has.
func Base() *Ruleset {
	nat := func(hook string, prio int32) *Hook { return &Hook{Type: "nat", Hook: hook, Priority: prio} }
	filter := func(hook string) *Hook { return &Hook{Type: "filter", Hook: hook, Priority: -110} }
	jump := func(c string) Rule { return Rule{Verdict{Kind: "jump", Chain: c}} }
	return &Ruleset{
		Maps: []*MapDecl{
			{Name: MapServiceIPs, Key: KeyAddrProtoPort, Data: DataVerdict},
			{Name: MapServiceNodePorts, Key: KeyProtoPort, Data: DataVerdict},
			{Name: MapNoEndpointIPs, Key: KeyAddrProtoPort, Data: DataVerdict},
			{Name: MapNoEndpointPorts, Key: KeyProtoPort, Data: DataVerdict},
			{Name: MapAffinity, Key: KeyIDSaddr, Data: DataAddrPort, Dynamic: true},
			{Name: MapEndpoints, Key: KeyAddrProtoPortIndex, Data: DataAddrPort},
			{Name: MapNodePortEndpoints, Key: KeyProtoPortIndex, Data: DataAddrPort},
			{Name: SetHairpin, Key: KeySaddrDaddr},
		},
		Base: []*Chain{
			{Name: ChainServices, Rules: []Rule{
				{VmapLookup{Key: KeyAddrProtoPort, Map: MapServiceIPs}},
				{MatchFibLocal{}, MatchDaddr{Prefix: loopback, Not: true}, VmapLookup{Key: KeyProtoPort, Map: MapServiceNodePorts}},
			}},
			{Name: ChainMasquerading, Rules: []Rule{
				{MatchMark{}, SetMark{Clear: true}, Masquerade{}},
				{SetLookup{Key: KeySaddrDaddr, Set: SetHairpin}, Masquerade{}},
			}},
			{Name: ChainEndpointsCheck, Rules: []Rule{
				{VmapLookup{Key: KeyAddrProtoPort, Map: MapNoEndpointIPs}},
			}},
			{Name: ChainNodePortsCheck, Rules: []Rule{
				{VmapLookup{Key: KeyProtoPort, Map: MapNoEndpointPorts}},
			}},
			{Name: ChainReject, Rules: []Rule{
				{MatchProto{Proto: 6}, Reject{TCPReset: true}},
				{Reject{}},
			}},
			{Name: "nat-prerouting", Hook: nat("prerouting", -100), Rules: []Rule{jump(ChainServices)}},
			{Name: "nat-output", Hook: nat("output", -100), Rules: []Rule{jump(ChainServices)}},
			{Name: "nat-postrouting", Hook: nat("postrouting", 100), Rules: []Rule{jump(ChainMasquerading)}},
			{Name: "filter-input", Hook: filter("input"), Rules: []Rule{jump(ChainEndpointsCheck), jump(ChainNodePortsCheck)}},
			{Name: "filter-forward", Hook: filter("forward"), Rules: []Rule{jump(ChainEndpointsCheck)}},
			{Name: "filter-output", Hook: filter("output"), Rules: []Rule{jump(ChainEndpointsCheck)}},
		},
	}
}

// chainName makes a readable, unique, length-bounded chain name.
func chainName(prefix, id string) string {
	name := prefix + "-" + proxy.ShortHash(id, 8) + "-" + id
	if len(name) > 200 {
		name = name[:200]
	}
	return name
}

// id64 derives the 64-bit key of a service port in the endpoint map; at
// 64 bits collisions among even a million ports are negligible.
func id64(s string) uint64 {
	sum := sha256.Sum256([]byte(s))
	return binary.BigEndian.Uint64(sum[:8])
}

// masqRule marks VIP traffic for masquerading per Options; nil if none.
func (o Options) masqRule() Rule {
	switch {
	case o.MasqueradeAll:
		return Rule{SetMark{}}
	case o.ClusterCIDR.IsValid():
		return Rule{MatchSaddr{Prefix: o.ClusterCIDR.Masked(), Not: true}, SetMark{}}
	}
	return nil
}

// RenderSelect renders the shared chain choosing among n endpoints of a VIP
// (or NodePort) from the endpoint map; NodePort traffic is always
// masqueraded so replies come back through this node.
func RenderSelect(nodePort bool, n int, o Options) *Chain {
	c := &Chain{Name: SelectChain(nodePort, n)}
	if nodePort {
		c.Rules = append(c.Rules, Rule{SetMark{}},
			Rule{DNATSelect{Key: KeyProtoPort, N: n, Map: MapNodePortEndpoints}})
		return c
	}
	if r := o.masqRule(); r != nil {
		c.Rules = append(c.Rules, r)
	}
	c.Rules = append(c.Rules, Rule{DNATSelect{Key: KeyAddrProtoPort, N: n, Map: MapEndpoints}})
	return c
}

// RenderService renders one sorted service; nil for a headless service or
// one without ports. A port without affinity is only map elements: its VIP
// (and NodePort) go to the shared select chain for its endpoint count. A
// ClientIP-affinity port gets its own chain.
func RenderService(s *proxy.Service, o Options) *Fragment {
	if s.Headless() || len(s.Ports) == 0 {
		return nil
	}
	f := &Fragment{Key: s.Key()}
	var hairpin []netip.Addr
	for i := range s.Ports {
		p := &s.Ports[i]
		proto := p.Protocol.Number()
		ready := p.ReadyEndpoints()
		vip := Element{Map: MapServiceIPs, IP: s.ClusterIP, Proto: proto, Port: p.Port}
		np := Element{Map: MapServiceNodePorts, Proto: proto, Port: p.NodePort}
		if len(ready) == 0 {
			vip.Map, vip.Goto = MapNoEndpointIPs, ChainReject
			f.Elements = append(f.Elements, vip)
			if p.NodePort != 0 {
				np.Map, np.Goto = MapNoEndpointPorts, ChainReject
				f.Elements = append(f.Elements, np)
			}
			continue
		}
		for _, e := range ready {
			if e.Local {
				hairpin = append(hairpin, e.IP)
			}
		}
		if s.SessionAffinity == proxy.AffinityClientIP {
			renderAffinity(f, s, p, ready, o)
			continue
		}
		n := len(ready)
		vip.Goto = SelectChain(false, n)
		f.Elements = append(f.Elements, vip)
		f.Selects = append(f.Selects, n)
		for j, e := range ready {
			to := netip.AddrPortFrom(e.IP, e.Port)
			f.Elements = append(f.Elements, Element{Map: MapEndpoints, IP: s.ClusterIP, Proto: proto, Port: p.Port, Index: uint32(j), To: to})
			if p.NodePort != 0 {
				f.Elements = append(f.Elements, Element{Map: MapNodePortEndpoints, Proto: proto, Port: p.NodePort, Index: uint32(j), To: to})
			}
		}
		if p.NodePort != 0 {
			np.Goto = SelectChain(true, n)
			f.Elements = append(f.Elements, np)
			f.Selects = append(f.Selects, -n)
		}
	}
	slices.SortFunc(hairpin, func(a, b netip.Addr) int { return a.Compare(b) })
	f.Hairpin = slices.Compact(hairpin)
	slices.Sort(f.Selects)
	f.Selects = slices.Compact(f.Selects)
	return f
}

// renderAffinity gives a ClientIP port its own chain: reuse the client's
// recorded endpoint, else pick one uniformly (numgen random mod N-j == 0 on
// the j-th rule) and record it.
func renderAffinity(f *Fragment, s *proxy.Service, p *proxy.Port, ready []proxy.Endpoint, o Options) {
	id := proxy.PortID(s, p)
	proto := p.Protocol.Number()
	svc := &Chain{Name: chainName("svc", id)}
	if r := o.masqRule(); r != nil {
		svc.Rules = append(svc.Rules, r)
	}
	var epIDs strings.Builder
	for _, e := range ready {
		epIDs.WriteString(netip.AddrPortFrom(e.IP, e.Port).String() + ",")
	}
	// The affinity id covers the endpoints and timeout, so a change starts
	// afresh instead of pinning clients to gone endpoints; old entries
	// expire on their own.
	affID := id64(fmt.Sprint(id, "|", epIDs.String(), "|", s.Timeout()))
	svc.Rules = append(svc.Rules, Rule{MatchProto{Proto: proto}, DNATAffinity{ID: affID, Timeout: s.Timeout()}})
	for j, e := range ready {
		to := netip.AddrPortFrom(e.IP, e.Port)
		r := Rule{MatchProto{Proto: proto}}
		if left := len(ready) - j; left > 1 {
			r = append(r, NumgenZero{Mod: uint32(left)})
		}
		svc.Rules = append(svc.Rules, append(r, RecordAffinity{ID: affID, Timeout: s.Timeout(), To: to}, DNAT{To: to}))
	}
	f.Chains = append(f.Chains, svc)
	f.Elements = append(f.Elements, Element{Map: MapServiceIPs, IP: s.ClusterIP, Proto: proto, Port: p.Port, Goto: svc.Name})
	if p.NodePort != 0 {
		ext := &Chain{Name: chainName("ext", id), Rules: []Rule{{SetMark{}, Verdict{Kind: "goto", Chain: svc.Name}}}}
		f.Chains = append(f.Chains, ext)
		f.Elements = append(f.Elements, Element{Map: MapServiceNodePorts, Proto: proto, Port: p.NodePort, Goto: ext.Name})
	}
}

// SelectChains renders the select chains the fragments need (negative N
// means the NodePort variant), sorted.
func SelectChains(frags []*Fragment, o Options) []*Chain {
	need := map[int]bool{}
	for _, f := range frags {
		for _, n := range f.Selects {
			need[n] = true
		}
	}
	ns := make([]int, 0, len(need))
	for n := range need {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	out := make([]*Chain, len(ns))
	for i, n := range ns {
		out[i] = RenderSelect(n < 0, max(n, -n), o)
	}
	return out
}
