package planner

import (
	"fmt"
	"testing"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
)

// benchInput is 1000 Deployments × 3 replicas over 50 nodes (every tenth
// Deployment with a zone selector), with the previous placement and a
// ready report for every pod, as in steady state.
func benchInput(b *testing.B) Input {
	objs := &manifest.Objects{}
	for i := 0; i < 1000; i++ {
		var sel map[string]string
		if i%10 == 0 {
			sel = map[string]string{"zone": fmt.Sprintf("z%d", i%3)}
		}
		objs.Deployments = append(objs.Deployments, deployment(fmt.Sprintf("app-%04d", i), 3, "registry.local/app:1", sel))
	}
	var nodes []Node
	for i := 0; i < 50; i++ {
		nodes = append(nodes, Node{Name: fmt.Sprintf("node-%02d", i), Ready: true, Labels: map[string]string{"zone": fmt.Sprintf("z%d", i%3)}})
	}
	first := Plan(Input{Commit: "c1", Objects: objs, Nodes: nodes})
	if len(first.Placement) != 3000 {
		b.Fatalf("placed %d pods, want 3000", len(first.Placement))
	}
	status := map[string][]api.PodStatus{}
	for _, d := range first.Nodes {
		for _, p := range d.Pods {
			status[d.Node] = append(status[d.Node], running(p, "c1", true, now))
		}
	}
	return Input{Commit: "c2", Objects: objs, Nodes: nodes, Previous: first.Placement, Status: status, Now: now}
}

func BenchmarkPlan(b *testing.B) {
	in := benchInput(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		Plan(in)
	}
}

// BenchmarkPlanAndEncode includes producing every node's canonical document,
// which is what the reconciler does per commit.
func BenchmarkPlanAndEncode(b *testing.B) {
	in := benchInput(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out := Plan(in)
		for _, d := range out.Nodes {
			if _, _, err := d.Encode(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
