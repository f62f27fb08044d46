package iptables

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moor-dev/moor/netplane/proxy/proxytest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var fixtureOpts = Options{ClusterCIDR: netip.MustParsePrefix(proxytest.ClusterCIDR)}

func TestRenderGolden(t *testing.T) {
	frags := Render(proxytest.Fixture(), fixtureOpts)
	cases := map[string]string{
		"fixture.golden": Text(frags, nil, nil),
		// A partial sync: only "one" changed, one stale chain removed.
		"partial.golden": Text(frags, map[string]bool{"default/one": true}, []string{"MOOR-SVC-STALE0000000000"}),
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

// ruleset is parsed restore text: table → chain → rules as fields.
type ruleset map[string]map[string][][]string

func parse(t *testing.T, text string) ruleset {
	rs := ruleset{}
	var table string
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
			rs[table] = map[string][][]string{}
		case strings.HasPrefix(l, ":"):
			name, _, _ := strings.Cut(l[1:], " ")
			rs[table][name] = nil
		case strings.HasPrefix(l, "-A "):
			f := strings.Fields(l)
			if _, ok := rs[table][f[1]]; !ok {
				t.Fatalf("rule for undeclared chain: %s", l)
			}
			rs[table][f[1]] = append(rs[table][f[1]], f[2:])
		}
	}
	return rs
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
			case "--rcheck":
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
	tr := &tracer{rs: parse(t, Text(Render(proxytest.Fixture(), fixtureOpts), nil, nil)), recent: map[string]bool{}}
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
