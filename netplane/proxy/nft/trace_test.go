package nft

import (
	"fmt"
	"net/netip"
	"testing"
)

// packet is a synthetic first packet of a connection.
type packet struct {
	src, dst netip.Addr
	proto    uint8
	port     uint16
	local    bool // dst is one of the node's addresses
	output   bool // generated on the node (output hook) rather than received
}

// outcome is what the rules do to it.
type outcome struct {
	verdict string // "dnat", "reject" or "none"
	to      netip.AddrPort
	masq    bool
}

func (o outcome) String() string {
	if o.verdict == "dnat" {
		return fmt.Sprintf("dnat %s masq=%v", o.to, o.masq)
	}
	return o.verdict
}

// tracer evaluates a rendered Ruleset the way the kernel would, with
// random choices replaced by choice: a numgen picks index choice mod N; the
// k-th "numgen mod M == 0" test holds only when k == choice.
type tracer struct {
	rs       *Ruleset
	chains   map[string]*Chain
	elems    map[string][]Element
	hairpin  map[netip.Addr]bool
	affinity map[string]netip.AddrPort
}

func newTracer(rs *Ruleset) *tracer {
	tr := &tracer{rs: rs, chains: map[string]*Chain{}, elems: map[string][]Element{}, hairpin: map[netip.Addr]bool{}, affinity: map[string]netip.AddrPort{}}
	for _, c := range append(append([]*Chain(nil), rs.Base...), rs.Selects...) {
		tr.chains[c.Name] = c
	}
	for _, f := range rs.Services {
		for _, c := range f.Chains {
			tr.chains[c.Name] = c
		}
		for _, e := range f.Elements {
			tr.elems[e.Map] = append(tr.elems[e.Map], e)
		}
		for _, h := range f.Hairpin {
			tr.hairpin[h] = true
		}
	}
	return tr
}

type evalState struct {
	p       packet
	choice  int
	numgens int
	mark    bool
	out     outcome
}

func (tr *tracer) lookup(m string, k KeyKind, p packet, index uint32) (Element, bool) {
	for _, e := range tr.elems[m] {
		match := e.Proto == p.proto && e.Port == p.port && e.Index == index
		if k == KeyAddrProtoPort || k == KeyAddrProtoPortIndex {
			match = match && e.IP == p.dst
		}
		if match {
			return e, true
		}
	}
	return Element{}, false
}

// run evaluates chain; it returns true when a terminal verdict was reached.
func (tr *tracer) run(t *testing.T, name string, st *evalState, depth int) bool {
	if depth > 16 {
		t.Fatalf("chain depth exceeded at %s", name)
	}
	c := tr.chains[name]
	if c == nil {
		t.Fatalf("no chain %q", name)
	}
	for _, r := range c.Rules {
		done, stop := tr.rule(t, r, st, depth)
		if done {
			return true
		}
		if stop {
			return false
		}
	}
	return false
}

// rule returns (terminal, returnFromChain).
func (tr *tracer) rule(t *testing.T, r Rule, st *evalState, depth int) (bool, bool) {
	p := st.p
	for _, s := range r {
		switch s := s.(type) {
		case MatchSaddr:
			if s.Prefix.Contains(p.src) == s.Not {
				return false, false
			}
		case MatchDaddr:
			if s.Prefix.Contains(p.dst) == s.Not {
				return false, false
			}
		case MatchProto:
			if p.proto != s.Proto {
				return false, false
			}
		case MatchFibLocal:
			if !p.local {
				return false, false
			}
		case MatchMark:
			if !st.mark {
				return false, false
			}
		case SetMark:
			st.mark = !s.Clear
		case Masquerade:
			st.out.masq = true
			return true, false
		case SetLookup:
			if !(p.src == p.dst && tr.hairpin[p.src]) {
				return false, false
			}
		case VmapLookup:
			e, ok := tr.lookup(s.Map, s.Key, p, 0)
			if !ok {
				return false, false
			}
			return tr.run(t, e.Goto, st, depth+1), false
		case Verdict:
			switch s.Kind {
			case "jump":
				if tr.run(t, s.Chain, st, depth+1) {
					return true, false
				}
			case "goto":
				return tr.run(t, s.Chain, st, depth+1), true
			case "return":
				return false, true
			}
		case Reject:
			st.out.verdict = "reject"
			return true, false
		case NumgenZero:
			k := st.numgens
			st.numgens++
			if k != st.choice {
				return false, false
			}
		case DNATSelect:
			e, ok := tr.lookup(s.Map, s.Key, p, uint32(st.choice%s.N))
			if !ok {
				t.Fatalf("select chain for %v: no endpoint element at index %d", p, st.choice%s.N)
			}
			st.out.verdict, st.out.to = "dnat", e.To
			return true, false
		case RecordAffinity:
			tr.affinity[fmt.Sprint(s.ID, p.src)] = s.To
		case DNATAffinity:
			to, ok := tr.affinity[fmt.Sprint(s.ID, p.src)]
			if !ok {
				return false, false
			}
			st.out.verdict, st.out.to = "dnat", to
			return true, false
		case DNAT:
			st.out.verdict, st.out.to = "dnat", s.To
			return true, false
		default:
			t.Fatalf("tracer cannot evaluate %T", s)
		}
	}
	return false, false
}

// trace runs the nat hook, then the filter hook on the translated packet,
// then postrouting for forwarded (or locally sent) DNATed packets.
func (tr *tracer) trace(t *testing.T, p packet, choice int) outcome {
	st := &evalState{p: p, choice: choice, out: outcome{verdict: "none"}}
	tr.run(t, ChainServices, st, 0)
	if st.out.verdict == "dnat" {
		st.p.dst = st.out.to.Addr()
		st.p.port = st.out.to.Port()
		post := &evalState{p: st.p, mark: st.mark, out: st.out}
		tr.run(t, ChainMasquerading, post, 0)
		return post.out
	}
	check := []string{ChainEndpointsCheck}
	if p.local && !p.output {
		check = append(check, ChainNodePortsCheck)
	}
	for _, c := range check {
		if tr.run(t, c, st, 0) {
			break
		}
	}
	return st.out
}
