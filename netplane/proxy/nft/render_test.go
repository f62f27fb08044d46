package nft

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/moor-dev/moor/netplane/proxy"
	"github.com/moor-dev/moor/netplane/proxy/proxytest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var fixtureOpts = Options{ClusterCIDR: netip.MustParsePrefix(proxytest.ClusterCIDR)}

func golden(t *testing.T, name, got string) {
	t.Helper()
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
		t.Errorf("%s differs from the rendered ruleset (run with -update after checking):\n%s", path, got)
	}
}

func TestRenderGolden(t *testing.T) {
	golden(t, "fixture.golden", Render(proxytest.Fixture(), fixtureOpts).String())
	golden(t, "empty.golden", Render(&proxy.Table{}, Options{MasqueradeAll: true}).String())
}

func TestRenderDeterministic(t *testing.T) {
	a := Render(proxytest.Fixture(), fixtureOpts).String()
	tb := proxytest.Fixture()
	for i, j := 0, len(tb.Services)-1; i < j; i, j = i+1, j-1 {
		tb.Services[i], tb.Services[j] = tb.Services[j], tb.Services[i]
	}
	tb.Sort()
	if b := Render(tb, fixtureOpts).String(); a != b {
		t.Error("rendering depends on input order")
	}
}

func TestPacketTrace(t *testing.T) {
	ip := netip.MustParseAddr
	ap := netip.MustParseAddrPort
	const tcp, udp = 6, 17
	client, pod0, node := ip("192.168.77.2"), ip(proxytest.PodIPs[0]), ip(proxytest.NodeClientIP)
	tests := []struct {
		name   string
		p      packet
		choice int
		want   string
	}{
		{"vip first endpoint", packet{src: client, dst: ip("10.96.0.10"), proto: tcp, port: 80}, 0, "dnat 10.244.0.2:8080 masq=true"},
		{"vip third endpoint", packet{src: client, dst: ip("10.96.0.10"), proto: tcp, port: 80}, 2, "dnat 10.244.0.4:8080 masq=true"},
		{"vip udp", packet{src: client, dst: ip("10.96.0.10"), proto: udp, port: 80}, 1, "dnat 10.244.0.3:8080 masq=true"},
		{"vip from cluster is not masqueraded", packet{src: ip("10.244.5.5"), dst: ip("10.96.0.10"), proto: tcp, port: 80}, 1, "dnat 10.244.0.3:8080 masq=false"},
		{"not-ready endpoint never chosen", packet{src: client, dst: ip("10.96.0.10"), proto: tcp, port: 80}, 3, "dnat 10.244.0.2:8080 masq=true"},
		{"wrong port", packet{src: client, dst: ip("10.96.0.10"), proto: tcp, port: 81}, 0, "none"},
		{"wrong protocol", packet{src: client, dst: ip("10.96.0.11"), proto: udp, port: 443}, 0, "none"},
		{"single endpoint", packet{src: client, dst: ip("10.96.0.11"), proto: tcp, port: 443}, 0, "dnat 10.244.1.5:8080 masq=true"},
		{"nodeport", packet{src: client, dst: node, proto: tcp, port: 30080, local: true}, 1, "dnat 10.244.0.3:8080 masq=true"},
		{"nodeport from cluster still masqueraded", packet{src: ip("10.244.5.5"), dst: node, proto: tcp, port: 30080, local: true}, 0, "dnat 10.244.0.2:8080 masq=true"},
		{"nodeport on loopback", packet{src: ip("127.0.0.1"), dst: ip("127.0.0.1"), proto: tcp, port: 30080, local: true, output: true}, 0, "none"},
		{"nodeport on non-local address", packet{src: client, dst: ip("10.1.1.1"), proto: tcp, port: 30080}, 0, "none"},
		{"no endpoints rejects vip", packet{src: client, dst: ip("10.96.0.12"), proto: tcp, port: 80}, 0, "reject"},
		{"no endpoints rejects udp", packet{src: client, dst: ip("10.96.0.12"), proto: udp, port: 80}, 0, "reject"},
		{"no endpoints rejects nodeport", packet{src: client, dst: node, proto: tcp, port: 30090, local: true}, 0, "reject"},
		{"no endpoints from node itself", packet{src: node, dst: ip("10.96.0.12"), proto: tcp, port: 80, output: true}, 0, "reject"},
		{"hairpin is masqueraded", packet{src: pod0, dst: ip("10.96.0.13"), proto: tcp, port: 80}, 0, "dnat 10.244.0.2:8080 masq=true"},
		{"other pod to self service not masqueraded", packet{src: ip("10.244.0.3"), dst: ip("10.96.0.13"), proto: tcp, port: 80}, 0, "dnat 10.244.0.2:8080 masq=false"},
		{"headless has no vip", packet{src: client, dst: ip("0.0.0.0"), proto: tcp, port: 80}, 0, "none"},
	}
	tr := newTracer(Render(proxytest.Fixture(), fixtureOpts))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tr.trace(t, tc.p, tc.choice).String(); got != tc.want {
				t.Errorf("%+v choice %d: got %s, want %s", tc.p, tc.choice, got, tc.want)
			}
		})
	}
	_ = ap
}

func TestPacketTraceAffinity(t *testing.T) {
	tr := newTracer(Render(proxytest.Fixture(), fixtureOpts))
	c1, c2 := netip.MustParseAddr("192.168.77.2"), netip.MustParseAddr("192.168.77.3")
	vip := netip.MustParseAddr("10.96.0.14")
	first := tr.trace(t, packet{src: c1, dst: vip, proto: 6, port: 80}, 1)
	if first.String() != "dnat 10.244.0.3:8080 masq=true" {
		t.Fatalf("first connection: %s", first)
	}
	for choice := range 3 {
		if got := tr.trace(t, packet{src: c1, dst: vip, proto: 6, port: 80}, choice); got != first {
			t.Errorf("choice %d moved the client to %s", choice, got)
		}
	}
	if got := tr.trace(t, packet{src: c2, dst: vip, proto: 6, port: 80}, 2).String(); got != "dnat 10.244.0.4:8080 masq=true" {
		t.Errorf("second client: %s", got)
	}
}

func TestRenderServiceSkips(t *testing.T) {
	if f := RenderService(&proxy.Service{Namespace: "a", Name: "b"}, fixtureOpts); f != nil {
		t.Errorf("headless service rendered %+v", f)
	}
}
