package podnet

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/moor-dev/moor/netplane/dns"
)

// TestKernelPodDNS runs the node DNS server on the bridge gateway, as the
// agent will, and resolves a service name from inside a pod.
func TestKernelPodDNS(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	node := newNodeNS(t, "dns")
	n := testNetwork(t, node, "10.244.5.0/24", "192.168.77.1", t.TempDir(), podNSDir(t))
	if err := n.EnsureNode(ctx); err != nil {
		t.Fatal(err)
	}
	pod, err := n.Setup(ctx, "default/client")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Teardown(ctx, "default/client")

	srv, err := dns.New(dns.Config{Listen: n.Gateway().String() + ":53", Upstreams: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := inNS(node, func() error { return srv.Start(ctx) }); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Update(dns.Records{Services: []dns.Service{
		{Namespace: "default", Name: "web", ClusterIP: netip.MustParseAddr("10.96.0.10")},
	}})
	out, err := exec.Command("nsenter", "--net="+pod.NetNSPath, "busybox", "nslookup",
		"web.default.svc.cluster.local", pod.Gateway.String()).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "10.96.0.10") {
		t.Fatalf("nslookup from the pod: %v\n%s", err, out)
	}
}
