package nft

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// batch queues the netlink messages of one sync on a Conn; nothing reaches
// the kernel until the caller's single cc.Flush.
type batch struct {
	cc    *nftables.Conn
	table *nftables.Table
	sets  map[string]*nftables.Set // named sets known in this batch
	maps  map[string]KeyKind       // global map name → key layout
}

func newBatch(cc *nftables.Conn) *batch {
	a := &batch{
		cc:    cc,
		table: &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4},
		sets:  map[string]*nftables.Set{},
		maps:  map[string]KeyKind{},
	}
	for _, m := range Base().Maps {
		a.sets[m.Name] = globalSet(a.table, m)
		a.maps[m.Name] = m.Key
	}
	return a
}

func (a *batch) setID(name string) uint32 {
	if s, ok := a.sets[name]; ok {
		return s.ID
	}
	return 0
}

func (a *batch) chain(c *Chain) *nftables.Chain {
	ch := &nftables.Chain{Name: c.Name, Table: a.table}
	if c.Hook != nil {
		hooks := map[string]*nftables.ChainHook{
			"prerouting": nftables.ChainHookPrerouting, "input": nftables.ChainHookInput,
			"forward": nftables.ChainHookForward, "output": nftables.ChainHookOutput,
			"postrouting": nftables.ChainHookPostrouting,
		}
		ch.Hooknum = hooks[c.Hook.Hook]
		ch.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(c.Hook.Priority))
		ch.Type = nftables.ChainTypeFilter
		if c.Hook.Type == "nat" {
			ch.Type = nftables.ChainTypeNAT
		}
	}
	return ch
}

func (a *batch) addRules(c *Chain) error {
	ch := a.chain(c)
	for i, r := range c.Rules {
		exprs, err := a.ruleExprs(r)
		if err != nil {
			return fmt.Errorf("chain %s rule %d: %w", c.Name, i, err)
		}
		a.cc.AddRule(&nftables.Rule{Table: a.table, Chain: ch, Exprs: exprs})
	}
	return nil
}

// elemChunk bounds the elements per netlink message.
const elemChunk = 1024

func (a *batch) elements(add bool, es []Element) error {
	var order []string
	count := map[string]int{}
	for _, e := range es {
		if count[e.Map] == 0 {
			order = append(order, e.Map)
		}
		count[e.Map]++
	}
	for _, name := range order {
		kind := a.maps[name]
		list := make([]nftables.SetElement, 0, count[name])
		for _, e := range es {
			if e.Map != name {
				continue
			}
			se := nftables.SetElement{Key: elementKey(kind, e)}
			if e.To.IsValid() {
				se.Val = addrPortData(e.To)
			}
			if e.Goto != "" {
				se.VerdictData = &expr.Verdict{Kind: expr.VerdictGoto, Chain: e.Goto}
			}
			list = append(list, se)
		}
		for len(list) > 0 {
			n := min(len(list), elemChunk)
			var err error
			if add {
				err = a.cc.SetAddElements(a.sets[name], list[:n])
			} else {
				err = a.cc.SetDeleteElements(a.sets[name], list[:n])
			}
			if err != nil {
				return fmt.Errorf("map %s: %w", name, err)
			}
			list = list[n:]
		}
	}
	return nil
}

func hairpinElems(addrs []netip.Addr) []Element {
	out := make([]Element, len(addrs))
	for i, a := range addrs {
		out[i] = Element{Map: SetHairpin, IP: a}
	}
	return out
}

// full queues a complete replacement of the table: create-if-missing,
// delete, then recreate everything, so the kernel swaps it atomically.
func (a *batch) full(rs *Ruleset) error {
	a.cc.AddTable(a.table)
	a.cc.DelTable(a.table)
	a.cc.AddTable(a.table)
	for _, m := range rs.Maps {
		if err := a.cc.AddSet(a.sets[m.Name], nil); err != nil {
			return fmt.Errorf("map %s: %w", m.Name, err)
		}
	}
	chains := append(append([]*Chain(nil), rs.Base...), rs.Selects...)
	var elems []Element
	hairpin := map[netip.Addr]bool{}
	for _, f := range rs.Services {
		chains = append(chains, f.Chains...)
		elems = append(elems, f.Elements...)

		for _, h := range f.Hairpin {
			hairpin[h] = true
		}
	}
	for _, c := range chains {
		a.cc.AddChain(a.chain(c))
	}
	for _, c := range chains {
		if err := a.addRules(c); err != nil {
			return err
		}
	}
	if err := a.elements(true, elems); err != nil {
		return err
	}
	return a.elements(true, hairpinElems(sortedAddrs(hairpin)))
}

// change replaces one service's fragment; Old or New is nil for an added or
// removed service.
type change struct{ Old, New *Fragment }

// partial queues only the objects of the changed services, plus the select
// chains they newly need, ordered so every reference is valid at each step
// of the kernel's transaction. Select chains are never removed here; the
// next full sync drops unused ones.
func (a *batch) partial(changes []change, selects []*Chain, hairpinDel, hairpinAdd []netip.Addr) error {
	for _, c := range selects {
		a.cc.AddChain(a.chain(c))
		if err := a.addRules(c); err != nil {
			return err
		}
	}
	var delElems, addElems []Element
	var delChains []*Chain
	for _, ch := range changes {
		o, n := ch.Old, ch.New
		if o == nil {
			o = &Fragment{}
		}
		if n == nil {
			n = &Fragment{}
		}
		newChains := map[string]bool{}
		for _, c := range n.Chains {
			newChains[c.Name] = true
			a.cc.AddChain(a.chain(c))
		}
		for _, c := range o.Chains {
			a.cc.FlushChain(a.chain(c))
			if !newChains[c.Name] {
				delChains = append(delChains, c)
			}
		}
		for _, c := range n.Chains {
			if err := a.addRules(c); err != nil {
				return err
			}
		}
		delElems = append(delElems, minus(o.Elements, n.Elements)...)
		addElems = append(addElems, minus(n.Elements, o.Elements)...)
	}
	if err := a.elements(false, append(delElems, hairpinElems(hairpinDel)...)); err != nil {
		return err
	}
	if err := a.elements(true, append(addElems, hairpinElems(hairpinAdd)...)); err != nil {
		return err
	}
	for _, c := range delChains {
		a.cc.DelChain(a.chain(c))
	}

	return nil
}

func minus(a, b []Element) []Element {
	in := make(map[Element]bool, len(b))
	for _, e := range b {
		in[e] = true
	}
	var out []Element
	for _, e := range a {
		if !in[e] {
			out = append(out, e)
		}
	}
	return out
}
