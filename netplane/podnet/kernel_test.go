package podnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// The kernel tests build "nodes" as network namespaces made by the test, so
// the host's own network is never touched, and remove them afterwards.

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel test: needs root (network namespaces, veth, bridge, iptables)")
	}
	for _, bin := range []string{"nsenter", "iptables", "iptables-restore", "busybox"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("kernel test: %s not installed", bin)
		}
	}
}

// newNodeNS makes a namespace standing in for a node, with lo up.
func newNodeNS(t *testing.T, name string) string {
	t.Helper()
	path := fmt.Sprintf("/var/run/netns/moortest-%s-%d", name, os.Getpid())
	deleteNetNS(path)
	if err := createNetNS(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteNetNS(path) })
	h, closeH, err := handleAt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer closeH()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return path
}

// podNSDir is a directory for pod namespaces that unmounts what is left
// in it before the test's temp dir is removed.
func podNSDir(t *testing.T) string {
	dir := t.TempDir()
	t.Cleanup(func() {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			deleteNetNS(filepath.Join(dir, e.Name()))
		}
	})
	return dir
}

func testNetwork(t *testing.T, nodeNS, podCIDR, nodeIP, stateDir, nsDir string) *Network {
	t.Helper()
	n, err := New(Config{
		PodCIDR:     netip.MustParsePrefix(podCIDR),
		ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"),
		StateDir:    stateDir,
		NodeIP:      netip.MustParseAddr(nodeIP),
		HostNetNS:   nodeNS,
		NetNSDir:    nsDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// inNS runs fn on a thread moved into the namespace at path; sockets fn
// creates stay in that namespace.
func inNS(path string, fn func() error) error {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return err
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- err // thread stays locked and dies with the goroutine
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// listen starts a TCP server in the namespace that answers every
// connection with the caller's address.
func listen(t *testing.T, nsPath, addr string) string {
	t.Helper()
	var ln net.Listener
	if err := inNS(nsPath, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatalf("listen in %s: %v", nsPath, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, c.RemoteAddr().(*net.TCPAddr).IP.String())
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// seenAs dials addr from the namespace and returns the source address the
// server saw.
func seenAs(t *testing.T, fromNS, addr string) string {
	t.Helper()
	var conn net.Conn
	err := inNS(fromNS, func() (err error) { conn, err = net.DialTimeout("tcp", addr, 3*time.Second); return err })
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, fromNS, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return string(b)
}

func ping(t *testing.T, fromNS string, ip netip.Addr) {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+fromNS, "busybox", "ping", "-c", "1", "-W", "2", ip.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("ping %s from %s: %v\n%s", ip, fromNS, err, out)
	}
}

func iptablesSave(t *testing.T, nodeNS string) string {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+nodeNS, "iptables-save").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save: %v\n%s", err, out)
	}
	return string(out)
}

func TestKernelSingleNode(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	node := newNodeNS(t, "single")
	stateDir, nsDir := t.TempDir(), podNSDir(t)
	n := testNetwork(t, node, "10.244.1.0/24", "192.168.77.1", stateDir, nsDir)
	for range 2 { // idempotent
		if err := n.EnsureNode(ctx); err != nil {
			t.Fatalf("EnsureNode: %v", err)
		}
	}
	rules := iptablesSave(t, node)
	for _, want := range []string{"-j " + ChainEgress, "-j " + ChainForward, "-j MASQUERADE"} {
		if c := strings.Count(rules, want); c != 1 {
			t.Errorf("iptables-save has %q %d times, want once:\n%s", want, c, rules)
		}
	}

	a, err := n.Setup(ctx, "default/a")
	if err != nil {
		t.Fatalf("Setup a: %v", err)
	}
	b, err := n.Setup(ctx, "default/b")
	if err != nil {
		t.Fatalf("Setup b: %v", err)
	}
	if a.IP.String() != "10.244.1.2" || b.IP.String() != "10.244.1.3" || a.Gateway.String() != "10.244.1.1" {
		t.Fatalf("attachments %+v %+v", a, b)
	}
	ping(t, a.NetNSPath, b.IP)
	ping(t, a.NetNSPath, a.Gateway)
	ping(t, b.NetNSPath, netip.MustParseAddr("127.0.0.1")) // lo is up
	srv := listen(t, b.NetNSPath, b.IP.String()+":0")
	if got := seenAs(t, a.NetNSPath, srv); got != a.IP.String() {
		t.Fatalf("pod b saw pod a as %s, want %s (no masquerade inside the cluster)", got, a.IP)
	}
	h, closeH, _ := handleAt(node)
	defer closeH()
	hostVeth, err := h.LinkByName(a.HostVeth)
	if err != nil {
		t.Fatal(err)
	}
	if pi, err := h.LinkGetProtinfo(hostVeth); err != nil || !pi.Hairpin {
		t.Errorf("hairpin on %s: %+v %v", a.HostVeth, pi, err)
	}

	// Agent restart: a new Network over the same state returns the same
	// attachment, and repairs a veth deleted behind its back.
	n2 := testNetwork(t, node, "10.244.1.0/24", "192.168.77.1", stateDir, nsDir)
	if again, err := n2.Setup(ctx, "default/a"); err != nil || again != a {
		t.Fatalf("Setup after restart = %+v, %v; want %+v", again, err, a)
	}
	if err := h.LinkDel(hostVeth); err != nil {
		t.Fatal(err)
	}
	if again, err := n2.Setup(ctx, "default/a"); err != nil || again != a {
		t.Fatalf("Setup repairing veth = %+v, %v; want %+v", again, err, a)
	}
	ping(t, b.NetNSPath, a.IP)

	// Teardown frees the address and removes veth and namespace.
	if err := n2.Teardown(ctx, "default/b"); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if err := n2.Teardown(ctx, "default/b"); err != nil {
		t.Fatalf("second Teardown: %v", err)
	}
	var nf netlink.LinkNotFoundError
	if _, err := h.LinkByName(b.HostVeth); !errors.As(err, &nf) {
		t.Errorf("veth %s after Teardown: %v", b.HostVeth, err)
	}
	if _, err := os.Stat(b.NetNSPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("netns %s after Teardown: %v", b.NetNSPath, err)
	}
	if ids, _ := n2.List(ctx); strings.Join(ids, ",") != "default/a" {
		t.Errorf("List = %v, want [default/a]", ids)
	}
	n3 := testNetwork(t, node, "10.244.1.0/24", "192.168.77.1", stateDir, nsDir)
	if _, held := n3.alloc.byIP[b.IP]; held {
		t.Errorf("%s still allocated after Teardown and restart", b.IP)
	}
	if err := n3.Teardown(ctx, "default/a"); err != nil {
		t.Fatal(err)
	}
}

// connect wires two node namespaces with a veth, addresses on 192.168.77.0/24.
func connect(t *testing.T, a, b string, ipA, ipB string) {
	t.Helper()
	ha, closeA, err := handleAt(a)
	if err != nil {
		t.Fatal(err)
	}
	defer closeA()
	hb, closeB, err := handleAt(b)
	if err != nil {
		t.Fatal(err)
	}
	defer closeB()
	nsB, err := netns.GetFromPath(b)
	if err != nil {
		t.Fatal(err)
	}
	defer nsB.Close()
	wire := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "wire"}, PeerName: "wire", PeerNamespace: netlink.NsFd(int(nsB))}
	if err := ha.LinkAdd(wire); err != nil {
		t.Fatal(err)
	}
	for _, side := range []struct {
		h  *netlink.Handle
		ip string
	}{{ha, ipA}, {hb, ipB}} {
		l, err := side.h.LinkByName("wire")
		if err != nil {
			t.Fatal(err)
		}
		if err := side.h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(netip.MustParseAddr(side.ip), 24)}); err != nil {
			t.Fatal(err)
		}
		if err := side.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKernelTwoNodes(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	nodeA, nodeB := newNodeNS(t, "a"), newNodeNS(t, "b")
	connect(t, nodeA, nodeB, "192.168.77.1", "192.168.77.2")
	nsDir := podNSDir(t)
	na := testNetwork(t, nodeA, "10.244.1.0/24", "192.168.77.1", t.TempDir(), nsDir)
	nb := testNetwork(t, nodeB, "10.244.2.0/24", "192.168.77.2", t.TempDir(), nsDir)
	peers := []Peer{
		{Name: "a", NodeIP: netip.MustParseAddr("192.168.77.1"), PodCIDR: netip.MustParsePrefix("10.244.1.0/24")},
		{Name: "b", NodeIP: netip.MustParseAddr("192.168.77.2"), PodCIDR: netip.MustParsePrefix("10.244.2.0/24")},
	}
	for _, n := range []*Network{na, nb} {
		if err := n.EnsureNode(ctx); err != nil {
			t.Fatal(err)
		}
		for range 2 { // idempotent
			if err := n.Routes(ctx, peers); err != nil {
				t.Fatalf("Routes: %v", err)
			}
		}
	}
	podA, err := na.Setup(ctx, "pod-on-a")
	if err != nil {
		t.Fatal(err)
	}
	podB, err := nb.Setup(ctx, "pod-on-b")
	if err != nil {
		t.Fatal(err)
	}
	ping(t, podA.NetNSPath, podB.IP)
	srv := listen(t, podB.NetNSPath, podB.IP.String()+":0")
	if got := seenAs(t, podA.NetNSPath, srv); got != podA.IP.String() {
		t.Fatalf("pod on b saw pod on a as %s, want %s", got, podA.IP)
	}
	// Leaving the cluster CIDR (here: to node b's own address) masquerades.
	outside := listen(t, nodeB, "192.168.77.2:0")
	if got := seenAs(t, podA.NetNSPath, outside); got != "192.168.77.1" {
		t.Fatalf("node b saw pod on a as %s, want the node address 192.168.77.1 (masquerade)", got)
	}

	// Node b leaves: its route goes, other routes stay.
	h, closeH, _ := handleAt(nodeA)
	defer closeH()
	if err := na.Routes(ctx, peers[:1]); err != nil {
		t.Fatal(err)
	}
	moor, _ := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if len(moor) != 0 {
		t.Fatalf("moor routes after node b left: %v", moor)
	}
	all, _ := h.RouteList(nil, netlink.FAMILY_V4)
	if len(all) == 0 {
		t.Fatal("Routes removed routes it does not own")
	}
	for _, tc := range []struct {
		n  *Network
		id string
	}{{na, "pod-on-a"}, {nb, "pod-on-b"}} {
		if err := tc.n.Teardown(ctx, tc.id); err != nil {
			t.Fatal(err)
		}
	}
}

// podnetLeftovers lists what of podnet remains in the node namespace, as
// ip(8), iptables-save and the file system show it.
func podnetLeftovers(t *testing.T, node, stateDir string, pods ...Attachment) []string {
	t.Helper()
	in := func(args ...string) string {
		out, err := exec.Command("nsenter", append([]string{"--net=" + node}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	var left []string
	for _, l := range strings.Split(in("ip", "-o", "link"), "\n") {
		if strings.Contains(l, " moor0") || strings.Contains(l, " mv") {
			left = append(left, "link: "+l)
		}
	}
	if out := strings.TrimSpace(in("ip", "route", "show", "proto", "77")); out != "" {
		left = append(left, "routes: "+out)
	}
	for _, l := range strings.Split(in("iptables-save"), "\n") {
		if strings.Contains(l, "MOOR-PODNET") {
			left = append(left, "iptables: "+l)
		}
	}
	if _, err := os.Stat(filepath.Join(stateDir, stateFileName)); err == nil {
		left = append(left, "state file")
	}
	for _, p := range pods {
		if _, err := os.Stat(p.NetNSPath); err == nil {
			left = append(left, "netns "+p.NetNSPath)
		}
	}
	return left
}

func TestKernelCleanup(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	nodeA, nodeB := newNodeNS(t, "cleanup-a"), newNodeNS(t, "cleanup-b")
	connect(t, nodeA, nodeB, "192.168.77.1", "192.168.77.2")
	stateDir, nsDir := t.TempDir(), podNSDir(t)
	n := testNetwork(t, nodeA, "10.244.1.0/24", "192.168.77.1", stateDir, nsDir)
	peers := []Peer{{Name: "b", NodeIP: netip.MustParseAddr("192.168.77.2"), PodCIDR: netip.MustParsePrefix("10.244.2.0/24")}}
	inA := func(args ...string) string {
		out, err := exec.Command("nsenter", append([]string{"--net=" + nodeA}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}

	// Nothing installed: succeeds, twice, and creates nothing.
	for range 2 {
		if err := n.Cleanup(ctx); err != nil {
			t.Fatalf("Cleanup of nothing: %v", err)
		}
	}
	if _, err := exec.LookPath("nft"); err == nil {
		if out := inA("nft", "list", "tables"); out != "" {
			t.Errorf("Cleanup of nothing created tables:\n%s", out)
		}
	}

	install := func(n *Network) []Attachment {
		t.Helper()
		if err := n.EnsureNode(ctx); err != nil {
			t.Fatal(err)
		}
		if err := n.Routes(ctx, peers); err != nil {
			t.Fatal(err)
		}
		var atts []Attachment
		for _, id := range []string{"default/a", "default/b"} {
			a, err := n.Setup(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			atts = append(atts, a)
		}
		if left := podnetLeftovers(t, nodeA, stateDir); len(left) == 0 {
			t.Fatal("nothing installed?")
		}
		return atts
	}
	// Someone else's route and chain must survive.
	inA("ip", "route", "add", "10.9.0.0/16", "via", "192.168.77.2")
	inA("iptables", "-w", "-t", "nat", "-N", "OTHER")
	inA("iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-j", "OTHER")

	atts := install(n)
	for range 2 { // idempotent
		if err := n.Cleanup(ctx); err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
	}
	if left := podnetLeftovers(t, nodeA, stateDir, atts...); len(left) > 0 {
		t.Errorf("left after Cleanup:\n%s", strings.Join(left, "\n"))
	}
	if !strings.Contains(inA("ip", "route"), "10.9.0.0/16") {
		t.Error("Cleanup removed a route podnet did not install")
	}
	if save := inA("iptables-save", "-t", "nat"); !strings.Contains(save, "-A POSTROUTING -j OTHER") {
		t.Errorf("Cleanup removed a rule podnet did not install:\n%s", save)
	}

	// The Network is usable again, with its addresses forgotten.
	atts = install(n)
	if atts[0].IP.String() != "10.244.1.2" {
		t.Errorf("first pod after Cleanup got %s, want 10.244.1.2", atts[0].IP)
	}
	ping(t, atts[0].NetNSPath, atts[1].IP)

	// Leftovers of an earlier run (another process): the package-level
	// Cleanup needs only the state dir and the bridge name.
	if err := Cleanup(ctx, CleanupConfig{StateDir: stateDir, HostNetNS: nodeA}); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if left := podnetLeftovers(t, nodeA, stateDir, atts...); len(left) > 0 {
		t.Errorf("left after package Cleanup:\n%s", strings.Join(left, "\n"))
	}
}
