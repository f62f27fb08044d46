package proxytest

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moor-dev/moor/netplane/proxy"
)

// Harness adapts one backend to the suite.
type Harness struct {
	// New returns a backend programming the namespace cfg.NetNSPath.
	New func(t *testing.T, cfg proxy.Config) proxy.Backend
	// Tamper removes the backend's rules from outside, as an administrator
	// or another tool would (e.g. `nft flush table ip moor`).
	Tamper func(t *testing.T, nodeNS string)
	// Leftover returns what of the backend's rules remains in the node
	// namespace ("" when nothing), checked after Cleanup.
	Leftover func(t *testing.T, nodeNS string) string
	// Dump returns the backend's rules in the node namespace in a
	// canonical form: equal for equal rules however they were applied
	// (element and shared-chain order may differ). Dynamic state (affinity
	// entries) and what partial syncs may leave by design (unused shared
	// chains) are left out.
	Dump func(t *testing.T, nodeNS string) string
}

const targetPort = 8080

// Svc builds a service with one TCP and one UDP port 80 → targetPort on the
// given pod IPs (all ready and local); nodePort 0 means none.
func Svc(name, vip string, nodePort uint16, podIPs ...string) proxy.Service {
	var eps []proxy.Endpoint
	for _, ip := range podIPs {
		eps = append(eps, proxy.Endpoint{IP: netip.MustParseAddr(ip), Port: targetPort, Ready: true, Local: true})
	}
	s := proxy.Service{Namespace: "default", Name: name}
	if vip != "" {
		s.ClusterIP = netip.MustParseAddr(vip)
	}
	s.Ports = []proxy.Port{
		{Name: "http", Protocol: proxy.TCP, Port: 80, NodePort: nodePort, Endpoints: eps},
		{Name: "dns", Protocol: proxy.UDP, Port: 80, NodePort: nodePort, Endpoints: eps},
	}
	return s
}

// RunSuite runs every behaviour against h's backend in a fresh topology.
func RunSuite(t *testing.T, h Harness) {
	topo := Setup(t)
	for _, ip := range PodIPs {
		Serve(t, topo.Pod, ip, targetPort)
	}
	cfg := proxy.Config{NetNSPath: topo.Node, ClusterCIDR: netip.MustParsePrefix(ClusterCIDR)}
	b := h.New(t, cfg)
	ctx := context.Background()
	t.Cleanup(func() {
		if err := b.Cleanup(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	sync := func(t *testing.T, svcs ...proxy.Service) {
		t.Helper()
		if err := b.Sync(ctx, &proxy.Table{Services: svcs}); err != nil {
			t.Fatalf("sync: %v", err)
		}
	}
	reach := func(t *testing.T, ns, network, src, addr string) string {
		t.Helper()
		got, err := AskT(ns, network, src, addr, 2*time.Second)
		if err != nil {
			t.Fatalf("%s %s from %s: %v", network, addr, ns, err)
		}
		return got
	}
	web := Svc("web", "10.96.0.10", 30080, PodIPs...)
	one := Svc("one", "10.96.0.11", 0, PodIPs[1])
	empty := Svc("empty", "10.96.0.12", 30090)
	hairpin := Svc("self", "10.96.0.13", 0, PodIPs[0])
	headless := Svc("headless", "", 0, PodIPs...)
	sticky := Svc("sticky", "10.96.0.14", 0, PodIPs...)
	sticky.SessionAffinity = proxy.AffinityClientIP
	all := []proxy.Service{web, one, empty, hairpin, headless, sticky}

	t.Run("cleanup with nothing installed", func(t *testing.T) {
		for range 2 {
			if err := b.Cleanup(ctx); err != nil {
				t.Fatalf("cleanup: %v", err)
			}
		}
		if left := h.Leftover(t, topo.Node); left != "" {
			t.Errorf("cleanup of nothing left:\n%s", left)
		}
	})
	t.Run("vip reaches endpoint tcp and udp", func(t *testing.T) {
		sync(t, all...)
		want := PodIPs[1] + ":8080"
		for _, network := range []string{"tcp", "udp"} {
			if got := reach(t, topo.Client, network, "", "10.96.0.11:80"); got != want {
				t.Errorf("%s: answered by %q, want %q", network, got, want)
			}
		}
	})
	t.Run("all endpoints get traffic", func(t *testing.T) {
		sync(t, all...)
		seen := map[string]int{}
		for i := 0; i < 60 && len(seen) < len(PodIPs); i++ {
			seen[reach(t, topo.Client, "tcp", "", "10.96.0.10:80")]++
		}
		if len(seen) != len(PodIPs) {
			t.Errorf("endpoints reached: %v, want all of %v", seen, PodIPs)
		}
	})
	t.Run("nodeport", func(t *testing.T) {
		sync(t, all...)
		for _, network := range []string{"tcp", "udp"} {
			got := reach(t, topo.Client, network, "", NodeClientIP+":30080")
			if !strings.HasSuffix(got, ":8080") {
				t.Errorf("%s nodeport answered %q", network, got)
			}
		}
	})
	t.Run("no endpoints is rejected fast", func(t *testing.T) {
		sync(t, all...)
		for _, addr := range []string{"10.96.0.12:80", NodeClientIP + ":30090"} {
			start := time.Now()
			_, err := AskT(topo.Client, "tcp", "", addr, 3*time.Second)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("%s: err = %v after %v, want connection refused", addr, err, time.Since(start))
			}
		}
		if _, err := AskT(topo.Client, "udp", "", "10.96.0.12:80", 3*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("udp: err = %v, want connection refused (ICMP port unreachable)", err)
		}
	})
	t.Run("hairpin", func(t *testing.T) {
		sync(t, all...)
		want := PodIPs[0] + ":8080"
		if got := reach(t, topo.Pod, "tcp", PodIPs[0], "10.96.0.13:80"); got != want {
			t.Errorf("pod to itself via VIP answered %q, want %q", got, want)
		}
	})
	t.Run("session affinity sticks", func(t *testing.T) {
		sync(t, all...)
		seen := map[string]int{}
		for range 15 {
			seen[reach(t, topo.Client, "tcp", "", "10.96.0.14:80")]++
		}
		if len(seen) != 1 {
			t.Errorf("ClientIP affinity spread one client over %v", seen)
		}
	})
	t.Run("removing a service removes its rules", func(t *testing.T) {
		sync(t, all...)
		reach(t, topo.Client, "tcp", "", "10.96.0.11:80")
		sync(t, web, empty, hairpin, headless, sticky)
		if got, err := AskT(topo.Client, "tcp", "", "10.96.0.11:80", 300*time.Millisecond); err == nil {
			t.Errorf("removed service still answered by %s", got)
		}
		reach(t, topo.Client, "tcp", "", "10.96.0.10:80")
		sync(t, all...)
		reach(t, topo.Client, "tcp", "", "10.96.0.11:80")
	})
	t.Run("endpoint change is followed", func(t *testing.T) {
		moved := Svc("one", "10.96.0.11", 0, PodIPs[2])
		sync(t, web, moved, empty, hairpin, headless, sticky)
		if got := reach(t, topo.Client, "tcp", "", "10.96.0.11:80"); got != PodIPs[2]+":8080" {
			t.Errorf("after endpoint change answered by %q", got)
		}
		sync(t, all...)
	})
	t.Run("resync repairs external flush", func(t *testing.T) {
		sync(t, all...)
		h.Tamper(t, topo.Node)
		if got, err := AskT(topo.Client, "tcp", "", "10.96.0.11:80", 300*time.Millisecond); err == nil {
			t.Fatalf("tamper left the rules working (answered %s)", got)
		}
		sync(t, all...)
		reach(t, topo.Client, "tcp", "", "10.96.0.11:80")
	})
	t.Run("cleanup removes everything", func(t *testing.T) {
		sync(t, all...)
		for range 2 { // idempotent
			if err := b.Cleanup(ctx); err != nil {
				t.Fatalf("cleanup: %v", err)
			}
		}
		if left := h.Leftover(t, topo.Node); left != "" {
			t.Errorf("left after cleanup:\n%s", left)
		}
		if _, err := AskT(topo.Client, "tcp", "", "10.96.0.11:80", 300*time.Millisecond); err == nil {
			t.Error("service still answers after cleanup")
		}
		sync(t, all...)
		reach(t, topo.Client, "tcp", "", "10.96.0.11:80")
	})
	t.Run("partial syncs end where a full sync does", func(t *testing.T) {
		if h.Dump == nil {
			t.Skip("the harness cannot dump rules")
		}
		// A second node gets every table by a full sync of a new backend.
		other := Setup(t)
		ocfg := cfg
		ocfg.NetNSPath = other.Node
		svcs := all
		sync(t, svcs...)
		m := NewMutator(7)
		for step := range 40 {
			var what string
			svcs, what = m.Mutate(svcs)
			sync(t, CopyServices(svcs)...)
			fresh := h.New(t, ocfg)
			if err := fresh.Sync(ctx, &proxy.Table{Services: CopyServices(svcs)}); err != nil {
				t.Fatalf("step %d (%s): full sync: %v", step, what, err)
			}
			closeBackend(fresh)
			if got, want := h.Dump(t, topo.Node), h.Dump(t, other.Node); got != want {
				t.Fatalf("step %d (%s): after partial syncs:\n%s\nafter a full sync:\n%s", step, what, got, want)
			}
		}
		sync(t, all...)
		reach(t, topo.Client, "tcp", "", "10.96.0.11:80")
	})
	t.Run("invalid table is refused", func(t *testing.T) {
		bad := Svc("bad", "10.96.0.20", 80, PodIPs[0])
		err := b.Sync(ctx, &proxy.Table{Services: []proxy.Service{bad}})
		if !errors.Is(err, proxy.ErrInvalidTable) {
			t.Fatalf("nodePort 80 accepted: %v", err)
		}
		reach(t, topo.Client, "tcp", "", "10.96.0.11:80")
	})
}
