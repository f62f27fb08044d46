package planner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
)

func TestResolveStrategy(t *testing.T) {
	tests := []struct {
		name                string
		replicas            int32
		typ                 appsv1.DeploymentStrategyType
		surge, unavailable  string // "" leaves it unset
		wantSurge, wantUnav int
		wantRecreate        bool
	}{
		{name: "defaults 25%", replicas: 4, wantSurge: 1, wantUnav: 1},
		{name: "surge rounds up, unavailable down", replicas: 10, wantSurge: 3, wantUnav: 2},
		{name: "one replica", replicas: 1, wantSurge: 1, wantUnav: 0},
		{name: "integers", replicas: 5, surge: "2", unavailable: "1", wantSurge: 2, wantUnav: 1},
		{name: "percent", replicas: 10, surge: "50%", unavailable: "10%", wantSurge: 5, wantUnav: 1},
		{name: "maxUnavailable 0", replicas: 3, surge: "1", unavailable: "0", wantSurge: 1, wantUnav: 0},
		{name: "maxSurge 0", replicas: 3, surge: "0", unavailable: "1", wantSurge: 0, wantUnav: 1},
		{name: "both 0 as Kubernetes resolves it", replicas: 3, surge: "0", unavailable: "0", wantSurge: 0, wantUnav: 1},
		{name: "percentages rounding to 0", replicas: 3, surge: "0%", unavailable: "10%", wantSurge: 0, wantUnav: 1},
		{name: "unavailable capped at replicas", replicas: 2, unavailable: "5", wantSurge: 1, wantUnav: 2},
		{name: "not a percentage takes the default", replicas: 4, surge: "x", wantSurge: 1, wantUnav: 1},
		{name: "zero replicas", replicas: 0, wantSurge: 0, wantUnav: 1},
		{name: "explicit RollingUpdate", replicas: 8, typ: appsv1.RollingUpdateDeploymentStrategyType, wantSurge: 2, wantUnav: 2},
		{name: "Recreate", replicas: 4, typ: appsv1.RecreateDeploymentStrategyType, wantRecreate: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := deployment("web", tt.replicas, "nginx:1", nil)
			if tt.surge != "" || tt.unavailable != "" {
				d = rolling(d, tt.surge, tt.unavailable)
			}
			if tt.typ != "" {
				d.Spec.Strategy.Type = tt.typ
			}
			s := resolveStrategy(&d)
			if s.surge != tt.wantSurge || s.unavailable != tt.wantUnav || s.recreate != tt.wantRecreate || s.replicas != int(tt.replicas) {
				t.Errorf("got %+v, want surge %d unavailable %d recreate %v", s, tt.wantSurge, tt.wantUnav, tt.wantRecreate)
			}
		})
	}
}

func TestResolveProgressDeadline(t *testing.T) {
	for _, tt := range []struct {
		secs *int32
		want time.Duration
	}{{nil, 600 * time.Second}, {ptr(int32(30)), 30 * time.Second}, {ptr(int32(2147483647)), 0}, {ptr(int32(-1)), 600 * time.Second}} {
		d := deployment("web", 1, "nginx:1", nil)
		d.Spec.ProgressDeadlineSeconds = tt.secs
		if got := resolveStrategy(&d).deadline; got != tt.want {
			t.Errorf("progressDeadlineSeconds %v: deadline %s, want %s", tt.secs, got, tt.want)
		}
	}
}

// revSpec is a revision in a step test: image, pods, how many of them
// are available (the lowest indices) and how many reported not ready.
type revSpec struct {
	image             string
	pods, avail, sick int
}

// stepInput builds the input of one plan of Deployment d whose state has
// revs (oldest first, the last current before this plan); every pod is
// placed on node a and reported there.
func stepInput(t *testing.T, d appsv1.Deployment, revs []revSpec) Input {
	t.Helper()
	st := DeploymentState{ProgressAt: now.Add(-time.Minute)}
	var status []api.PodStatus
	prev := map[string]string{}
	for _, r := range revs {
		tmpl := deployment(d.Name, int32(r.pods), r.image, nil)
		st.Revisions = append(st.Revisions, DeploymentRevision{Hash: templateHash(currentTemplate(&tmpl, nil)), Template: tmpl.Spec.Template})
		pods := deploymentPods(&tmpl)
		for i, p := range pods {
			st.Revisions[len(st.Revisions)-1].Pods = append(st.Revisions[len(st.Revisions)-1].Pods, i)
			prev[p.Key()] = "a"
			switch {
			case i < r.avail:
				status = append(status, running(p, "c1", true, now.Add(-time.Hour)))
			case i < r.avail+r.sick:
				status = append(status, running(p, "c1", false, time.Time{}))
			}
		}
	}
	return Input{
		Commit: "c2", Now: now, Nodes: parseNodes(t, "a ready"),
		Objects:          &manifest.Objects{Deployments: []appsv1.Deployment{d}},
		Previous:         prev,
		Status:           map[string][]api.PodStatus{"a": status},
		DeploymentStates: map[string]DeploymentState{"default/" + d.Name: st},
	}
}

// formatState is "image=pods ..." oldest first, the current revision
// starred.
func formatState(st DeploymentState) string {
	var parts []string
	for i, r := range st.Revisions {
		cur := ""
		if i == len(st.Revisions)-1 {
			cur = "*"
		}
		parts = append(parts, fmt.Sprintf("%s%s=%d", r.Template.Spec.Containers[0].Image, cur, len(r.Pods)))
	}
	return strings.Join(parts, " ")
}

// TestRolloutStep checks single steps of rollouts from given revisions
// and readiness.
func TestRolloutStep(t *testing.T) {
	rec := func(d appsv1.Deployment) appsv1.Deployment {
		d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType
		return d
	}
	paused := func(d appsv1.Deployment) appsv1.Deployment { d.Spec.Paused = true; return d }
	web := func(n int32, img string) appsv1.Deployment { return deployment("web", n, img, nil) }
	tests := []struct {
		name string
		d    appsv1.Deployment
		revs []revSpec
		want string
	}{
		{"new template starts within surge and unavailability", web(4, "v2"),
			[]revSpec{{"v1", 4, 4, 0}}, "v1=3 v2*=2"},
		{"maxUnavailable 0 only surges", rolling(web(4, "v2"), "1", "0"),
			[]revSpec{{"v1", 4, 4, 0}}, "v1=4 v2*=1"},
		{"maxSurge 0 removes first, then replaces", rolling(web(4, "v2"), "0", "1"),
			[]revSpec{{"v1", 4, 4, 0}}, "v1=3 v2*=1"},
		{"both 0 behaves as maxUnavailable 1", rolling(web(4, "v2"), "0", "0"),
			[]revSpec{{"v1", 4, 4, 0}}, "v1=3 v2*=1"},
		{"waits while new pods are not available", rolling(web(4, "v2"), "1", "0"),
			[]revSpec{{"v1", 4, 4, 0}, {"v2", 1, 0, 1}}, "v1=4 v2*=1"},
		{"an available new pod lets an old one go", rolling(web(4, "v2"), "1", "0"),
			[]revSpec{{"v1", 4, 4, 0}, {"v2", 1, 1, 0}}, "v1=3 v2*=2"},
		{"unhealthy old pods go first", rolling(web(4, "v2"), "1", "0"),
			[]revSpec{{"v1", 4, 3, 1}, {"v2", 1, 1, 0}}, "v1=3 v2*=2"},
		{"oldest revision shrinks first", web(4, "v3"),
			[]revSpec{{"v1", 2, 2, 0}, {"v2", 2, 2, 0}}, "v1=1 v2=2 v3*=2"},
		{"finished old revision is dropped", web(4, "v2"),
			[]revSpec{{"v1", 1, 1, 0}, {"v2", 4, 4, 0}}, "v2*=4"},
		{"scale down mid-rollout stays within replicas+maxSurge", web(2, "v2"),
			[]revSpec{{"v1", 4, 4, 0}, {"v2", 2, 0, 2}}, "v1=2 v2*=1"},
		{"scale up mid-rollout", web(8, "v2"),
			[]revSpec{{"v1", 3, 3, 0}, {"v2", 2, 0, 2}}, "v1=3 v2*=7"},
		{"replicas 0 removes everything", web(0, "v2"),
			[]revSpec{{"v1", 4, 4, 0}}, "v2*=0"},
		{"rollback to a live revision keeps its pods", web(4, "v1"),
			[]revSpec{{"v1", 3, 3, 0}, {"v2", 2, 0, 2}}, "v1*=4"},
		{"same template changes nothing", web(4, "v1"),
			[]revSpec{{"v1", 4, 2, 2}}, "v1*=4"},
		{"Recreate removes the old pods first", rec(web(4, "v2")),
			[]revSpec{{"v1", 4, 4, 0}}, "v2*=0"},
		{"Recreate then creates the new ones", rec(web(4, "v2")),
			[]revSpec{{"v2", 0, 0, 0}}, "v2*=4"},
		{"paused rolls nothing out", paused(web(4, "v3")),
			[]revSpec{{"v1", 3, 3, 0}, {"v2", 1, 0, 1}}, "v1=3 v2*=1"},
		{"paused still scales", paused(web(6, "v3")),
			[]revSpec{{"v1", 3, 3, 0}, {"v2", 1, 0, 1}}, "v1=3 v2*=3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Plan(stepInput(t, tt.d, tt.revs))
			if got := formatState(out.DeploymentStates["default/web"]); got != tt.want {
				t.Errorf("state %s, want %s", got, tt.want)
			}
		})
	}
}

// TestRollbackReusesRevision rolls out v2 halfway, back to v1 (whose
// pods keep their names), then completes v2 and rolls back to v1 again:
// v1's pods get v1's original names.
func TestRollbackReusesRevision(t *testing.T) {
	s := newRolloutSim(t, threeNodes, deployment("web", 3, "nginx:1", nil))
	s.until("deploy", 3)
	v1 := podNames(s.out)
	s.edit(image("nginx:2"))
	s.plan("halfway")
	s.edit(image("nginx:1"))
	s.until("back", 5)
	if got := podNames(s.out); got != v1 {
		t.Fatalf("after a rollback mid-rollout: %s, want the original %s", got, v1)
	}
	s.edit(image("nginx:2"))
	s.until("v2", 6)
	if st := s.out.DeploymentStates["default/web"]; len(st.Revisions) != 1 {
		t.Fatalf("finished rollout keeps %d revisions: %s", len(st.Revisions), formatState(st))
	}
	s.edit(image("nginx:1"))
	s.until("v1 again", 6)
	if got := podNames(s.out); got != v1 {
		t.Fatalf("after a rollback to a finished revision: %s, want %s", got, v1)
	}
}

func podNames(out *Output) string {
	var names []string
	for _, p := range allPods(out) {
		names = append(names, p.Name)
	}
	return strings.Join(sortStrings(names), " ")
}

func sortStrings(s []string) []string {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return sortedKeys(m)
}

func TestDeploymentRemovedFromGitRemovesAllRevisions(t *testing.T) {
	in := stepInput(t, deployment("web", 4, "v2", nil), []revSpec{{"v1", 3, 3, 0}, {"v2", 2, 0, 2}})
	in.Objects = &manifest.Objects{}
	out := Plan(in)
	if len(out.Nodes["a"].Pods) != 0 || len(out.DeploymentStates) != 0 || len(out.Deployments) != 0 {
		t.Fatalf("pods %d, states %v, views %d: want none", len(out.Nodes["a"].Pods), out.DeploymentStates, len(out.Deployments))
	}
}

// Old pods are planned from the persisted template, so they stay as they
// were, byte for byte, after the commit changed the template; the state
// survives JSON.
func TestOldPodsPlannedFromState(t *testing.T) {
	s := newRolloutSim(t, threeNodes, rolling(deployment("web", 3, "nginx:1", nil), "1", "0"))
	s.until("deploy", 3)
	before := map[string]api.Pod{}
	for _, p := range allPods(s.out) {
		before[p.Key()] = p
	}
	s.edit(image("nginx:2"))
	s.plan("roll")
	old := 0
	for _, p := range allPods(s.out) {
		if b, ok := before[p.Key()]; ok {
			old++
			bj, _ := json.Marshal(b)
			pj, _ := json.Marshal(p)
			if !bytes.Equal(bj, pj) {
				t.Errorf("old pod changed:\n%s\n%s", bj, pj)
			}
		}
	}
	if old != 3 {
		t.Fatalf("%d old pods kept, want 3 (maxUnavailable 0)", old)
	}
}

func TestPausedBeforeFirstPlanRunsNothing(t *testing.T) {
	d := deployment("web", 3, "nginx:1", nil)
	d.Spec.Paused = true
	out := Plan(Input{Objects: &manifest.Objects{Deployments: []appsv1.Deployment{d}}, Nodes: parseNodes(t, "a ready"), Now: now})
	if len(out.Nodes["a"].Pods) != 0 || len(out.DeploymentStates) != 0 {
		t.Fatalf("paused Deployment without revisions planned %d pods, states %v", len(out.Nodes["a"].Pods), out.DeploymentStates)
	}
	if v := out.Deployments[0]; v.Rollout.State != api.RolloutPaused || v.Rollout.Revision != "" ||
		v.Deployment.Status.Conditions[1].Reason != "DeploymentPaused" {
		t.Fatalf("view %+v", v.Rollout)
	}
}

// A Recreate rollout waits while a node (joined, ready or not) still
// reports an old pod; a departed node's stale report does not count.
func TestRecreateWaitsForReportedOldPods(t *testing.T) {
	d := deployment("web", 2, "v2", nil)
	d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType
	old := deployment("web", 2, "v1", nil)
	oldPod := deploymentPods(&old)[0]
	tests := []struct {
		name    string
		nodes   string
		phase   string
		want    string
		requeue bool
	}{
		{"ready node runs an old pod", "a ready\nb ready", "Running", "v2*=0", true},
		{"not ready node still has it", "a ready\nb notready", "Running", "v2*=0", true},
		{"old pod failed", "a ready\nb ready", "Failed", "v2*=2", false},
		{"its node left", "a ready", "Running", "v2*=2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := stepInput(t, d, []revSpec{{"v2", 0, 0, 0}})
			in.Nodes = parseNodes(t, tt.nodes)
			rep := running(oldPod, "c1", true, now)
			rep.Status.Phase = corev1.PodPhase(tt.phase)
			in.Status = map[string][]api.PodStatus{"b": {rep}}
			out := Plan(in)
			if got := formatState(out.DeploymentStates["default/web"]); got != tt.want {
				t.Errorf("state %s, want %s", got, tt.want)
			}
			if (out.RequeueAfter == recreateRecheck) != tt.requeue {
				t.Errorf("requeue %s", out.RequeueAfter)
			}
		})
	}
}

func TestProgressingCondition(t *testing.T) {
	d := deployment("web", 2, "v2", nil)
	d.Spec.ProgressDeadlineSeconds = ptr(int32(30))
	in := stepInput(t, d, []revSpec{{"v1", 2, 2, 0}, {"v2", 1, 0, 1}})
	in.Now = now.Add(time.Hour)
	st := in.DeploymentStates["default/web"]
	st.Progress = RolloutCounts{Updated: 1, Old: 2, Ready: 2, Available: 2}
	in.DeploymentStates["default/web"] = st
	// No progress since ProgressAt, an hour ago: the deadline passed.
	in.Objects.Deployments[0] = rolling(d, "1", "0")
	out := Plan(in)
	v := out.Deployments[0]
	c := v.Deployment.Status.Conditions[1]
	if c.Type != appsv1.DeploymentProgressing || c.Reason != "ProgressDeadlineExceeded" || c.Message != `ReplicaSet "web-`+v.Rollout.Revision+`" has timed out progressing.` ||
		!c.LastUpdateTime.Time.Equal(now.Add(-time.Minute)) || v.Rollout.State != api.RolloutFailed {
		t.Fatalf("condition %+v, rollout %+v", c, v.Rollout)
	}
	// Progress (a new pod gets ready) resets the clock.
	in.Status["a"][2] = running(deploymentPods(ptr(deployment("web", 1, "v2", nil)))[0], "c1", true, in.Now)
	out = Plan(in)
	if got := out.DeploymentStates["default/web"].ProgressAt; !got.Equal(in.Now) {
		t.Fatalf("progressAt %s, want now", got)
	}
	if v := out.Deployments[0]; v.Rollout.State != api.RolloutProgressing || v.Deployment.Status.Conditions[1].Reason != "ReplicaSetUpdated" {
		t.Fatalf("rollout %+v", v.Rollout)
	}
}

// TestRolloutInvariantsRandom runs random rollouts (strategies, replica
// counts, template changes, scaling, pods that never get ready, pauses)
// through the simulation, which checks the invariants at every plan.
func TestRolloutInvariantsRandom(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	surges := []string{"", "0", "1", "2", "25%", "50%", "100%"}
	for iter := 0; iter < 60; iter++ {
		d := deployment("web", int32(r.Intn(7)), "img:0", nil)
		switch r.Intn(4) {
		case 0:
			d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType
		default:
			d = rolling(d, surges[r.Intn(len(surges))], surges[r.Intn(len(surges))])
		}
		if r.Intn(3) == 0 {
			d.Spec.MinReadySeconds = int32(r.Intn(20))
		}
		s := newRolloutSim(t, threeNodes, d)
		s.followRequeue = r.Intn(2) == 0
		for step := 0; step < 25; step++ {
			switch r.Intn(8) {
			case 0:
				img := fmt.Sprintf("img:%d", r.Intn(4))
				if r.Intn(4) == 0 {
					s.broken[img] = true
				}
				s.edit(image(img))
			case 1:
				s.edit(scale(int32(r.Intn(7))))
			case 2:
				s.edit(func(d *appsv1.Deployment) { d.Spec.Paused = r.Intn(3) == 0 })
			}
			s.plan(fmt.Sprintf("step %d", step))
			if t.Failed() {
				t.Fatalf("iteration %d:\n%s", iter, s.trace.String())
			}
		}
		// Unpaused with healthy images, every rollout completes.
		s.broken = map[string]bool{}
		s.edit(func(d *appsv1.Deployment) { d.Spec.Paused = false; image("img:final")(d) })
		s.until("final", 40)
		st := s.out.DeploymentStates["default/web"]
		if len(st.Revisions) != 1 || len(st.Revisions[0].Pods) != replicas(&s.in.Objects.Deployments[0]) {
			t.Fatalf("iteration %d: final state %s", iter, formatState(st))
		}
	}
}

// TestRolloutDeterministic plans a mid-rollout input with shuffled
// slices and maps: the output is identical.
func TestRolloutDeterministic(t *testing.T) {
	s := newRolloutSim(t, "a ready\nb ready\nc ready\nd notready", deployment("web", 6, "nginx:1", nil),
		rolling(deployment("api", 3, "api:1", nil), "0", "1"))
	s.until("deploy", 4)
	s.commit(deployment("web", 6, "nginx:2", nil), rolling(deployment("api", 3, "api:2", nil), "0", "1"))
	s.plan("roll")
	in := s.in
	in.Status = s.status()
	enc := func(out *Output) []byte {
		b := encodeAll(t, out)
		st, _ := json.Marshal(struct {
			S map[string]DeploymentState
			R time.Duration
		}{out.DeploymentStates, out.RequeueAfter})
		return append(b, st...)
	}
	want := enc(Plan(in))
	r := rand.New(rand.NewSource(3))
	for i := 0; i < 20; i++ {
		if got := enc(Plan(shuffled(in, r))); !bytes.Equal(got, want) {
			t.Fatalf("shuffle %d changed the output", i)
		}
	}
}

func TestTemplateHashIsTheHistoricHash(t *testing.T) {
	d := deployment("web", 1, "nginx:1", nil)
	if got, want := templateHash(currentTemplate(&d, nil)), api.HashObject(&d.Spec.Template); got != want {
		t.Fatalf("templateHash %s, want %s: upgrading moor would restart every pod", got, want)
	}
	if p := deploymentPods(&d)[0]; p.Labels[api.LabelPodTemplateHash] != templateHash(currentTemplate(&d, nil)) {
		t.Fatalf("pod label %s", p.Labels[api.LabelPodTemplateHash])
	}
}

// The states Plan returns do not alias Input.DeploymentStates.
func TestRolloutStatesDoNotAliasInput(t *testing.T) {
	for _, paused := range []bool{false, true} {
		d := deployment("web", 4, "v3", nil)
		d.Spec.Paused = paused
		in := stepInput(t, d, []revSpec{{"v1", 3, 3, 0}, {"v2", 1, 0, 1}})
		before, _ := json.Marshal(in)
		out := Plan(in)
		for _, st := range out.DeploymentStates {
			for i := range st.Revisions {
				st.Revisions[i].Template.Spec.Containers[0].Image = "mutated"
				st.Revisions[i].Template.Labels["app"] = "mutated"
				if len(st.Revisions[i].Pods) > 0 {
					st.Revisions[i].Pods[0] = 99
				}
			}
		}
		if after, _ := json.Marshal(in); !bytes.Equal(before, after) {
			t.Fatalf("paused=%v: Plan's states alias its input", paused)
		}
	}
}

// No deadline runs while paused; resuming starts one.
func TestResumeRestartsProgressDeadline(t *testing.T) {
	d := deployment("web", 3, "v1", nil)
	d.Spec.ProgressDeadlineSeconds = ptr(int32(30))
	in := stepInput(t, d, []revSpec{{"v1", 2, 2, 0}})
	st := in.DeploymentStates["default/web"]
	st.Paused, st.ProgressAt = true, now.Add(-time.Hour)
	st.Progress = RolloutCounts{Updated: 3, Ready: 3, Available: 3} // no progress to see but the resume
	in.DeploymentStates["default/web"] = st
	paused := in
	paused.Objects = &manifest.Objects{Deployments: []appsv1.Deployment{*d.DeepCopy()}}
	paused.Objects.Deployments[0].Spec.Paused = true
	if out := Plan(paused); !out.DeploymentStates["default/web"].ProgressAt.Equal(now.Add(-time.Hour)) ||
		out.Deployments[0].Rollout.State != api.RolloutPaused {
		t.Fatalf("paused: state %+v rollout %+v", out.DeploymentStates["default/web"], out.Deployments[0].Rollout)
	}
	out := Plan(in)
	if got := out.DeploymentStates["default/web"]; !got.ProgressAt.Equal(now) || got.Paused {
		t.Fatalf("resumed: state %+v", got)
	}
	if v := out.Deployments[0]; v.Rollout.State != api.RolloutProgressing {
		t.Fatalf("resumed: rollout %+v", v.Rollout)
	}
}
