package iptables

import (
	"flag"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moor-dev/moor/netplane/proxy"
	"github.com/moor-dev/moor/netplane/proxy/proxytest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var fixtureOpts = Options{ClusterCIDR: netip.MustParsePrefix(proxytest.ClusterCIDR)}

// partialFixture returns the fixture and a changed copy: "one" moved to
// another endpoint (its chain is rewritten), "empty" got an endpoint (its
// REJECTs go, a chain and a dispatch line come), "self" is gone (its chains
// and dispatch lines go), "new" is added with a NodePort and a local
// endpoint no other service has (MOOR-POSTROUTING is rewritten).
func partialFixture() (before, after *proxy.Table) {
	before, after = proxytest.Fixture(), proxytest.Fixture()
	var svcs []proxy.Service
	for _, s := range after.Services {
		switch s.Name {
		case "one":
			s.Ports[0].Endpoints[0].IP = netip.MustParseAddr("10.244.1.6")
		case "empty":
			s.Ports[0].Endpoints[0].Ready = true
		case "self":
			continue
		}
		svcs = append(svcs, s)
	}
	svcs = append(svcs, proxytest.Svc("new", "10.96.0.15", 30100, "10.244.0.9"))
	after.Services = svcs
	after.Sort()
	return before, after
}

// updates pairs the fragments of two renderings by service key.
func updates(before, after []*Fragment) []Update {
	byKey := map[string]*Update{}
	var keys []string
	for _, f := range before {
		byKey[f.Key] = &Update{Old: f}
		keys = append(keys, f.Key)
	}
	for _, f := range after {
		if u, ok := byKey[f.Key]; ok {
			u.New = f
			continue
		}
		byKey[f.Key] = &Update{New: f}
		keys = append(keys, f.Key)
	}
	var out []Update
	for _, k := range keys {
		if u := byKey[k]; fmt.Sprint(u.Old) != fmt.Sprint(u.New) {
			out = append(out, *u)
		}
	}
	return out
}

func partialText(before, after *proxy.Table) string {
	b, a := Render(before, fixtureOpts), Render(after, fixtureOpts)
	return PartialText(updates(b, a), Hairpin(a), !slices.Equal(Hairpin(b), Hairpin(a)))
}

func TestRenderGolden(t *testing.T) {
	frags := Render(proxytest.Fixture(), fixtureOpts)
	cases := map[string]string{
		"fixture.golden": Text(frags, nil),
		"stale.golden":   Text(frags[:1], []string{"MOOR-SEP-STALE00000000000"}),
		"partial.golden": partialText(partialFixture()),
	}
	for name, got := range cases {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("%s differs (run with -update after checking):\n%s", path, got)
		}
	}
}

// ruleset is what iptables holds after restores: table → chain → rules as
// fields.
type ruleset map[string]map[string][][]string

func parse(t *testing.T, text string) ruleset {
	t.Helper()
	rs := ruleset{}
	if err := rs.restore(text); err != nil {
		t.Fatal(err)
	}
	return rs
}

// restore applies iptables-restore --noflush input the way the kernel
// would, failing where iptables-restore would.
func (rs ruleset) restore(text string) error {
	var table string
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || l == "COMMIT" {
			continue
		}
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
			if rs[table] == nil {
				rs[table] = map[string][][]string{}
			}
			continue
		case strings.HasPrefix(l, ":"):
			rs[table][f[0][1:]] = nil // created or flushed
			continue
		}
		chain := f[1]
		if _, ok := rs[table][chain]; !ok {
			return fmt.Errorf("%q: no chain %s/%s", l, table, chain)
		}
		rules := rs[table][chain]
		switch f[0] {
		case "-A":
			rs[table][chain] = append(rules, f[2:])
		case "-I":
			if f[2] != "1" {
				return fmt.Errorf("%q: only -I CHAIN 1 is modelled", l)
			}
			rs[table][chain] = append([][]string{f[3:]}, rules...)
		case "-D":
			i := slices.IndexFunc(rules, func(r []string) bool { return slices.Equal(r, f[2:]) })
			if i < 0 {
				return fmt.Errorf("%q: no such rule", l)
			}
			rs[table][chain] = slices.Delete(rules, i, i+1)
		case "-X":
			if len(rules) > 0 {
				return fmt.Errorf("%q: chain not empty", l)
			}
			for name, rules := range rs[table] {
				for _, r := range rules {
					if r[len(r)-1] == chain || slices.Contains(r, "-j") && r[slices.Index(r, "-j")+1] == chain {
						return fmt.Errorf("%q: still referenced from %s", l, name)
					}
				}
			}
			delete(rs[table], chain)
		default:
			return fmt.Errorf("%q: unknown command", l)
		}
	}
	return nil
}

// canonical prints the ruleset with the shared chains' rules sorted (their
// order does not matter, except that nat MOOR-SERVICES must end with the
// NodePorts jump, which canonical checks).
func (rs ruleset) canonical(t *testing.T) string {
	var b strings.Builder
	for _, table := range slices.Sorted(maps.Keys(rs)) {
		for _, chain := range slices.Sorted(maps.Keys(rs[table])) {
			var lines []string
			for _, r := range rs[table][chain] {
				lines = append(lines, strings.Join(r, " "))
			}
			switch chain {
			case ChainServices, ChainNodePorts, ChainExternal:
				if table == "nat" && chain == ChainServices && lines[len(lines)-1] != nodePortsJump {
					t.Errorf("nat %s does not end with the NodePorts jump: %v", chain, lines)
				}
				slices.Sort(lines)
			}
			fmt.Fprintf(&b, "%s %s\n\t%s\n", table, chain, strings.Join(lines, "\n\t"))
		}
	}
	return b.String()
}

// TestPartialText checks that a partial restore on top of the old full
// restore yields what a full restore of the new table yields.
func TestPartialText(t *testing.T) {
	before, after := partialFixture()
	got := parse(t, Text(Render(before, fixtureOpts), nil))
	if err := got.restore(partialText(before, after)); err != nil {
		t.Fatal(err)
	}
	want := parse(t, Text(Render(after, fixtureOpts), nil))
	if g, w := got.canonical(t), want.canonical(t); g != w {
		t.Errorf("partial restore gives\n%s\nfull restore gives\n%s", g, w)
	}
	// And back again, and nothing to do when nothing changed.
	if err := got.restore(partialText(after, before)); err != nil {
		t.Fatal(err)
	}
	if g, w := got.canonical(t), parse(t, Text(Render(before, fixtureOpts), nil)).canonical(t); g != w {
		t.Errorf("reverting gives\n%s\nwant\n%s", g, w)
	}
	if text := partialText(before, before); text != "" {
		t.Errorf("no change renders %q", text)
	}
}

type packet struct {
	src, dst      netip.Addr
	proto         string
	port          int
	local, output bool
}

type tracer struct {
	rs     ruleset
	recent map[string]bool
}

type state struct {
	p       packet
	choice  int
	stats   int
	mark    bool
	verdict string
}

// run evaluates a chain; true when a terminal target was hit.
func (tr *tracer) run(t *testing.T, table, chain string, st *state) bool {
	rules, ok := tr.rs[table][chain]
	if !ok {
		t.Fatalf("no chain %s/%s", table, chain)
	}
rules:
	for _, r := range rules {
		neg := false
		for i := 0; i < len(r); i++ {
			arg := func() string { i++; return r[i] }
			switch tok := r[i]; tok {
			case "!":
				neg = true
				continue
			case "-s", "-d":
				pfx := netip.MustParsePrefix(arg())
				a := st.p.src
				if tok == "-d" {
					a = st.p.dst
				}
				if pfx.Contains(a) == neg {
					continue rules
				}
			case "-p":
				if arg() != st.p.proto {
					continue rules
				}
			case "--dport":
				if n, _ := strconv.Atoi(arg()); n != st.p.port {
					continue rules
				}
			case "--dst-type":
				arg()
				if !st.p.local {
					continue rules
				}
			case "--probability":
				arg()
				k := st.stats
				st.stats++
				if k != st.choice {
					continue rules
				}
			case "--rcheck", "--update":
				if !tr.recent[fmt.Sprint(r[i-1], st.p.src)] {
					continue rules
				}
			case "--set":
				tr.recent[fmt.Sprint(r[i-1], st.p.src)] = true
			case "--mark":
				arg()
				if st.mark == neg {
					continue rules
				}
			case "-j":
				switch target := arg(); target {
				case "MARK":
					st.mark = arg() == "--or-mark"
				case "RETURN":
					return false
				case "MASQUERADE":
					st.verdict += " masq"
					return true
				case "REJECT":
					st.verdict = "reject"
					return true
				case "DNAT":
					arg()
					st.verdict = "dnat " + arg()
					return true
				default:
					if tr.run(t, table, target, st) {
						return true
					}
				}
			}
			neg = false
		}
	}
	return false
}

func (tr *tracer) trace(t *testing.T, p packet, choice int) string {
	st := &state{p: p, choice: choice, verdict: "none"}
	if tr.run(t, "nat", ChainServices, st) {
		post := &state{p: p, mark: st.mark, verdict: st.verdict}
		post.p.src = p.src
		post.p.dst = netip.MustParseAddrPort(strings.Fields(st.verdict)[1]).Addr()
		tr.run(t, "nat", ChainPostrouting, post)
		return post.verdict
	}
	tr.run(t, "filter", ChainServices, st)
	if st.verdict == "none" && p.local && !p.output {
		tr.run(t, "filter", ChainExternal, st)
	}
	return st.verdict
}

func TestPacketTrace(t *testing.T) {
	ip := netip.MustParseAddr
	client, node := ip("192.168.77.2"), ip(proxytest.NodeClientIP)
	tr := &tracer{rs: parse(t, Text(Render(proxytest.Fixture(), fixtureOpts), nil)), recent: map[string]bool{}}
	tests := []struct {
		name   string
		p      packet
		choice int
		want   string
	}{
		{"vip first endpoint", packet{src: client, dst: ip("10.96.0.10"), proto: "tcp", port: 80}, 0, "dnat 10.244.0.2:8080 masq"},
		{"vip third endpoint", packet{src: client, dst: ip("10.96.0.10"), proto: "tcp", port: 80}, 2, "dnat 10.244.0.4:8080 masq"},
		{"vip udp from cluster", packet{src: ip("10.244.5.5"), dst: ip("10.96.0.10"), proto: "udp", port: 80}, 1, "dnat 10.244.0.3:8080"},
		{"wrong port", packet{src: client, dst: ip("10.96.0.10"), proto: "tcp", port: 81}, 0, "none"},
		{"nodeport", packet{src: client, dst: node, proto: "tcp", port: 30080, local: true}, 1, "dnat 10.244.0.3:8080 masq"},
		{"nodeport on loopback", packet{src: ip("127.0.0.1"), dst: ip("127.0.0.1"), proto: "tcp", port: 30080, local: true, output: true}, 0, "none"},
		{"no endpoints rejects vip", packet{src: client, dst: ip("10.96.0.12"), proto: "tcp", port: 80}, 0, "reject"},
		{"no endpoints rejects nodeport", packet{src: client, dst: node, proto: "udp", port: 30090, local: true}, 0, "reject"},
		{"hairpin is masqueraded", packet{src: ip(proxytest.PodIPs[0]), dst: ip("10.96.0.13"), proto: "tcp", port: 80}, 0, "dnat 10.244.0.2:8080 masq"},
		{"other pod not masqueraded", packet{src: ip("10.244.0.3"), dst: ip("10.96.0.13"), proto: "tcp", port: 80}, 0, "dnat 10.244.0.2:8080"},
		{"affinity first pick", packet{src: client, dst: ip("10.96.0.14"), proto: "tcp", port: 80}, 1, "dnat 10.244.0.3:8080 masq"},
		{"affinity sticks", packet{src: client, dst: ip("10.96.0.14"), proto: "tcp", port: 80}, 2, "dnat 10.244.0.3:8080 masq"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tr.trace(t, tc.p, tc.choice); got != tc.want {
				t.Errorf("%+v choice %d: got %q, want %q", tc.p, tc.choice, got, tc.want)
			}
		})
	}
}
