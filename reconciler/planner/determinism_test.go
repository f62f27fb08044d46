package planner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"sort"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
)

// richInput mixes deployments with and without selectors, bare and pinned
// pods, unschedulable pods, not-ready nodes, a previous placement and
// status reports.
func richInput(t testing.TB) Input {
	objs := &manifest.Objects{}
	for i := 0; i < 12; i++ {
		var sel map[string]string
		if i%3 == 0 {
			sel = map[string]string{"zone": fmt.Sprintf("z%d", i%2)}
		}
		objs.Deployments = append(objs.Deployments, deployment(fmt.Sprintf("d%02d", i), int32(i%4+1), "img:1", sel))
	}
	objs.Pods = []corev1.Pod{
		bare("pinned", "n3", nil), bare("nowhere", "", map[string]string{"gpu": "1"}),
		bare("ghost", "n99", nil), bare("free", "", nil),
	}
	for i := 0; i < 12; i += 2 {
		typ := []corev1.ServiceType{corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer}[i%3]
		objs.Services = append(objs.Services, service(fmt.Sprintf("d%02d", i), typ, map[string]string{"app": fmt.Sprintf("d%02d", i)}, 80, 443))
	}
	nodes := parseNodes(t, "n0 ready zone=z0 @10.0.0.1\nn1 ready zone=z1 @10.0.0.2\nn2 notready zone=z0\nn3 ready @10.0.0.4\nn4 ready zone=z1\nn5 notready @10.0.0.6")
	first := Plan(Input{Commit: "c1", Objects: objs, Nodes: nodes})
	status := map[string][]api.PodStatus{}
	i := 0
	for _, n := range sortedKeys(first.Nodes) {
		d := first.Nodes[n]
		for _, p := range d.Pods {
			st := running(p, "c1", i%2 == 0, now)
			st.Status.PodIP = first.Allocations.PodCIDRs[n].Addr().Next().String()
			status[d.Node] = append(status[d.Node], st)
			i++
		}
	}
	return Input{Commit: "c2", Objects: objs, Nodes: nodes, Previous: first.Placement, Status: status, Now: now,
		Allocations: first.Allocations}
}

func shuffled(in Input, r *rand.Rand) Input {
	cp := func(s []corev1.Pod) []corev1.Pod { return append([]corev1.Pod(nil), s...) }
	objs := &manifest.Objects{
		Pods:        cp(in.Objects.Pods),
		Deployments: append([]appsv1.Deployment(nil), in.Objects.Deployments...),
		Services:    append([]corev1.Service(nil), in.Objects.Services...),
	}
	r.Shuffle(len(objs.Services), func(i, j int) { objs.Services[i], objs.Services[j] = objs.Services[j], objs.Services[i] })
	r.Shuffle(len(objs.Pods), func(i, j int) { objs.Pods[i], objs.Pods[j] = objs.Pods[j], objs.Pods[i] })
	r.Shuffle(len(objs.Deployments), func(i, j int) {
		objs.Deployments[i], objs.Deployments[j] = objs.Deployments[j], objs.Deployments[i]
	})
	nodes := append([]Node(nil), in.Nodes...)
	r.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	status := map[string][]api.PodStatus{}
	for n, s := range in.Status {
		s = append([]api.PodStatus(nil), s...)
		r.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
		status[n] = s
	}
	in.Objects, in.Nodes, in.Status = objs, nodes, status
	return in
}

func encodeAll(t testing.TB, out *Output) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, n := range sortedKeys(out.Nodes) {
		doc, digest, err := out.Nodes[n].Encode()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s\n%s\n", n, digest, doc)
	}
	rest, err := json.Marshal(struct {
		Placement   map[string]string
		Pending     []Pending
		Pods        []api.PodView
		Deployments []api.DeploymentView
		Services    []api.ServiceView
		Allocations Allocations
		Warnings    []string
	}{out.Placement, out.Pending, out.Pods, out.Deployments, out.Services, out.Allocations, out.Warnings})
	if err != nil {
		t.Fatal(err)
	}
	b.Write(rest)
	return b.Bytes()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestDeterministicUnderShuffledInput(t *testing.T) {
	in := richInput(t)
	want := encodeAll(t, Plan(in))
	if again := encodeAll(t, Plan(in)); !bytes.Equal(want, again) {
		t.Fatal("two plans of the same input differ")
	}
	out := Plan(in)
	if len(out.Pending) != 2 || len(out.Nodes) != 6 {
		t.Fatalf("fixture drifted: %d pending, %d nodes", len(out.Pending), len(out.Nodes))
	}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 50; i++ {
		if got := encodeAll(t, Plan(shuffled(in, r))); !bytes.Equal(want, got) {
			t.Fatalf("shuffle %d changed the output:\n%s\nwant:\n%s", i, got, want)
		}
	}
}

func TestPlanDoesNotModifyInput(t *testing.T) {
	in := richInput(t)
	before, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := Plan(in)
	for _, d := range out.Nodes {
		for i := range d.Pods {
			if d.Pods[i].Labels != nil {
				d.Pods[i].Labels["mutated"] = "yes"
			}
			d.Pods[i].Spec.Containers[0].Image = "mutated"
		}
	}
	after, _ := json.Marshal(in)
	if !bytes.Equal(before, after) {
		t.Fatal("Plan or its output aliases and modified the input")
	}
}

// TestPlanInvariants checks properties of random plans: every pod is
// placed or pending exactly once, placements respect readiness, selectors
// and pins, node documents agree with the placement, and everything comes
// out sorted.
func TestPlanInvariants(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for iter := 0; iter < 200; iter++ {
		var nodes []Node
		for i := 0; i < r.Intn(6); i++ {
			nodes = append(nodes, Node{Name: fmt.Sprintf("n%d", i), Ready: r.Intn(4) > 0, Labels: map[string]string{"zone": fmt.Sprintf("z%d", r.Intn(2))}})
		}
		objs := &manifest.Objects{}
		for i := 0; i < r.Intn(5); i++ {
			var sel map[string]string
			if r.Intn(3) == 0 {
				sel = map[string]string{"zone": fmt.Sprintf("z%d", r.Intn(3))}
			}
			objs.Deployments = append(objs.Deployments, deployment(fmt.Sprintf("d%d", i), int32(r.Intn(5)), "img", sel))
		}
		for i := 0; i < r.Intn(4); i++ {
			pin := ""
			if r.Intn(3) == 0 {
				pin = fmt.Sprintf("n%d", r.Intn(7))
			}
			objs.Pods = append(objs.Pods, bare(fmt.Sprintf("p%d", i), pin, nil))
		}
		previous := map[string]string{}
		for _, p := range expandKeys(objs) {
			if r.Intn(3) == 0 {
				previous[p] = fmt.Sprintf("n%d", r.Intn(7))
			}
		}
		in := Input{Objects: objs, Nodes: nodes, Previous: previous}
		out := Plan(in)
		checkInvariants(t, in, out)
	}
}

func expandKeys(objs *manifest.Objects) []string {
	pods, _ := expand(objs)
	keys := make([]string, len(pods))
	for i := range pods {
		keys[i] = pods[i].Key()
	}
	return keys
}

func checkInvariants(t *testing.T, in Input, out *Output) {
	t.Helper()
	pods, _ := expand(in.Objects)
	if len(out.Placement)+len(out.Pending) != len(pods) {
		t.Fatalf("%d placed + %d pending != %d pods", len(out.Placement), len(out.Pending), len(pods))
	}
	if len(out.Nodes) != len(in.Nodes) || len(out.Pods) != len(pods) {
		t.Fatalf("%d node docs for %d nodes, %d views for %d pods", len(out.Nodes), len(in.Nodes), len(out.Pods), len(pods))
	}
	byName := map[string]Node{}
	for _, n := range in.Nodes {
		byName[n.Name] = n
	}
	load := map[string]int{}
	for _, p := range pods {
		node, ok := out.Placement[p.Key()]
		if !ok {
			continue
		}
		load[node]++
		n := byName[node]
		pinned, sticky := p.Spec.NodeName == node, in.Previous[p.Key()] == node
		if !matches(&p.Spec, &n) || (!n.Ready && !pinned && !sticky) || (p.Spec.NodeName != "" && !pinned) {
			t.Errorf("%s on %+v: ready/selector/pin violated", p.Key(), n)
		}
	}
	for name, d := range out.Nodes {
		if len(d.Pods) != load[name] {
			t.Errorf("node %s document has %d pods, placement %d", name, len(d.Pods), load[name])
		}
		for i := 1; i < len(d.Pods); i++ {
			if d.Pods[i-1].Key() >= d.Pods[i].Key() {
				t.Errorf("node %s pods not sorted", name)
			}
		}
	}
	for i := 1; i < len(out.Pods); i++ {
		a, b := out.Pods[i-1].Pod, out.Pods[i].Pod
		if a.Namespace+"/"+a.Name > b.Namespace+"/"+b.Name {
			t.Errorf("pod views not sorted: %s/%s before %s/%s", a.Namespace, a.Name, b.Namespace, b.Name)
		}
	}
	for i := 1; i < len(out.Pending); i++ {
		if out.Pending[i-1].Pod.Key() > out.Pending[i].Pod.Key() {
			t.Errorf("pending not sorted")
		}
	}
}
