package podnetwork

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/netplane/podnet"
	"github.com/moor-dev/moor/netplane/proxy"
	"github.com/moor-dev/moor/netplane/proxy/backends"
	"github.com/moor-dev/moor/netplane/proxy/proxytest"
)

// TestKernelCleanup builds a node's whole network (bridge, pod, host-gw
// route, podnet and proxy rules, DNS) in a throwaway namespace and checks
// that Cleanup leaves nothing of it, with either proxy backend, also when
// called on a Network that never synced (an earlier run's leftovers).
func TestKernelCleanup(t *testing.T) {
	topo := proxytest.Setup(t) // node ⇄ client: the client stands in for a peer node
	for _, bin := range []string{"nsenter", "iptables", "iptables-restore", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
	ctx := context.Background()
	stateDir, nsDir := t.TempDir(), t.TempDir()
	t.Cleanup(func() { // pod namespaces a failed test left mounted
		entries, _ := os.ReadDir(nsDir)
		for _, e := range entries {
			_ = unix.Unmount(filepath.Join(nsDir, e.Name()), unix.MNT_DETACH)
		}
	})
	newNetwork := func(kind proxy.Kind) *Network {
		n, err := New(Config{NodeIP: netip.MustParseAddr(proxytest.NodeClientIP), StateDir: stateDir,
			NetNSDir: nsDir, HostNetNS: topo.Node, DNSUpstreams: []string{}, Proxy: kind, NewProxy: backends.New})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	doc := &api.Network{
		PodCIDR: netip.MustParsePrefix("10.250.1.0/24"), ClusterCIDR: netip.MustParsePrefix("10.250.0.0/16"),
		DNSDomain: "cluster.local",
		Peers: []api.Peer{{Name: "peer", NodeIP: netip.MustParseAddr(proxytest.ClientIP),
			PodCIDR: netip.MustParsePrefix("10.250.2.0/24")}},
	}
	svcs := []api.Service{{Namespace: "default", Name: "web", Type: api.ServiceTypeNodePort,
		ClusterIP: netip.MustParseAddr("10.96.0.10"),
		Ports:     []api.ServicePort{{Name: "http", Protocol: "TCP", Port: 80, NodePort: 30080}},
		Endpoints: []api.Endpoint{{Pod: "a", IP: netip.MustParseAddr("10.250.1.2"), Ready: true,
			Ports: map[string]int32{"http": 8080}}}}}
	in := func(args ...string) string {
		return proxytest.Run(t, "nsenter", append([]string{"--net=" + topo.Node}, args...)...)
	}
	leftovers := func() []string {
		var left []string
		if out := in("nft", "list", "tables"); strings.Contains(out, "moor") {
			left = append(left, "nft: "+out)
		}
		for _, l := range strings.Split(in("iptables-save"), "\n") {
			if strings.Contains(l, "MOOR-") {
				left = append(left, "iptables: "+l)
			}
		}
		for _, l := range strings.Split(in("ip", "-o", "link"), "\n") {
			if strings.Contains(l, " moor0") || strings.Contains(l, " mv") {
				left = append(left, "link: "+l)
			}
		}
		if out := strings.TrimSpace(in("ip", "route", "show", "proto", "77")); out != "" {
			left = append(left, "routes: "+out)
		}
		if _, err := os.Stat(filepath.Join(stateDir, "ipam.json")); err == nil {
			left = append(left, "state file")
		}
		if entries, _ := os.ReadDir(nsDir); len(entries) > 0 {
			left = append(left, "pod netns: "+entries[0].Name())
		}
		return left
	}
	dnsUp := func() bool {
		err := podnet.RunInNetNS(topo.Node, func() error {
			c, err := net.DialTimeout("tcp", "10.250.1.1:53", time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		return err == nil
	}
	cleanup := func(n *Network) {
		t.Helper()
		for range 2 { // idempotent
			if err := n.Cleanup(ctx); err != nil {
				t.Fatalf("Cleanup: %v", err)
			}
		}
		if left := leftovers(); len(left) > 0 {
			t.Fatalf("left after Cleanup:\n%s", strings.Join(left, "\n"))
		}
	}
	install := func(n *Network, kind proxy.Kind) {
		t.Helper()
		if err := n.Sync(ctx, doc, svcs); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		if _, err := n.Attach(ctx, &api.Pod{Namespace: "default", Name: "a", UID: "uid-a"}); err != nil {
			t.Fatalf("Attach: %v", err)
		}
		left := strings.Join(leftovers(), "\n")
		for _, want := range []string{"link: ", "routes: ", "MOOR-PODNET", "state file", "pod netns"} {
			if !strings.Contains(left, want) {
				t.Fatalf("after Sync, no %q in what Cleanup must remove:\n%s", want, left)
			}
		}
		if want := map[proxy.Kind]string{proxy.KindNFTables: "nft: ", proxy.KindIPTables: "MOOR-SERVICES"}[kind]; !strings.Contains(left, want) {
			t.Fatalf("after Sync, no %s proxy rules:\n%s", kind, left)
		}
		if !dnsUp() {
			t.Fatal("DNS server not listening on the gateway")
		}
	}

	n := newNetwork(proxy.KindNFTables)
	cleanup(n) // nothing installed
	install(n, proxy.KindNFTables)
	cleanup(n)
	if dnsUp() {
		t.Error("DNS server still listening after Cleanup")
	}
	install(n, proxy.KindNFTables) // usable again

	// A Network that never synced removes an earlier run's leftovers, of
	// either proxy backend. (Close stands for the earlier process exiting:
	// it stops the DNS server and leaves the rest.)
	n.Close()
	cleanup(newNetwork(proxy.KindIPTables))
	old := newNetwork(proxy.KindIPTables)
	install(old, proxy.KindIPTables)
	old.Close()
	cleanup(newNetwork(proxy.KindNFTables))
}
