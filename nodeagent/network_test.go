package nodeagent_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/nodeagent"
	"github.com/moor-dev/moor/nodeagent/fakeruntime"
)

// fakeNetwork is an in-memory nodeagent.Network: it hands out addresses
// from 10.244.1.0/24 and records what the agent asked for.
type fakeNetwork struct {
	mu       sync.Mutex
	next     int
	attached map[string]nodeagent.Attachment
	syncs    []*api.Network
	services [][]api.Service
	detached []string
	onSync   func(svcs []api.Service) // called during Sync, unlocked
}

var _ nodeagent.Network = (*fakeNetwork)(nil)

func newFakeNetwork() *fakeNetwork {
	return &fakeNetwork{next: 2, attached: map[string]nodeagent.Attachment{}}
}

func (f *fakeNetwork) Sync(_ context.Context, n *api.Network, svcs []api.Service) error {
	f.mu.Lock()
	f.syncs = append(f.syncs, n)
	f.services = append(f.services, svcs)
	hook := f.onSync
	f.mu.Unlock()
	if hook != nil {
		hook(svcs)
	}
	return nil
}

func (f *fakeNetwork) Attach(_ context.Context, p *api.Pod) (nodeagent.Attachment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.syncs) == 0 {
		return nodeagent.Attachment{}, fmt.Errorf("not synced yet")
	}
	if a, ok := f.attached[p.UID]; ok {
		return a, nil
	}
	a := nodeagent.Attachment{
		NetNSPath:  "/run/netns/pod-" + p.UID,
		IP:         netip.AddrFrom4([4]byte{10, 244, 1, byte(f.next)}),
		ResolvConf: []byte("nameserver 10.244.1.1\n"),
	}
	f.next++
	f.attached[p.UID] = a
	return a, nil
}

func (f *fakeNetwork) Detach(_ context.Context, uid string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.attached, uid)
	f.detached = append(f.detached, uid)
	return nil
}

func (f *fakeNetwork) Attached(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for uid := range f.attached {
		out = append(out, uid)
	}
	slices.Sort(out)
	return out, nil
}

func (f *fakeNetwork) isDetached(uid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.detached, uid)
}

// SetDoc publishes a whole desired document.
func (s *fakeServer) SetDoc(d api.NodeDesired) string {
	d.Node = s.node
	b, digest, err := d.Encode()
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc, s.digest = b, digest
	close(s.changed)
	s.changed = make(chan struct{})
	return digest
}

func testNetwork() *api.Network {
	return &api.Network{
		PodCIDR:      netip.MustParsePrefix("10.244.1.0/24"),
		ClusterCIDR:  netip.MustParsePrefix("10.244.0.0/16"),
		ServiceCIDR:  netip.MustParsePrefix("10.96.0.0/12"),
		DNSDomain:    api.DefaultDNSDomain,
		DNSServiceIP: netip.MustParseAddr("10.96.0.10"),
	}
}

func webService(endpoints ...api.Endpoint) api.Service {
	return api.Service{
		Namespace: "default", Name: "web-app", Type: api.ServiceTypeClusterIP,
		ClusterIP: netip.MustParseAddr("10.96.0.5"), SessionAffinity: api.AffinityNone,
		Ports:     []api.ServicePort{{Name: "http", Protocol: "TCP", Port: 80}, {Name: "metrics", Protocol: "TCP", Port: 9090}},
		Endpoints: endpoints,
	}
}

// TestPodNetwork runs a pod on the pod network: namespace, host name,
// resolv.conf and hosts mounts, service variables, pod and host IP in
// status; then removes it: the service table without it is applied while
// its container still runs, and the attachment goes after the container.
func TestPodNetwork(t *testing.T) {
	srv := newFakeServer(t, node)
	dir := t.TempDir()
	cfg := testConfig(t, srv, dir)
	cfg.NodeIP = netip.MustParseAddr("192.168.7.3")
	net := newFakeNetwork()
	cfg.Network = net
	rt := fakeruntime.New()
	rt.AddImage("img/app")
	pod := testPod("p1", "uid-1", "app")
	other := api.Service{Namespace: "other", Name: "db", ClusterIP: netip.MustParseAddr("10.96.0.9"),
		Ports: []api.ServicePort{{Protocol: "TCP", Port: 5432}}}
	srv.SetDoc(api.NodeDesired{Commit: "c1", Pods: []api.Pod{pod}, Network: testNetwork(), Services: []api.Service{webService(), other}})
	start(t, cfg, rt)

	id := cid(pod, "app")
	eventually(t, "pod runs", func() bool { return running(rt, id) })
	spec, _ := rt.Spec(id)
	if spec.NetNSPath != "/run/netns/pod-uid-1" || spec.Hostname != "p1" {
		t.Errorf("netns %q hostname %q, want /run/netns/pod-uid-1 and p1", spec.NetNSPath, spec.Hostname)
	}
	podDir := filepath.Join(dir, "pods", "uid-1")
	wantMounts := []nodeagent.Mount{
		{Source: filepath.Join(podDir, "resolv.conf"), Destination: "/etc/resolv.conf", ReadOnly: true},
		{Source: filepath.Join(podDir, "hosts"), Destination: "/etc/hosts", ReadOnly: true},
	}
	if !slices.Equal(spec.Mounts, wantMounts) {
		t.Errorf("mounts %+v, want %+v", spec.Mounts, wantMounts)
	}
	if b, _ := os.ReadFile(filepath.Join(podDir, "resolv.conf")); string(b) != "nameserver 10.244.1.1\n" {
		t.Errorf("resolv.conf %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(podDir, "hosts")); !slices.Contains(splitLines(string(b)), "10.244.1.2\tp1") {
		t.Errorf("hosts %q lacks the pod's own name", b)
	}
	wantEnv := []string{"WEB_APP_SERVICE_HOST=10.96.0.5", "WEB_APP_SERVICE_PORT=80",
		"WEB_APP_SERVICE_PORT_HTTP=80", "WEB_APP_SERVICE_PORT_METRICS=9090"}
	if !slices.Equal(spec.Env, wantEnv) {
		t.Errorf("env %q, want %q (services of other namespaces excluded)", spec.Env, wantEnv)
	}
	eventually(t, "pod IP and host IP reported", func() bool {
		st := podStatus(srv, "p1")
		return st != nil && st.Status.PodIP == "10.244.1.2" && st.Status.HostIP == "192.168.7.3" &&
			srv.LastStatus().NodeIP == cfg.NodeIP
	})
	srv.mu.Lock()
	joinAddr := srv.joinAddr
	srv.mu.Unlock()
	if joinAddr != cfg.NodeIP {
		t.Errorf("join address %v, want %v", joinAddr, cfg.NodeIP)
	}

	// Remove the pod: the table without its endpoint is applied first.
	var mu sync.Mutex
	runningAtSync := false
	net.mu.Lock()
	net.onSync = func(svcs []api.Service) {
		if len(svcs) == 1 && len(svcs[0].Endpoints) == 0 {
			mu.Lock()
			runningAtSync = runningAtSync || running(rt, id)
			mu.Unlock()
		}
	}
	net.mu.Unlock()
	srv.SetDoc(api.NodeDesired{Commit: "c2", Network: testNetwork(), Services: []api.Service{webService()}})
	eventually(t, "container removed and pod network detached", func() bool {
		return !exists(rt, id) && net.isDetached("uid-1")
	})
	mu.Lock()
	defer mu.Unlock()
	if !runningAtSync {
		t.Error("the service table without the pod was not applied before its container stopped")
	}
	if _, err := os.Stat(podDir); !os.IsNotExist(err) {
		t.Errorf("pod files left: %v", err)
	}
}

// TestHostNetworkReportsNodeIP: without a Network, pods run in the host
// network and report the node's address as pod IP.
func TestHostNetworkReportsNodeIP(t *testing.T) {
	srv := newFakeServer(t, node)
	cfg := testConfig(t, srv, t.TempDir())
	cfg.NodeIP = netip.MustParseAddr("192.168.7.4")
	rt := fakeruntime.New()
	rt.AddImage("img/app")
	pod := testPod("p1", "uid-1", "app")
	srv.SetDoc(api.NodeDesired{Commit: "c1", Pods: []api.Pod{pod}, Network: testNetwork(), Services: []api.Service{webService()}})
	start(t, cfg, rt)
	eventually(t, "pod IP reported", func() bool {
		st := podStatus(srv, "p1")
		return st != nil && st.Status.PodIP == "192.168.7.4" && st.Status.HostIP == "192.168.7.4"
	})
	spec, _ := rt.Spec(cid(pod, "app"))
	if spec.NetNSPath != "" || len(spec.Mounts) != 0 {
		t.Errorf("host-network pod got netns %q mounts %v", spec.NetNSPath, spec.Mounts)
	}
	if !slices.Contains(spec.Env, "WEB_APP_SERVICE_HOST=10.96.0.5") {
		t.Errorf("env %q lacks the service variables", spec.Env)
	}
}

func splitLines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }
