// Package proxytest is the behavioural suite every proxy.Backend runs
// against the real kernel: it builds throwaway network namespaces (a client,
// a node holding the rules, a pod holding the endpoints), programs service
// tables through the backend and checks what real TCP/UDP traffic does.
//
// It needs root and the ip(8) tool; without them it skips. It touches only
// the namespaces it creates, and deletes them when the test ends.
package proxytest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// Addresses of the topology Setup builds.
const (
	NodeClientIP = "192.168.77.1" // node's address towards the client
	ClientIP     = "192.168.77.2"
	NodePodIP    = "10.244.0.1" // node's address towards the pod
	ClusterCIDR  = "10.244.0.0/16"
)

// PodIPs are the endpoint addresses, all inside the pod namespace.
var PodIPs = []string{"10.244.0.2", "10.244.0.3", "10.244.0.4"}

// Topology names the namespaces of one test run (paths under /run/netns).
type Topology struct {
	Node, Client, Pod string
}

// SkipUnlessRoot skips when the kernel parts cannot run.
func SkipUnlessRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to create network namespaces; CI runs it as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("needs the ip tool (iproute2)")
	}
}

// Run executes a command, failing the test with its output on error.
func Run(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Setup builds client ⇄ node ⇄ pod namespaces joined by veth pairs. The node
// forwards, has a default route towards the client, and is where rules go.
func Setup(tb testing.TB) Topology {
	tb.Helper()
	SkipUnlessRoot(tb)
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	id := "moor-" + hex.EncodeToString(rnd[:])
	names := []string{id + "-node", id + "-client", id + "-pod"}
	for _, n := range names {
		Run(tb, "ip", "netns", "add", n)
		tb.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n).Run() })
	}
	node, client, pod := names[0], names[1], names[2]
	in := func(ns string, args ...string) { Run(tb, "ip", append([]string{"-n", ns}, args...)...) }
	for _, ns := range names {
		in(ns, "link", "set", "lo", "up")
	}
	in(node, "link", "add", "to-client", "type", "veth", "peer", "name", "eth0", "netns", client)
	in(node, "link", "add", "to-pod", "type", "veth", "peer", "name", "eth0", "netns", pod)
	in(node, "addr", "add", NodeClientIP+"/24", "dev", "to-client")
	in(node, "addr", "add", NodePodIP+"/24", "dev", "to-pod")
	for _, l := range []string{"to-client", "to-pod"} {
		in(node, "link", "set", l, "up")
	}
	Run(tb, "ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	// This kernel's per-host ICMP rate limit starts with an empty bucket, so
	// a fresh namespace would swallow the very first port-unreachable.
	Run(tb, "ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
	in(client, "addr", "add", ClientIP+"/24", "dev", "eth0")
	in(client, "link", "set", "eth0", "up")
	in(client, "route", "add", "default", "via", NodeClientIP)
	// The node routes unknown destinations (VIPs without rules) back to the
	// client, which drops them: a VIP without rules times out.
	in(node, "route", "add", "default", "via", ClientIP)
	for _, ip := range PodIPs {
		in(pod, "addr", "add", ip+"/24", "dev", "eth0")
	}
	in(pod, "link", "set", "eth0", "up")
	in(pod, "route", "add", "default", "via", NodePodIP, "src", PodIPs[0])
	p := func(n string) string { return "/run/netns/" + n }
	return Topology{Node: p(node), Client: p(client), Pod: p(pod)}
}

// InNS runs fn on an OS thread switched into the namespace at path. Sockets
// created inside stay in that namespace after fn returns.
func InNS(path string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromPath(path)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns %s: %w", path, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering netns %s: %w", path, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime discards it when this
		// goroutine exits instead of reusing a thread in the wrong netns.
		return fmt.Errorf("leaving netns %s: %w", path, err)
	}
	runtime.UnlockOSThread()
	return ferr
}
