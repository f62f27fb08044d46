package planner

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/reconciler/manifest"
)

func TestSchedule(t *testing.T) {
	sel := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	withAffinity := func(p corev1.Pod, terms ...corev1.NodeSelectorTerm) corev1.Pod {
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms},
		}}
		return p
	}
	expr := func(key string, op corev1.NodeSelectorOperator, vals ...string) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: key, Operator: op, Values: vals}}}
	}
	threeReady := "a ready\nb ready\nc ready"

	tests := []struct {
		name        string
		nodes       string
		pods        []corev1.Pod
		previous    map[string]string
		want        string
		wantPending map[string]string // pod name -> reason
	}{{
		name:  "fewest pods first, ties by node name",
		nodes: "c ready\na ready\nb ready",
		pods:  []corev1.Pod{bare("p1", "", nil), bare("p2", "", nil), bare("p3", "", nil), bare("p4", "", nil)},
		want:  "a: p1 p4\nb: p2\nc: p3\n",
	}, {
		name:  "every node gets a document, even without pods",
		nodes: threeReady,
		pods:  []corev1.Pod{bare("p1", "", nil)},
		want:  "a: p1\nb:\nc:\n",
	}, {
		name:  "nodeSelector restricts to matching nodes",
		nodes: "a ready zone=x\nb ready zone=y\nc ready zone=y",
		pods:  []corev1.Pod{bare("p1", "", sel("zone", "y")), bare("p2", "", sel("zone", "y")), bare("p3", "", sel("zone", "y"))},
		want:  "a:\nb: p1 p3\nc: p2\n",
	}, {
		name:  "implicit hostname label",
		nodes: threeReady,
		pods:  []corev1.Pod{bare("p1", "", sel(LabelHostname, "c"))},
		want:  "a:\nb:\nc: p1\n",
	}, {
		name:  "explicit hostname label wins over the implicit one",
		nodes: "a ready kubernetes.io/hostname=box1\nb ready",
		pods:  []corev1.Pod{bare("p1", "", sel(LabelHostname, "box1")), bare("p2", "", sel(LabelHostname, "a"))},
		want:  "a: p1\nb:\n",
		wantPending: map[string]string{
			"p2": "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.",
		},
	}, {
		name:  "not-ready nodes get no new pods",
		nodes: "a notready\nb ready",
		pods:  []corev1.Pod{bare("p1", "", nil), bare("p2", "", nil)},
		want:  "a:\nb: p1 p2\n",
	}, {
		name:  "only not-ready nodes",
		nodes: "a notready\nb notready",
		pods:  []corev1.Pod{bare("p1", "", nil)},
		want:  "a:\nb:\n",
		wantPending: map[string]string{
			"p1": "0/2 nodes are available: 2 node(s) were not ready.",
		},
	}, {
		name:     "previous placement is kept although another node is emptier",
		nodes:    threeReady,
		pods:     []corev1.Pod{bare("p1", "", nil), bare("p2", "", nil)},
		previous: map[string]string{"default/p1": "c", "default/p2": "c"},
		want:     "a:\nb:\nc: p1 p2\n",
	}, {
		name:     "sticky pods are counted before free pods are balanced",
		nodes:    threeReady,
		pods:     []corev1.Pod{bare("p1", "", nil), bare("p2", "", nil), bare("p3", "", nil)},
		previous: map[string]string{"default/p3": "a"},
		want:     "a: p3\nb: p1\nc: p2\n",
	}, {
		name:     "previous node not ready: pod stays (no eviction)",
		nodes:    "a ready\nb notready",
		pods:     []corev1.Pod{bare("p1", "", nil)},
		previous: map[string]string{"default/p1": "b"},
		want:     "a:\nb: p1\n",
	}, {
		name:     "previous node gone: pod moves",
		nodes:    "a ready\nb ready",
		pods:     []corev1.Pod{bare("p1", "", nil)},
		previous: map[string]string{"default/p1": "gone"},
		want:     "a: p1\nb:\n",
	}, {
		name:     "previous node no longer matches the selector: pod moves",
		nodes:    "a ready zone=x\nb ready zone=y",
		pods:     []corev1.Pod{bare("p1", "", sel("zone", "y"))},
		previous: map[string]string{"default/p1": "a"},
		want:     "a:\nb: p1\n",
	}, {
		name:  "no node matches the selector",
		nodes: threeReady,
		pods:  []corev1.Pod{bare("p1", "", sel("gpu", "true"))},
		want:  "a:\nb:\nc:\n",
		wantPending: map[string]string{
			"p1": "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
		},
	}, {
		name:  "matching nodes are not ready",
		nodes: "a notready gpu=true\nb ready\nc ready",
		pods:  []corev1.Pod{bare("p1", "", sel("gpu", "true"))},
		want:  "a:\nb:\nc:\n",
		wantPending: map[string]string{
			"p1": "0/3 nodes are available: 1 node(s) were not ready, 2 node(s) didn't match Pod's node affinity/selector.",
		},
	}, {
		name:  "no nodes at all",
		nodes: "",
		pods:  []corev1.Pod{bare("p1", "", nil)},
		want:  "",
		wantPending: map[string]string{
			"p1": "0/0 nodes are available: no node has joined the cluster; start `moor agent` on a machine to join one.",
		},
	}, {
		name:  "spec.nodeName pins, even to a not-ready node, and counts toward load",
		nodes: "a ready\nb notready\nc ready",
		pods:  []corev1.Pod{bare("p1", "b", nil), bare("p2", "a", nil), bare("p3", "", nil)},
		want:  "a: p2\nb: p1\nc: p3\n",
	}, {
		name:  "spec.nodeName names an unknown node",
		nodes: threeReady,
		pods:  []corev1.Pod{bare("p1", "nope", nil)},
		want:  "a:\nb:\nc:\n",
		wantPending: map[string]string{
			"p1": `spec.nodeName names node "nope", which has not joined the cluster; join it or remove spec.nodeName`,
		},
	}, {
		name:  "spec.nodeName contradicts the selector",
		nodes: "a ready zone=x",
		pods:  []corev1.Pod{bare("p1", "a", sel("zone", "y"))},
		want:  "a:\n",
		wantPending: map[string]string{
			"p1": `spec.nodeName names node "a", which doesn't match Pod's node affinity/selector`,
		},
	}, {
		name:  "required node affinity: In, NotIn, Exists, Gt and OR of terms",
		nodes: "a ready zone=x cpus=4\nb ready zone=y cpus=16\nc ready zone=z",
		pods: []corev1.Pod{
			withAffinity(bare("in", "", nil), expr("zone", corev1.NodeSelectorOpIn, "y", "q")),
			withAffinity(bare("notin", "", nil), expr("zone", corev1.NodeSelectorOpNotIn, "x", "y")),
			withAffinity(bare("gt", "", nil), expr("cpus", corev1.NodeSelectorOpGt, "8")),
			withAffinity(bare("or", "", nil), expr("zone", corev1.NodeSelectorOpIn, "x"), expr("cpus", corev1.NodeSelectorOpDoesNotExist)),
			withAffinity(bare("none", "", nil)),
		},
		want: "a: or\nb: gt in\nc: notin\n",
		wantPending: map[string]string{
			"none": "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Plan(Input{
				Commit:   "c0ffee",
				Objects:  &manifest.Objects{Pods: tt.pods},
				Nodes:    parseNodes(t, tt.nodes),
				Previous: tt.previous,
			})
			if got := podsByNode(out); got != tt.want {
				t.Errorf("placement:\n%s\nwant:\n%s", got, tt.want)
			}
			gotPending := map[string]string{}
			for _, p := range out.Pending {
				gotPending[p.Pod.Name] = p.Reason
			}
			if len(gotPending) != len(tt.wantPending) {
				t.Errorf("pending = %v, want %v", gotPending, tt.wantPending)
			}
			for name, want := range tt.wantPending {
				if got := gotPending[name]; got != want {
					t.Errorf("pending reason of %s:\n got %q\nwant %q", name, got, want)
				}
			}
			for key, node := range out.Placement {
				if _, ok := out.Nodes[node]; !ok {
					t.Errorf("placement %s -> %s names no output node", key, node)
				}
			}
			if n := len(out.Placement) + len(out.Pending); n != len(tt.pods) {
				t.Errorf("%d pods placed or pending, want %d", n, len(tt.pods))
			}
		})
	}
}
