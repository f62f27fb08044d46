package controller

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/store"
)

// Recorder is told when commits reach a state and how long a push took
// to run; reconciler/metrics implements it.
type Recorder interface {
	CommitState(state string)
	ObservePushToRunning(d time.Duration)
}

// tracker follows the deployed commit on every node that has a document
// at it: when the document was published, when the node pulled it, when
// all of the node's pods for it ran. It does no I/O and reads no clock;
// the controller stores what it returns.
type tracker struct {
	commit   string
	pushedAt time.Time // webhook, or the fetch that found the commit
	// runningAt is when the last node converged; zero until all have.
	runningAt time.Time
	// observed is set once push→running went to the metrics.
	observed bool
	nodes    map[string]*nodeTrack
}

type nodeTrack struct {
	progress store.NodeProgress
	// want holds the UIDs of the pods planned onto the node at the
	// commit; nil until a plan said (after a restart, until Restore
	// replans).
	want map[string]bool
}

func newTracker(commit string, pushedAt time.Time) *tracker {
	return &tracker{commit: commit, pushedAt: pushedAt, nodes: map[string]*nodeTrack{}}
}

// restoreTracker rebuilds the tracker of the deployed commit from its
// record and stored progress.
func restoreTracker(rec store.CommitRecord, progress []store.NodeProgress) *tracker {
	t := newTracker(rec.SHA, rec.PushedAt())
	t.runningAt, t.observed = rec.RunningAt, !rec.RunningAt.IsZero()
	for _, p := range progress {
		t.nodes[p.Node] = &nodeTrack{progress: p}
	}
	return t
}

// published notes that node's document at the commit plans pods. It
// returns the progress to store when the node is new to the commit.
func (t *tracker) published(node string, pods []api.Pod, now time.Time) (store.NodeProgress, bool) {
	want := make(map[string]bool, len(pods))
	for i := range pods {
		want[pods[i].UID] = true
	}
	n, ok := t.nodes[node]
	if ok {
		n.want = want
		return store.NodeProgress{}, false
	}
	n = &nodeTrack{progress: store.NodeProgress{Commit: t.commit, Node: node, PublishedAt: now}, want: want}
	t.nodes[node] = n
	return n.progress, true
}

// report folds in a node's status report received at now. It returns the
// node's progress when it changed: the first report at the commit is
// the pull (unless the agent said when it pulled), the first in which
// every planned pod runs and is ready is the node's RunningAt.
func (t *tracker) report(s api.NodeStatus, now time.Time) (store.NodeProgress, bool) {
	n := t.nodes[s.Node]
	if s.Commit != t.commit || n == nil {
		return store.NodeProgress{}, false
	}
	p, changed := &n.progress, false
	if p.PulledAt.IsZero() {
		p.PulledAt = pulledAt(s.PulledAt, p.PublishedAt, now)
		changed = true
	}
	if p.RunningAt.IsZero() && n.want != nil && allRunning(n.want, s.Pods) {
		p.RunningAt = now
		changed = true
	}
	return *p, changed
}

// pulledAt trusts the agent's own time of the pull only when it lies
// between the publication and the report; clocks may disagree.
func pulledAt(said, published, now time.Time) time.Time {
	if said.IsZero() || said.Before(published) || said.After(now) {
		return now
	}
	return said.UTC()
}

// allRunning reports whether every wanted pod is in pods, Running and ready.
func allRunning(want map[string]bool, pods []api.PodStatus) bool {
	ok := 0
	for i := range pods {
		if want[pods[i].UID] && podReady(&pods[i].Status) {
			ok++
		}
	}
	return ok == len(want)
}

func podReady(s *corev1.PodStatus) bool {
	if s.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range s.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return true // agents that set no conditions: Running is all they say
}

// converge sets runningAt when every node has converged and reports
// whether it just did.
func (t *tracker) converge() bool {
	if !t.runningAt.IsZero() || len(t.nodes) == 0 {
		return false
	}
	var last time.Time
	for _, n := range t.nodes {
		if n.progress.RunningAt.IsZero() {
			return false
		}
		if n.progress.RunningAt.After(last) {
			last = n.progress.RunningAt
		}
	}
	t.runningAt = last
	return true
}

// commitView joins a commit's record with its nodes' progress.
func commitView(r store.CommitRecord, deployed string, progress []store.NodeProgress) api.CommitView {
	v := api.CommitView{SHA: r.SHA, Author: r.Author, Message: r.Message, State: r.State,
		Errors: r.Errors, SeenAt: r.SeenAt, Deployed: r.SHA == deployed,
		WebhookAt: r.WebhookAt, FetchedAt: r.FetchedAt, PlannedAt: r.PlannedAt, RejectedAt: r.RejectedAt,
		PublishedAt: r.PublishedAt, RunningAt: r.RunningAt, Total: len(progress)}
	for _, p := range progress {
		if !p.RunningAt.IsZero() {
			v.Converged++
		}
		v.Nodes = append(v.Nodes, api.CommitNodeView{Node: p.Node, PublishedAt: p.PublishedAt, PulledAt: p.PulledAt, RunningAt: p.RunningAt})
	}
	if start := r.PushedAt(); !r.RunningAt.IsZero() && !start.IsZero() {
		v.PushToRunning = r.RunningAt.Sub(start)
	}
	return v
}
