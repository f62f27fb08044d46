package planner

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
)

func service(name string, typ corev1.ServiceType, selector map[string]string, ports ...int32) corev1.Service {
	s := corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: typ, Selector: selector}}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "p" + string(rune('a'+len(s.Spec.Ports))), Port: p})
	}
	return s
}

func TestAllocationExhaustion(t *testing.T) {
	var svcs []corev1.Service
	for _, n := range []string{"s01", "s02", "s03", "s04", "s05", "s06", "s07", "s08", "s09", "s10", "s11", "s12", "s13", "s14"} {
		svcs = append(svcs, service(n, corev1.ServiceTypeClusterIP, nil, 80))
	}
	svcs = append(svcs, service("np", corev1.ServiceTypeNodePort, nil, 80, 81))
	out := Plan(Input{
		Objects: &manifest.Objects{Services: svcs},
		Nodes:   parseNodes(t, "a ready\nb ready\nc ready"),
		Network: NetworkConfig{
			ClusterCIDR:   netip.MustParsePrefix("10.1.0.0/24"),
			NodeCIDRSize:  25,
			ServiceCIDR:   netip.MustParsePrefix("10.2.0.0/28"),
			NodePortRange: [2]int{30000, 30000},
		},
	})
	want := []string{
		"node c has no pod CIDR: cluster CIDR 10.1.0.0/24 has no free /25 left; widen --cluster-cidr",
		"service default/np has no node port for default/np/81/TCP: the range 30000-30000 is full",
		"service default/s13 has no clusterIP: service CIDR 10.2.0.0/28 is full; widen --service-cidr",
		"service default/s14 has no clusterIP: service CIDR 10.2.0.0/28 is full; widen --service-cidr",
	}
	if !reflect.DeepEqual(out.Warnings, want) {
		t.Errorf("warnings:\n%s\nwant\n%s", strings.Join(out.Warnings, "\n"), strings.Join(want, "\n"))
	}
	// 16 addresses less network, broadcast and DNS (.10): 13 of the 15
	// Services fit, in key order (np first).
	if n := len(out.Allocations.ClusterIPs); n != 13 {
		t.Errorf("allocated %d cluster IPs, want 13", n)
	}
	for k, ip := range out.Allocations.ClusterIPs {
		if ip == netip.MustParseAddr("10.2.0.10") || ip == netip.MustParseAddr("10.2.0.0") || ip == netip.MustParseAddr("10.2.0.15") {
			t.Errorf("%s got reserved address %s", k, ip)
		}
	}
	if d := out.Nodes["c"].Network; d.PodCIDR.IsValid() || len(d.Peers) != 0 {
		t.Errorf("node c network = %+v", d)
	}
}

// TestAllocationStableAcrossCommits plans commits one after another,
// feeding each Output.Allocations into the next Input, in shuffled order.
func TestAllocationStableAcrossCommits(t *testing.T) {
	nodes := parseNodes(t, "a ready @10.0.0.1\nb ready @10.0.0.2")
	a := service("a", corev1.ServiceTypeNodePort, nil, 80)
	b := service("b", corev1.ServiceTypeClusterIP, nil, 80)
	c := service("c", corev1.ServiceTypeLoadBalancer, nil, 80)
	plan := func(alloc Allocations, svcs ...corev1.Service) *Output {
		return Plan(Input{Objects: &manifest.Objects{Services: svcs}, Nodes: nodes, Allocations: alloc})
	}
	first := plan(Allocations{}, a, b, c)
	// b removed: its address is freed, a and c keep theirs.
	second := plan(first.Allocations, c, a)
	if second.Allocations.ClusterIPs["default/a"] != first.Allocations.ClusterIPs["default/a"] ||
		second.Allocations.ClusterIPs["default/c"] != first.Allocations.ClusterIPs["default/c"] ||
		!reflect.DeepEqual(second.Allocations.NodePorts, first.Allocations.NodePorts) {
		t.Errorf("allocations moved:\n%+v\n%+v", first.Allocations, second.Allocations)
	}
	if _, ok := second.Allocations.ClusterIPs["default/b"]; ok {
		t.Error("b's address was not freed")
	}
	// b comes back and gets the lowest free address: its old one.
	third := plan(second.Allocations, b, a, c)
	if !reflect.DeepEqual(third.Allocations, first.Allocations) {
		t.Errorf("third plan:\n%+v\nwant\n%+v", third.Allocations, first.Allocations)
	}
	// Same input, same documents.
	again := plan(second.Allocations, c, b, a)
	for n, d := range third.Nodes {
		x, _, _ := d.Encode()
		y, _, _ := again.Nodes[n].Encode()
		if string(x) != string(y) {
			t.Errorf("node %s: documents differ", n)
		}
	}
	// Peers: each node routes to the other.
	if p := third.Nodes["a"].Network.Peers; len(p) != 1 || p[0].Name != "b" || p[0].NodeIP.String() != "10.0.0.2" || p[0].PodCIDR.String() != "10.244.1.0/24" {
		t.Errorf("peers of a = %+v", p)
	}
}

// TestEndpointLeavesWithPod: a pod that is no longer planned is not an
// endpoint in the same plan, even though its node still reports it ready.
func TestEndpointLeavesWithPod(t *testing.T) {
	nodes := parseNodes(t, "a ready")
	svc := service("web", corev1.ServiceTypeClusterIP, map[string]string{"app": "web"}, 80)
	one := bare("one", "", nil)
	one.Labels = map[string]string{"app": "web"}
	two := one.DeepCopy()
	two.Name = "two"
	in := Input{Nodes: nodes, Objects: &manifest.Objects{Pods: []corev1.Pod{one, *two}, Services: []corev1.Service{svc}}}
	out := Plan(in)
	var reports []api.PodStatus
	for i, p := range out.Nodes["a"].Pods {
		st := running(p, "c", true, now)
		st.Status.PodIP = "10.244.0." + string(rune('2'+i))
		reports = append(reports, st)
	}
	in.Status, in.Previous = map[string][]api.PodStatus{"a": reports}, out.Placement
	if eps := Plan(in).Nodes["a"].Services[0].Endpoints; len(eps) != 2 {
		t.Fatalf("endpoints = %+v, want both pods", eps)
	}
	in.Objects.Pods = in.Objects.Pods[:1]
	eps := Plan(in).Nodes["a"].Services[0].Endpoints
	if len(eps) != 1 || eps[0].Pod != "one" || eps[0].Ports["pa"] != 80 {
		t.Fatalf("endpoints = %+v, want only one", eps)
	}
}

func TestHostIPFilledFromNode(t *testing.T) {
	out := Plan(Input{Nodes: parseNodes(t, "a ready @192.168.0.5"), Objects: &manifest.Objects{Pods: []corev1.Pod{bare("p", "", nil)}}})
	if got := out.Pods[0].Pod.Status.HostIP; got != "192.168.0.5" {
		t.Errorf("hostIP = %q", got)
	}
}

func TestNetworkConfigValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  NetworkConfig
		want string
	}{
		"defaults": {NetworkConfig{}, ""},
		"overlap":  {NetworkConfig{ClusterCIDR: netip.MustParsePrefix("10.96.0.0/16")}, "overlap"},
		"size":     {NetworkConfig{NodeCIDRSize: 8}, "node CIDR size"},
		"ipv6":     {NetworkConfig{ClusterCIDR: netip.MustParsePrefix("fd00::/64")}, "IPv4"},
		"ports":    {NetworkConfig{NodePortRange: [2]int{40000, 30000}}, "node port range"},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
	c := NetworkConfig{}
	if c.DNSServiceIP().String() != "10.96.0.10" {
		t.Errorf("DNS IP = %s", c.DNSServiceIP())
	}
	if o := c.ManifestOptions(); o.ReservedClusterIPs[c.DNSServiceIP()] == "" || o.NodePortRange != [2]int{30000, 32767} {
		t.Errorf("manifest options = %+v", o)
	}
}
