package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/moor-dev/moor/nodeagent/containerd"
	"github.com/moor-dev/moor/nodeagent/containerdproc"
)

// The multi-node topology: one bridge in the host's network namespace
// holding hostSubnet's first address (the server listens there) and one
// network namespace per node, connected to the bridge by a veth, with the
// node's address and a default route via the bridge. Only addresses of the
// namespaces the test creates are used.
const (
	hostSubnet = "172.30.0"
	hostIP     = hostSubnet + ".1"
)

// netNode is one node of the topology: its network namespace, private
// containerd and agent.
type netNode struct {
	name    string // node name, "node-a"
	netns   string // namespace name
	ip      string
	dir     string // agent data dir
	socket  string
	runtime *containerd.Runtime
	agent   *proc
}

func (n *netNode) nsPath() string { return "/var/run/netns/" + n.netns }

// requireNetTools skips unless the topology can be built.
func requireNetTools(t *testing.T) {
	t.Helper()
	requireRoot(t)
	for _, b := range []string{"ip", "nsenter", "iptables"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s is not installed: the multi-node test needs iproute2, util-linux and iptables", b)
		}
	}
	if out, _ := exec.Command("ip", "-4", "route", "show", hostSubnet+".0/24").Output(); len(strings.TrimSpace(string(out))) > 0 {
		t.Skipf("%s.0/24 is already routed on this machine (%s): the multi-node test needs it free", hostSubnet, strings.TrimSpace(string(out)))
	}
}

// runID is a short random suffix keeping names of concurrent runs apart.
func runID(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func sh(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// hostBridge creates the host bridge and accepts forwarding across it
// (the host may filter bridged traffic with br_netfilter).
func hostBridge(t *testing.T, id string) string {
	br := "mbr" + id
	sh(t, "ip", "link", "add", br, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", br).Run() })
	sh(t, "ip", "addr", "add", hostIP+"/24", "dev", br)
	sh(t, "ip", "link", "set", br, "up")
	rule := []string{"FORWARD", "-i", br, "-o", br, "-j", "ACCEPT"}
	sh(t, "iptables", append([]string{"-I"}, rule...)...)
	t.Cleanup(func() { _ = exec.Command("iptables", append([]string{"-D"}, rule...)...).Run() })
	return br
}

// addNode creates the node's namespace and wires it to the bridge.
func addNode(t *testing.T, id, br, letter string, last int) *netNode {
	n := &netNode{name: "node-" + letter, netns: "moor-e2e-" + id + "-" + letter, ip: fmt.Sprintf("%s.%d", hostSubnet, last)}
	sh(t, "ip", "netns", "add", n.netns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", n.netns).Run() })
	veth := "mve" + id + letter
	sh(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", n.netns)
	sh(t, "ip", "link", "set", veth, "master", br, "up")
	in := func(args ...string) { sh(t, "ip", append([]string{"-n", n.netns}, args...)...) }
	in("link", "set", "lo", "up")
	in("addr", "add", n.ip+"/24", "dev", "eth0")
	in("link", "set", "eth0", "up")
	in("route", "add", "default", "via", hostIP)
	return n
}

// startContainerd starts a private containerd inside the node's network
// namespace (through a wrapper running nsenter: `ip netns exec` would
// remount /sys and hide the cgroup mounts runc needs).
func (n *netNode) startContainerd(t *testing.T, ctx context.Context, dir, registry string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(dir, "containerd-in-netns")
	script := fmt.Sprintf("#!/bin/sh\nexec nsenter --net=%s containerd \"$@\"\n", n.nsPath())
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs after containerd has stopped.
	t.Cleanup(func() {
		removePodNetNS(n.dir)
		cgs, _ := filepath.Glob("/sys/fs/cgroup/*/" + n.netns)
		for _, cg := range append(cgs, "/sys/fs/cgroup/"+n.netns) {
			_ = os.Remove(cg)
		}
	})
	n.socket, n.runtime = startContainerd(t, ctx, containerdproc.Config{Dir: filepath.Join(dir, "ctrd"), Binary: wrapper},
		containerd.Config{InsecureRegistries: []string{registry}})
}

// removePodNetNS unmounts the pod namespaces an agent's pod network left
// behind (normally none: the agent tears them down when pods go).
func removePodNetNS(agentDir string) {
	b, err := os.ReadFile(filepath.Join(agentDir, "network", "ipam.json"))
	if err != nil {
		return
	}
	var st struct {
		Pods map[string]struct {
			NetNS string `json:"netns"`
		} `json:"pods"`
	}
	if json.Unmarshal(b, &st) != nil {
		return
	}
	for _, p := range st.Pods {
		if strings.HasPrefix(p.NetNS, "/var/run/netns/moor-") {
			_ = syscall.Unmount(p.NetNS, syscall.MNT_DETACH)
			_ = os.Remove(p.NetNS)
		}
	}
}

// startIn runs the moor binary inside the node's network namespace.
func (e *env) startIn(n *netNode, name string, args ...string) *proc {
	e.t.Helper()
	return e.startCmd(name, exec.Command("nsenter", append([]string{"--net=" + n.nsPath(), e.moor}, args...)...))
}
