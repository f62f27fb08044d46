package planner

import (
	"reflect"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// running is a report of p as Running, ready since since when ready.
func running(p api.Pod, commit string, ready bool, since time.Time) api.PodStatus {
	cond := corev1.ConditionFalse
	if ready {
		cond = corev1.ConditionTrue
	}
	start := metav1.NewTime(since.Add(-time.Second))
	return api.PodStatus{
		Namespace: p.Namespace, Name: p.Name, UID: p.UID, Commit: commit,
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			StartTime:  &start,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: cond, LastTransitionTime: metav1.NewTime(since)}},
		},
	}
}

func TestReadySince(t *testing.T) {
	t0 := now.Add(-time.Minute)
	runningAt := func(ready bool, at time.Time) corev1.ContainerStatus {
		return corev1.ContainerStatus{Ready: ready, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(at)}}}
	}
	tests := []struct {
		name      string
		st        corev1.PodStatus
		wantReady bool
		wantSince time.Time
	}{
		{name: "nothing reported", st: corev1.PodStatus{Phase: corev1.PodPending}},
		{name: "ready condition true", wantReady: true, wantSince: t0,
			st: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)}}}},
		{name: "ready condition decides over containers",
			st: corev1.PodStatus{
				Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}},
				ContainerStatuses: []corev1.ContainerStatus{runningAt(true, t0)},
			}},
		{name: "all containers ready, since the latest start", wantReady: true, wantSince: t0.Add(time.Second),
			st: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{runningAt(true, t0), runningAt(true, t0.Add(time.Second))}}},
		{name: "ready condition without a transition time: the containers' start", wantReady: true, wantSince: t0,
			st: corev1.PodStatus{
				Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
				ContainerStatuses: []corev1.ContainerStatus{runningAt(true, t0)},
			}},
		{name: "one container not ready",
			st: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{runningAt(true, t0), runningAt(false, t0)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			since, ready := readySince(&tt.st)
			if ready != tt.wantReady || !since.Equal(tt.wantSince) {
				t.Errorf("readySince = %v, %v; want %v, %v", since, ready, tt.wantSince, tt.wantReady)
			}
		})
	}
}

func TestViews(t *testing.T) {
	web := deployment("web", 3, "nginx:1", nil)
	web.Spec.MinReadySeconds = 30
	web.Status.ObservedGeneration = 7
	old := deployment("web", 3, "nginx:0", nil) // previous template, still reported
	in := Input{
		Commit:  "c2",
		Objects: &manifest.Objects{Deployments: []appsv1.Deployment{web}, Pods: []corev1.Pod{bare("lonely", "", map[string]string{"gpu": "yes"})}},
		Nodes:   parseNodes(t, "a ready\nb ready\nc ready"),
		Now:     now,
	}
	first := Plan(in)
	pods := deploymentPods(&web)
	node := func(p api.Pod) string { return first.Placement[p.Key()] }
	stale := pods[2]
	stale.UID = "some-other-uid"
	oldPod := deploymentPods(&old)[0]
	in.Status = map[string][]api.PodStatus{
		node(pods[0]): {running(pods[0], "c1", true, now.Add(-time.Minute))},    // available
		node(pods[1]): {running(pods[1], "c2", true, now.Add(-10*time.Second))}, // ready, not yet available
		node(pods[2]): {running(stale, "c0", true, now.Add(-time.Hour)), running(oldPod, "c0", true, now.Add(-time.Hour))},
	}
	in.Previous = first.Placement
	out := Plan(in)

	views := map[string]api.PodView{}
	for _, v := range out.Pods {
		views[v.Pod.Name] = v
	}
	if len(views) != 4 {
		t.Fatalf("%d pod views, want 3 web + 1 lonely", len(views))
	}
	v0 := views[pods[0].Name]
	if v0.Pod.APIVersion != "v1" || v0.Pod.Kind != "Pod" || v0.Pod.Spec.NodeName != node(pods[0]) ||
		string(v0.Pod.UID) != pods[0].UID || v0.Commit != "c1" || v0.Pod.Status.Phase != corev1.PodRunning ||
		v0.Pod.Labels["app"] != "web" || len(v0.Pod.OwnerReferences) != 1 || v0.Pod.OwnerReferences[0].Name != "web" ||
		v0.Pod.CreationTimestamp.IsZero() {
		t.Errorf("view of reported pod: %+v", v0)
	}
	if v2 := views[pods[2].Name]; v2.Pod.Status.Phase != corev1.PodPending || v2.Commit != "" || v2.Pod.Spec.NodeName == "" {
		t.Errorf("view of pod reported with another UID: phase %q commit %q node %q, want Pending, no commit, scheduled",
			v2.Pod.Status.Phase, v2.Commit, v2.Pod.Spec.NodeName)
	}
	lonely := views["lonely"]
	if lonely.Pod.Status.Phase != corev1.PodPending || len(lonely.Pod.Status.Conditions) != 1 ||
		lonely.Pod.Status.Conditions[0].Reason != corev1.PodReasonUnschedulable || lonely.Pod.Status.Conditions[0].Message != out.Pending[0].Reason {
		t.Errorf("view of unschedulable pod: %+v", lonely.Pod.Status)
	}

	if len(out.Deployments) != 1 {
		t.Fatalf("deployments: %+v", out.Deployments)
	}
	dv := out.Deployments[0]
	st := dv.Deployment.Status
	want := appsv1.DeploymentStatus{ObservedGeneration: 7, Replicas: 4, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 1, UnavailableReplicas: 2}
	st.Conditions = nil
	if !reflect.DeepEqual(st, want) {
		t.Errorf("status = %+v\nwant     %+v", st, want)
	}
	if c := dv.Deployment.Status.Conditions; len(c) != 2 || c[0].Type != appsv1.DeploymentAvailable || c[0].Status != corev1.ConditionFalse || !c[0].LastUpdateTime.Time.Equal(now) ||
		c[1].Type != appsv1.DeploymentProgressing || c[1].Status != corev1.ConditionTrue || c[1].Reason != "ReplicaSetUpdated" {
		t.Errorf("conditions = %+v", c)
	}
	if ro := dv.Rollout; ro.State != api.RolloutProgressing || ro.Waiting != 1 ||
		ro.Message != `Waiting for deployment "web" rollout to finish: 2 out of 3 new replicas have been updated...` {
		t.Errorf("rollout = %+v", ro)
	}
	if dv.Commit != "c2" || dv.Deployment.Kind != "Deployment" || dv.Deployment.APIVersion != "apps/v1" {
		t.Errorf("view: commit %q type %s/%s", dv.Commit, dv.Deployment.APIVersion, dv.Deployment.Kind)
	}
}

func TestReplicaOf(t *testing.T) {
	tests := []struct {
		pod, want string
		ok        bool
	}{
		{"web-0123456789-bcdfg", "web", true},
		{"my-web-abcdef0123-x2z45", "my-web", true},
		{"web-0123456789-bcdfa", "", false}, // 'a' is not in the alphabet
		{"web-012345678g-bcdfg", "", false},
		{"web-0123456789bcdfgh", "", false},
		{"0123456789-bcdfg", "", false},
		{"lonely", "", false},
	}
	for _, tt := range tests {
		if got, ok := replicaOf(tt.pod); got != tt.want || ok != tt.ok {
			t.Errorf("replicaOf(%q) = %q, %v; want %q, %v", tt.pod, got, ok, tt.want, tt.ok)
		}
	}
}
