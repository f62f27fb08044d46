package nft

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// String renders the ruleset in a stable form resembling `nft list table`
// (maps first, then chains by name), for golden tests and debugging.
func (rs *Ruleset) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", TableName)
	elems := map[string][]string{}
	var hairpin = map[netip.Addr]bool{}
	var chains []*Chain
	chains = append(chains, rs.Base...)
	chains = append(chains, rs.Selects...)
	for _, f := range rs.Services {
		chains = append(chains, f.Chains...)
		for _, e := range f.Elements {
			val := "goto " + e.Goto
			if e.To.IsValid() {
				val = fmt.Sprintf("%s . %d", e.To.Addr(), e.To.Port())
			}
			elems[e.Map] = append(elems[e.Map], e.keyString(rs.mapKey(e.Map))+" : "+val)
		}
		for _, a := range f.Hairpin {
			hairpin[a] = true
		}
	}
	for _, a := range sortedAddrs(hairpin) {
		elems[SetHairpin] = append(elems[SetHairpin], Element{IP: a}.keyString(KeySaddrDaddr))
	}
	for _, m := range rs.Maps {
		kind, typ := "set", m.Key.String()
		switch m.Data {
		case DataVerdict:
			kind, typ = "map", typ+" : verdict"
		case DataAddrPort:
			kind, typ = "map", typ+" : ipv4_addr . inet_service"
		}
		fmt.Fprintf(&b, "\t%s %s {\n\t\ttype %s\n", kind, m.Name, typ)
		if m.Dynamic {
			b.WriteString("\t\tflags dynamic,timeout\n")
		}
		if es := elems[m.Name]; len(es) > 0 {
			slices.Sort(es)
			fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(es, ",\n\t\t\t     "))
		}
		b.WriteString("\t}\n\n")
	}
	slices.SortFunc(chains, func(a, b *Chain) int { return cmp.Compare(a.Name, b.Name) })
	for i, c := range chains {
		fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
		if c.Hook != nil {
			fmt.Fprintf(&b, "\t\ttype %s hook %s priority %d; policy accept;\n", c.Hook.Type, c.Hook.Hook, c.Hook.Priority)
		}
		for _, r := range c.Rules {
			fmt.Fprintf(&b, "\t\t%s\n", r)
		}
		b.WriteString("\t}\n")
		if i < len(chains)-1 {
			b.WriteString("\n")
		}
	}
	b.WriteString("}\n")
	return b.String()
}

func (rs *Ruleset) mapKey(name string) KeyKind {
	for _, m := range rs.Maps {
		if m.Name == name {
			return m.Key
		}
	}
	return KeyAddrProtoPort
}
