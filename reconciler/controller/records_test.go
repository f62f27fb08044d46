package controller

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/metrics"
	"github.com/moor-dev/moor/reconciler/store"
)

// fakeRecorder remembers what the controller told the metrics.
type fakeRecorder struct {
	mu     sync.Mutex
	states []string
	pushes []time.Duration
}

func (f *fakeRecorder) CommitState(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states = append(f.states, s)
}

func (f *fakeRecorder) ObservePushToRunning(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pushes = append(f.pushes, d)
}

var _ Recorder = (*fakeRecorder)(nil)

// report sends node's status at its published commit: every pod of its
// document in phase (ready when Running), at the harness clock.
func (h *harness) report(node string, phase corev1.PodPhase, pulledAt time.Time) {
	h.t.Helper()
	d, digest := h.doc(node)
	s := api.NodeStatus{Node: node, Commit: d.Commit, DesiredDigest: digest, ReportedAt: h.now, PulledAt: pulledAt}
	for _, p := range d.Pods {
		st := corev1.PodStatus{Phase: phase, PodIP: "10.0.0.1"}
		ready := corev1.ConditionFalse
		if phase == corev1.PodRunning {
			ready = corev1.ConditionTrue
		}
		st.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}
		s.Pods = append(s.Pods, api.PodStatus{Namespace: p.Namespace, Name: p.Name, UID: p.UID, Commit: d.Commit, Status: st})
	}
	if err := h.ctrl.ReportStatus(context.Background(), s); err != nil {
		h.t.Fatal(err)
	}
}

// commit returns the commit view of sha.
func (h *harness) commitView(sha string) api.CommitView {
	h.t.Helper()
	cs, err := h.ctrl.Commits(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	for _, c := range cs {
		if c.SHA == sha {
			return c
		}
	}
	h.t.Fatalf("commit %s not listed in %+v", sha, cs)
	return api.CommitView{}
}

func (h *harness) tick(d time.Duration) time.Time {
	h.now = h.now.Add(d)
	return h.now
}

func TestTimelineWebhookToRunning(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	rec := &fakeRecorder{}
	h.ctrl.metrics = rec
	h.join("a", nil)
	h.join("b", nil)
	h.src.commit("c1", map[string]string{"web.yaml": deployment("web", 4, "img:1")})

	hook := h.now
	fetched := h.tick(300 * time.Millisecond)
	if _, err := h.ctrl.SyncWithCause(ctx, hook); err != nil {
		t.Fatal(err)
	}
	v := h.commitView("c1")
	if !v.WebhookAt.Equal(hook) || !v.FetchedAt.Equal(fetched) || !v.PlannedAt.Equal(fetched) ||
		!v.PublishedAt.Equal(fetched) || !v.RejectedAt.IsZero() || !v.RunningAt.IsZero() {
		t.Fatalf("after publish: %+v", v)
	}
	if v.Total != 2 || v.Converged != 0 || v.PushToRunning != 0 || len(v.Nodes) != 2 || !v.Nodes[0].PublishedAt.Equal(fetched) {
		t.Fatalf("after publish: converged %d/%d, push→running %s, nodes %+v", v.Converged, v.Total, v.PushToRunning, v.Nodes)
	}

	pulledA := h.tick(time.Second)
	h.report("a", corev1.PodPending, time.Time{})
	runningA := h.tick(time.Second)
	h.report("a", corev1.PodRunning, time.Time{})
	v = h.commitView("c1")
	if v.Converged != 1 || !v.Nodes[0].PulledAt.Equal(pulledA) || !v.Nodes[0].RunningAt.Equal(runningA) || !v.RunningAt.IsZero() {
		t.Fatalf("after a runs: %d/%d %+v", v.Converged, v.Total, v.Nodes)
	}

	// b says when it pulled; its first report already has everything running.
	saidPulled := h.now.Add(500 * time.Millisecond)
	runningB := h.tick(time.Second)
	h.report("b", corev1.PodRunning, saidPulled)
	v = h.commitView("c1")
	want := runningB.Sub(hook)
	if v.Converged != 2 || !v.RunningAt.Equal(runningB) || v.PushToRunning != want || !v.Nodes[1].PulledAt.Equal(saidPulled) {
		t.Fatalf("after b runs: %d/%d running %s push→running %s (want %s) nodes %+v", v.Converged, v.Total, v.RunningAt, v.PushToRunning, want, v.Nodes)
	}

	// More reports, and a restart, observe nothing twice.
	h.tick(time.Second)
	h.report("b", corev1.PodRunning, time.Time{})
	h.open()
	h.ctrl.metrics = rec
	h.tick(time.Second)
	h.report("a", corev1.PodRunning, time.Time{})
	if after := h.commitView("c1"); after.PushToRunning != want || after.Converged != 2 || !after.Nodes[0].RunningAt.Equal(runningA) {
		t.Fatalf("after restart: %+v", after)
	}
	if len(rec.pushes) != 1 || rec.pushes[0] != want {
		t.Errorf("push→running observed %v, want once %s", rec.pushes, want)
	}
	if got := rec.states; len(got) != 2 || got[0] != metrics.CommitPublished || got[1] != metrics.CommitRunning {
		t.Errorf("commit states %v, want [published running]", got)
	}
}

func TestTimelinePollingRejectedAndForcePush(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	rec := &fakeRecorder{}
	h.ctrl.metrics = rec
	h.join("a", nil)

	// Found by a poll: push→running counts from the fetch.
	h.src.commit("c1", map[string]string{"web.yaml": deployment("web", 1, "img:1")})
	fetched1 := h.tick(time.Second)
	if _, err := h.ctrl.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	h.tick(2 * time.Second)
	h.report("a", corev1.PodRunning, time.Time{})
	if v := h.commitView("c1"); !v.WebhookAt.IsZero() || !v.FetchedAt.Equal(fetched1) || v.PushToRunning != 2*time.Second || v.Converged != 1 || v.Total != 1 {
		t.Fatalf("polled c1: %+v", v)
	}

	// A rejected commit: RejectedAt, no plan, no nodes; c1 stays deployed
	// and tracked.
	h.src.commit("bad", map[string]string{"x.yaml": "apiVersion: v1\nkind: Nope\n"})
	rejected := h.tick(time.Second)
	if res, err := h.ctrl.SyncWithCause(ctx, rejected.Add(-time.Second)); err != nil || res.State != api.CommitRejected {
		t.Fatalf("sync bad: %+v %v", res, err)
	}
	v := h.commitView("bad")
	if !v.RejectedAt.Equal(rejected) || !v.PlannedAt.IsZero() || !v.PublishedAt.IsZero() || v.Total != 0 || v.PushToRunning != 0 || v.WebhookAt.IsZero() {
		t.Fatalf("rejected: %+v", v)
	}
	if !h.commitView("c1").Deployed {
		t.Fatal("c1 is no longer deployed after a rejected commit")
	}

	// A force-push rewrites history to c2; then back to c1, which gets a
	// new run: fresh timings, progress from zero. Nothing is forgotten.
	h.src.commit("c2", map[string]string{"web.yaml": deployment("web", 1, "img:2")})
	h.tick(time.Second)
	if _, err := h.ctrl.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	h.tick(time.Second)
	h.report("a", corev1.PodRunning, time.Time{})
	h.src.mu.Lock()
	h.src.head = "c1"
	h.src.mu.Unlock()
	hook := h.tick(time.Second)
	refetched := h.tick(time.Second)
	if res, err := h.ctrl.SyncWithCause(ctx, hook); err != nil || !res.Changed || res.Commit != "c1" {
		t.Fatalf("force-push back to c1: %+v %v", res, err)
	}
	v = h.commitView("c1")
	if !v.Deployed || !v.FetchedAt.Equal(refetched) || !v.WebhookAt.Equal(hook) || !v.RunningAt.IsZero() || v.Converged != 0 || v.Total != 1 || !v.SeenAt.Equal(fetched1) {
		t.Fatalf("c1 redeployed: %+v", v)
	}
	if c2 := h.commitView("c2"); c2.Deployed || c2.Converged != 1 || c2.PushToRunning != time.Second {
		t.Fatalf("c2 after being force-pushed away: %+v", c2)
	}
	h.tick(500 * time.Millisecond)
	h.report("a", corev1.PodRunning, time.Time{})
	if v := h.commitView("c1"); v.Converged != 1 || v.PushToRunning != 1500*time.Millisecond {
		t.Fatalf("c1 second run: %+v", v)
	}
	if got, err := h.st.ListCommits(ctx, 0); err != nil || len(got) != 3 {
		t.Fatalf("history: %d commits, %v; want c1, bad and c2", len(got), err)
	}
	want := []time.Duration{2 * time.Second, time.Second, 1500 * time.Millisecond}
	if len(rec.pushes) != 3 || rec.pushes[0] != want[0] || rec.pushes[1] != want[1] || rec.pushes[2] != want[2] {
		t.Errorf("push→running observed %v, want %v", rec.pushes, want)
	}
}

func TestRestartKeepsDeployedCommitTimings(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.join("a", nil)
	h.src.commit("c1", map[string]string{"web.yaml": deployment("web", 1, "img:1")})
	fetched := h.tick(time.Second)
	if _, err := h.ctrl.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	h.open()
	h.src.mu.Lock()
	h.src.last = "" // a new process's source has seen nothing
	h.src.mu.Unlock()
	h.tick(time.Minute)
	if res, err := h.ctrl.Sync(ctx); err != nil || res.Changed {
		t.Fatalf("sync after restart: %+v %v", res, err)
	}
	h.tick(time.Second)
	h.report("a", corev1.PodRunning, time.Time{})
	if v := h.commitView("c1"); !v.FetchedAt.Equal(fetched) || v.PushToRunning != time.Minute+time.Second || v.Converged != 1 {
		t.Fatalf("after restart: %+v", v)
	}
}

func TestTrackerReport(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pod := func(uid string, phase corev1.PodPhase, ready corev1.ConditionStatus) api.PodStatus {
		st := corev1.PodStatus{Phase: phase}
		if ready != "" {
			st.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}
		}
		return api.PodStatus{UID: uid, Status: st}
	}
	running := pod("u1", corev1.PodRunning, corev1.ConditionTrue)
	tests := []struct {
		name        string
		want        []api.Pod
		status      api.NodeStatus
		pulled, run time.Duration // offsets from t0 expected; -1: zero
		changed     bool
	}{
		{"OtherCommit", []api.Pod{{UID: "u1"}}, api.NodeStatus{Node: "a", Commit: "old", Pods: []api.PodStatus{running}}, -1, -1, false},
		{"UnknownNode", []api.Pod{{UID: "u1"}}, api.NodeStatus{Node: "z", Commit: "c", Pods: []api.PodStatus{running}}, -1, -1, false},
		{"Pending", []api.Pod{{UID: "u1"}}, api.NodeStatus{Node: "a", Commit: "c", Pods: []api.PodStatus{pod("u1", corev1.PodPending, "")}}, 2, -1, true},
		{"RunningNotReady", []api.Pod{{UID: "u1"}}, api.NodeStatus{Node: "a", Commit: "c", Pods: []api.PodStatus{pod("u1", corev1.PodRunning, corev1.ConditionFalse)}}, 2, -1, true},
		{"Running", []api.Pod{{UID: "u1"}}, api.NodeStatus{Node: "a", Commit: "c", Pods: []api.PodStatus{running}}, 2, 2, true},
		{"RunningNoConditions", []api.Pod{{UID: "u1"}}, api.NodeStatus{Node: "a", Commit: "c", Pods: []api.PodStatus{pod("u1", corev1.PodRunning, "")}}, 2, 2, true},
		{"OldIncarnationRunning", []api.Pod{{UID: "u2"}}, api.NodeStatus{Node: "a", Commit: "c", Pods: []api.PodStatus{running}}, 2, -1, true},
		{"OneOfTwo", []api.Pod{{UID: "u1"}, {UID: "u2"}}, api.NodeStatus{Node: "a", Commit: "c", Pods: []api.PodStatus{running}}, 2, -1, true},
		{"NoPods", nil, api.NodeStatus{Node: "a", Commit: "c"}, 2, 2, true},
		{"AgentSaysPulled", nil, api.NodeStatus{Node: "a", Commit: "c", PulledAt: t0.Add(time.Second)}, 1, 2, true},
		{"AgentClockAhead", nil, api.NodeStatus{Node: "a", Commit: "c", PulledAt: t0.Add(time.Hour)}, 2, 2, true},
		{"AgentClockBehind", nil, api.NodeStatus{Node: "a", Commit: "c", PulledAt: t0.Add(-time.Hour)}, 2, 2, true},
	}
	at := func(d time.Duration) time.Time {
		if d < 0 {
			return time.Time{}
		}
		return t0.Add(d * time.Second)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker("c", t0)
			tr.published("a", tt.want, t0)
			p, changed := tr.report(tt.status, t0.Add(2*time.Second))
			if changed != tt.changed || !p.PulledAt.Equal(at(tt.pulled)) || !p.RunningAt.Equal(at(tt.run)) {
				t.Fatalf("report = %+v, %t; want pulled %v, running %v, changed %t", p, changed, at(tt.pulled), at(tt.run), tt.changed)
			}
			if conv := tr.converge(); conv != (tt.run >= 0) {
				t.Errorf("converge = %t", conv)
			}
		})
	}
}

func TestTrackerConvergesOnLastNode(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tr := newTracker("c", t0)
	if tr.converge() {
		t.Fatal("a commit with no nodes converged")
	}
	tr.published("a", nil, t0)
	tr.published("b", nil, t0)
	tr.report(api.NodeStatus{Node: "b", Commit: "c"}, t0.Add(3*time.Second))
	if tr.converge() {
		t.Fatal("converged with a still pending")
	}
	tr.report(api.NodeStatus{Node: "a", Commit: "c"}, t0.Add(time.Second)) // a report that arrived late, stamped earlier
	if !tr.converge() || !tr.runningAt.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("runningAt = %v, want the latest node's time", tr.runningAt)
	}
	if tr.converge() {
		t.Error("converged twice")
	}
	restored := restoreTracker(store.CommitRecord{SHA: "c", FetchedAt: t0, RunningAt: tr.runningAt},
		[]store.NodeProgress{tr.nodes["a"].progress, tr.nodes["b"].progress})
	if !restored.observed || restored.converge() || restored.nodes["a"].want != nil {
		t.Errorf("restored tracker: %+v", restored)
	}
}
