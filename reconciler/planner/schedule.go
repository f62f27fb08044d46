package planner

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

// LabelHostname is the label every node implicitly carries, with the
// node's name as its value (as the kubelet sets it).
const LabelHostname = "kubernetes.io/hostname"

// scheduler assigns pods to nodes. It is built per Plan call.
type scheduler struct {
	nodes  []Node // sorted by name, unique
	byName map[string]*Node
	load   map[string]int // pods assigned so far in this plan
}

func newScheduler(in []Node) *scheduler {
	nodes := append([]Node(nil), in...)
	sort.Slice(nodes, func(i, j int) bool { return nodeLess(&nodes[i], &nodes[j]) })
	s := &scheduler{byName: make(map[string]*Node, len(nodes)), load: make(map[string]int, len(nodes))}
	for _, n := range nodes {
		if _, dup := s.byName[n.Name]; dup {
			continue
		}
		s.nodes = append(s.nodes, n)
	}
	for i := range s.nodes {
		s.byName[s.nodes[i].Name] = &s.nodes[i]
	}
	return s
}

// nodeLess orders nodes by name. Duplicate names (which the caller must
// not pass) are ordered ready first, then by labels, so that the one kept
// does not depend on input order.
func nodeLess(a, b *Node) bool {
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	if a.Ready != b.Ready {
		return a.Ready
	}
	return labelString(a.Labels) < labelString(b.Labels)
}

func labelString(m map[string]string) string {
	kv := make([]string, 0, len(m))
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// schedule places pods (sorted by key) in two passes so that balance does
// not depend on where pods sort: first the pods that are pinned
// (spec.nodeName) or keep their previous node, then the others, each onto
// the eligible node with the fewest pods, ties broken by name.
func (s *scheduler) schedule(pods []api.Pod, previous map[string]string) (map[string]string, []Pending) {
	return s.scheduleWith(pods, previous, nil)
}

// scheduleWith is schedule where the pods keyed in finished have run to
// completion: each stays on the node it names, ready or not, and is
// dropped (neither placed nor pending) when that node is gone, so it never
// runs again elsewhere.
func (s *scheduler) scheduleWith(pods []api.Pod, previous, finished map[string]string) (map[string]string, []Pending) {
	placement := make(map[string]string, len(pods))
	var pending []Pending
	var free []int
	for i := range pods {
		p := &pods[i]
		if node, done := finished[p.Key()]; done {
			if _, ok := s.byName[node]; ok {
				s.assign(placement, p, node)
			}
			continue
		}
		if p.Spec.NodeName != "" {
			if node, reason := s.pinned(p); reason != "" {
				pending = append(pending, Pending{Pod: *p, Reason: reason})
			} else {
				s.assign(placement, p, node)
			}
			continue
		}
		if prev, ok := s.byName[previous[p.Key()]]; ok && matches(&p.Spec, prev) {
			s.assign(placement, p, prev.Name)
			continue
		}
		free = append(free, i)
	}
	for _, i := range free {
		p := &pods[i]
		if node := s.leastLoaded(&p.Spec); node != "" {
			s.assign(placement, p, node)
		} else {
			pending = append(pending, Pending{Pod: *p, Reason: s.unschedulable(&p.Spec)})
		}
	}
	return placement, pending
}

func (s *scheduler) assign(placement map[string]string, p *api.Pod, node string) {
	placement[p.Key()] = node
	s.load[node]++
}

// pinned checks a pod that names its node. Like the kubelet, it accepts a
// node that is not ready but not one the pod's selector excludes.
func (s *scheduler) pinned(p *api.Pod) (string, string) {
	name := p.Spec.NodeName
	n, ok := s.byName[name]
	if !ok {
		return "", fmt.Sprintf("spec.nodeName names node %q, which has not joined the cluster; join it or remove spec.nodeName", name)
	}
	if !matches(&p.Spec, n) {
		return "", fmt.Sprintf("spec.nodeName names node %q, which doesn't match Pod's node affinity/selector", name)
	}
	return name, ""
}

// leastLoaded returns the eligible node with the fewest pods, or "".
func (s *scheduler) leastLoaded(spec *corev1.PodSpec) string {
	best, bestLoad := "", 0
	for i := range s.nodes {
		n := &s.nodes[i]
		if !n.Ready || !matches(spec, n) {
			continue
		}
		if l := s.load[n.Name]; best == "" || l < bestLoad {
			best, bestLoad = n.Name, l
		}
	}
	return best
}

// unschedulable explains, as kubectl would, why no node fits.
func (s *scheduler) unschedulable(spec *corev1.PodSpec) string {
	if len(s.nodes) == 0 {
		return "0/0 nodes are available: no node has joined the cluster; start `moor agent` on a machine to join one."
	}
	var mismatch, notReady int
	for i := range s.nodes {
		switch n := &s.nodes[i]; {
		case !matches(spec, n):
			mismatch++
		case !n.Ready:
			notReady++
		}
	}
	var reasons []string
	if mismatch > 0 {
		reasons = append(reasons, fmt.Sprintf("%d node(s) didn't match Pod's node affinity/selector", mismatch))
	}
	if notReady > 0 {
		reasons = append(reasons, fmt.Sprintf("%d node(s) were not ready", notReady))
	}
	sort.Strings(reasons)
	return fmt.Sprintf("0/%d nodes are available: %s.", len(s.nodes), strings.Join(reasons, ", "))
}

// label returns a node's label, including the implicit hostname label.
func label(n *Node, key string) (string, bool) {
	if v, ok := n.Labels[key]; ok {
		return v, true
	}
	if key == LabelHostname {
		return n.Name, true
	}
	return "", false
}

// matches reports whether n satisfies spec.nodeSelector and the required
// node affinity. Preferred affinity, taints and resources are not
// considered in this version.
func matches(spec *corev1.PodSpec, n *Node) bool {
	for k, want := range spec.NodeSelector {
		if v, ok := label(n, k); !ok || v != want {
			return false
		}
	}
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil {
		if req := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
			return matchesSelector(req, n)
		}
	}
	return true
}

// matchesSelector ORs the terms of a NodeSelector; an empty term list
// matches no node, as in Kubernetes.
func matchesSelector(sel *corev1.NodeSelector, n *Node) bool {
	for i := range sel.NodeSelectorTerms {
		if matchesTerm(&sel.NodeSelectorTerms[i], n) {
			return true
		}
	}
	return false
}

// matchesTerm ANDs a term's requirements; an empty term matches nothing.
func matchesTerm(t *corev1.NodeSelectorTerm, n *Node) bool {
	if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
		return false
	}
	for _, r := range t.MatchExpressions {
		v, ok := label(n, r.Key)
		if !matchesRequirement(r, v, ok) {
			return false
		}
	}
	for _, r := range t.MatchFields {
		if r.Key != "metadata.name" || !matchesRequirement(r, n.Name, true) {
			return false
		}
	}
	return true
}

func matchesRequirement(r corev1.NodeSelectorRequirement, v string, ok bool) bool {
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		return ok && contains(r.Values, v)
	case corev1.NodeSelectorOpNotIn:
		return !ok || !contains(r.Values, v)
	case corev1.NodeSelectorOpExists:
		return ok
	case corev1.NodeSelectorOpDoesNotExist:
		return !ok
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !ok || len(r.Values) != 1 {
			return false
		}
		have, err1 := strconv.ParseInt(v, 10, 64)
		want, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if r.Operator == corev1.NodeSelectorOpGt {
			return have > want
		}
		return have < want
	}
	return false
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}
