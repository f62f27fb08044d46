package planner

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
)

// rolloutSim plays controller and nodes around Plan for Deployments: it
// carries what the controller persists (placement, allocations,
// Deployment states, through JSON) from one plan to the next, and reports
// every planned pod from its node: Running, ready startDelay after the
// plan that created it unless its image is broken or the pod is sick.
// Every plan is checked against the rollout invariants and recorded in
// trace for a golden file.
type rolloutSim struct {
	t   *testing.T
	in  Input
	out *Output
	// readyAt is when each pod incarnation (by UID) becomes ready; absent
	// for pods that never do.
	readyAt map[string]time.Time
	seen    map[string]bool // UIDs planned so far
	broken  map[string]bool // images whose pods never get ready
	sick    map[string]bool // pod names that never get ready
	// tick is the time between plans, startDelay from a pod's first plan
	// to its readiness. With followRequeue plans come as the controller
	// makes them: when a planned pod gets ready (its node reports) or when
	// the last plan asked (Output.RequeueAfter); tick only when neither.
	tick, startDelay time.Duration
	followRequeue    bool
	trace            strings.Builder
}

func newRolloutSim(t *testing.T, nodes string, deps ...appsv1.Deployment) *rolloutSim {
	s := &rolloutSim{t: t, readyAt: map[string]time.Time{}, seen: map[string]bool{}, broken: map[string]bool{},
		sick: map[string]bool{}, tick: 5 * time.Second, startDelay: 5 * time.Second}
	s.in = Input{Commit: "c1", Nodes: parseNodes(t, nodes), Now: now}
	s.commit(deps...)
	return s
}

// commit replaces the Deployments of Git.
func (s *rolloutSim) commit(deps ...appsv1.Deployment) {
	s.in.Objects = &manifest.Objects{Deployments: deps}
}

// edit changes the single Deployment of Git.
func (s *rolloutSim) edit(fn func(d *appsv1.Deployment)) {
	d := s.in.Objects.Deployments[0].DeepCopy()
	fn(d)
	s.commit(*d)
}

// plan plans once, tick after the previous plan, with the reports of the
// previous plan's pods.
func (s *rolloutSim) plan(label string) *Output {
	s.t.Helper()
	if s.out != nil {
		s.in.Now = s.in.Now.Add(s.nextPlan())
	}
	s.in.Status = s.status()
	out := Plan(s.in)
	s.check(out)
	for _, p := range allPods(out) {
		if s.seen[p.UID] {
			continue
		}
		s.seen[p.UID] = true
		if !s.sick[p.Name] && !s.broken[p.Spec.Containers[0].Image] {
			s.readyAt[p.UID] = s.in.Now.Add(s.startDelay)
		}
	}
	s.in.Previous, s.in.Allocations = out.Placement, out.Allocations
	s.in.DeploymentStates = roundTrip(s.t, out.DeploymentStates)
	s.out = out
	s.record(label)
	return out
}

// nextPlan is the wait until the next plan.
func (s *rolloutSim) nextPlan() time.Duration {
	if !s.followRequeue {
		return s.tick
	}
	var wait time.Duration
	sooner := func(d time.Duration) {
		if d > 0 && (wait == 0 || d < wait) {
			wait = d
		}
	}
	sooner(s.out.RequeueAfter)
	for _, p := range allPods(s.out) {
		if at, ok := s.readyAt[p.UID]; ok {
			sooner(at.Sub(s.in.Now))
		}
	}
	if wait == 0 {
		return s.tick
	}
	return wait
}

// until plans until every Deployment's rollout is complete, at most max
// times; it fails the test when the rollouts do not complete.
func (s *rolloutSim) until(label string, max int) {
	s.t.Helper()
	for i := 1; i <= max; i++ {
		out := s.plan(fmt.Sprintf("%s %d", label, i))
		if rolloutsDone(out) {
			return
		}
	}
	s.t.Fatalf("%s: rollouts not complete after %d plans:\n%s", label, max, s.trace.String())
}

// steps plans n times.
func (s *rolloutSim) steps(label string, n int) {
	s.t.Helper()
	for i := 1; i <= n; i++ {
		s.plan(fmt.Sprintf("%s %d", label, i))
	}
}

func rolloutsDone(out *Output) bool {
	for _, v := range out.Deployments {
		if v.Rollout.State != api.RolloutComplete {
			return false
		}
	}
	return true
}

// status reports the last plan's pods from their nodes.
func (s *rolloutSim) status() map[string][]api.PodStatus {
	st := map[string][]api.PodStatus{}
	if s.out == nil {
		return st
	}
	for node, d := range s.out.Nodes {
		for _, p := range d.Pods {
			at, ok := s.readyAt[p.UID]
			ready := ok && !at.After(s.in.Now)
			if !ready {
				at = time.Time{}
			}
			rep := running(p, s.in.Commit, ready, at)
			st[node] = append(st[node], rep)
		}
	}
	return st
}

// availableBefore is the set of keys of the last plan's pods that are
// available per the reports the next plan gets, judged here without the
// planner's code.
func (s *rolloutSim) availableBefore(d *appsv1.Deployment) map[string]string {
	out := map[string]string{}
	if s.out == nil {
		return out
	}
	minReady := time.Duration(d.Spec.MinReadySeconds) * time.Second
	for _, doc := range s.out.Nodes {
		for _, p := range doc.Pods {
			if p.Owner != "Deployment/"+d.Name {
				continue
			}
			if at, ok := s.readyAt[p.UID]; ok && !at.Add(minReady).After(s.in.Now) {
				out[p.Key()] = p.UID
			}
		}
	}
	return out
}

// check asserts the invariants of one plan against the previous one.
func (s *rolloutSim) check(out *Output) {
	s.t.Helper()
	prevPods := map[string]api.Pod{}
	if s.out != nil {
		for _, p := range allPods(s.out) {
			prevPods[p.Key()] = p
		}
	}
	for i := range s.in.Objects.Deployments {
		d := &s.in.Objects.Deployments[i]
		strat := resolveStrategy(d)
		var pods []api.Pod
		hashes := map[string]int{}
		for _, p := range allPods(out) {
			if p.Owner == "Deployment/"+d.Name {
				pods = append(pods, p)
				hashes[p.Labels[api.LabelPodTemplateHash]]++
			}
		}
		if limit := strat.replicas + strat.surge; len(pods) > limit {
			s.t.Errorf("at %s: %s plans %d pods, more than replicas+maxSurge = %d", s.in.Now.Sub(now), d.Name, len(pods), limit)
		}
		before := s.availableBefore(d)
		kept := 0
		for _, p := range pods {
			if before[p.Key()] == p.UID {
				kept++
			}
		}
		if floor := min(len(before), strat.replicas-strat.unavailable); !strat.recreate && kept < floor {
			s.t.Errorf("at %s: %s keeps %d of %d available pods, fewer than min(available, replicas-maxUnavailable) = %d",
				s.in.Now.Sub(now), d.Name, kept, len(before), floor)
		}
		if strat.recreate {
			s.checkRecreate(d, out, hashes)
		}
	}
	// Pods that stay keep their UID and node.
	for _, p := range allPods(out) {
		old, ok := prevPods[p.Key()]
		if !ok {
			continue
		}
		if old.UID != p.UID {
			s.t.Errorf("pod %s changed UID %s -> %s", p.Key(), old.UID, p.UID)
		}
		if a, b := s.out.Placement[p.Key()], out.Placement[p.Key()]; a != b {
			s.t.Errorf("pod %s moved %s -> %s", p.Key(), a, b)
		}
	}
}

// checkRecreate asserts that a Recreate Deployment never plans two
// revisions and starts new pods only when the previous plan (whose pods
// the nodes report) had none of another revision.
func (s *rolloutSim) checkRecreate(d *appsv1.Deployment, out *Output, hashes map[string]int) {
	s.t.Helper()
	if len(hashes) > 1 {
		s.t.Errorf("at %s: Recreate %s plans pods of %d revisions: %v", s.in.Now.Sub(now), d.Name, len(hashes), hashes)
	}
	if s.out == nil {
		return
	}
	fresh := ""
	for _, p := range allPods(out) {
		if _, ok := s.out.Placement[p.Key()]; !ok && p.Owner == "Deployment/"+d.Name {
			fresh = p.Labels[api.LabelPodTemplateHash]
		}
	}
	for _, p := range allPods(s.out) {
		if fresh != "" && p.Owner == "Deployment/"+d.Name && p.Labels[api.LabelPodTemplateHash] != fresh {
			s.t.Errorf("at %s: Recreate %s starts %s pods while %s still runs", s.in.Now.Sub(now), d.Name, fresh, p.Name)
		}
	}
}

// allPods are the pods of every node document.
func allPods(out *Output) []api.Pod {
	var pods []api.Pod
	for _, n := range sortedKeys(out.Nodes) {
		pods = append(pods, out.Nodes[n].Pods...)
	}
	for _, p := range out.Pending {
		pods = append(pods, p.Pod)
	}
	return pods
}

// record writes one line per Deployment: each revision as
// image=planned/ready/available (* the current one), and the rollout.
func (s *rolloutSim) record(label string) {
	b := &s.trace
	fmt.Fprintf(b, "== %s (+%s)\n", label, s.in.Now.Sub(now))
	for _, v := range s.out.Deployments {
		d := &v.Deployment
		fmt.Fprintf(b, "%s replicas=%d:", d.Name, replicas(d))
		for _, r := range v.Rollout.Revisions {
			cur := ""
			if r.Current {
				cur = "*"
			}
			fmt.Fprintf(b, " %s%s=%d/%d/%d", strings.Join(r.Images, ","), cur, r.Replicas, r.Ready, r.Available)
		}
		st := d.Status
		fmt.Fprintf(b, " | up-to-date=%d available=%d\n", st.UpdatedReplicas, st.AvailableReplicas)
		fmt.Fprintf(b, "  %s: %s\n", v.Rollout.State, v.Rollout.Message)
	}
	if s.out.RequeueAfter > 0 {
		fmt.Fprintf(b, "requeue %s\n", s.out.RequeueAfter)
	}
}

// golden compares the trace with testdata/rollout/<name>.golden.
func (s *rolloutSim) golden(name string) {
	s.t.Helper()
	path := filepath.Join("testdata", "rollout", name+".golden")
	got := s.trace.String()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			s.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatalf("%v; run go test ./reconciler/planner -run TestRolloutGolden -update", err)
	}
	if got != string(want) {
		s.t.Errorf("%s differs; run go test ./reconciler/planner -run TestRolloutGolden -update and review the diff\n--- got ---\n%s--- want ---\n%s",
			path, got, want)
	}
}

// rolling returns d with a RollingUpdate strategy.
func rolling(d appsv1.Deployment, surge, unavailable string) appsv1.Deployment {
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{}}
	if surge != "" {
		v := intOrString(surge)
		d.Spec.Strategy.RollingUpdate.MaxSurge = &v
	}
	if unavailable != "" {
		v := intOrString(unavailable)
		d.Spec.Strategy.RollingUpdate.MaxUnavailable = &v
	}
	return d
}

func image(img string) func(d *appsv1.Deployment) {
	return func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = img }
}

func scale(n int32) func(d *appsv1.Deployment) {
	return func(d *appsv1.Deployment) { d.Spec.Replicas = &n }
}

// intOrString parses "25%" or "1".
func intOrString(s string) intstr.IntOrString {
	if strings.HasSuffix(s, "%") {
		return intstr.FromString(s)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return intstr.FromString(s)
	}
	return intstr.FromInt32(int32(n))
}
