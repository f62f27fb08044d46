package controller

import (
	"context"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
)

// rollingDeployment is deployment with maxSurge 1 and maxUnavailable 0.
func rollingDeployment(name string, replicas int, image string) string {
	return strings.Replace(deployment(name, replicas, image), "spec:\n",
		"spec:\n  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}\n", 1)
}

// reportReady has node report every pod of its current document Running
// and ready.
func (h *harness) reportReady(node string) {
	h.t.Helper()
	d, _ := h.doc(node)
	st := api.NodeStatus{Node: node, Commit: d.Commit}
	for _, p := range d.Pods {
		st.Pods = append(st.Pods, api.PodStatus{Namespace: p.Namespace, Name: p.Name, UID: p.UID, Commit: d.Commit,
			Status: corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(h.now)}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "main", Ready: true,
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(h.now)}}}}}})
	}
	if err := h.ctrl.ReportStatus(context.Background(), st); err != nil {
		h.t.Fatal(err)
	}
}

// images lists the image of every pod published to the nodes, sorted.
func (h *harness) images(nodes ...string) string {
	h.t.Helper()
	var out []string
	for _, n := range nodes {
		d, _ := h.doc(n)
		for _, p := range d.Pods {
			out = append(out, p.Spec.Containers[0].Image)
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func (h *harness) webView() api.DeploymentView {
	h.t.Helper()
	views, err := h.ctrl.Deployments(context.Background())
	if err != nil || len(views) != 1 {
		h.t.Fatalf("deployments: %+v %v", views, err)
	}
	return views[0]
}

// A rollout goes on with the nodes' reports, without a new commit, and
// survives a server restart in the middle.
func TestRolloutProceedsOnReportsAndSurvivesRestart(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.join("a", nil)
	h.join("b", nil)
	h.src.commit("c1", map[string]string{"web.yaml": rollingDeployment("web", 2, "img:1")})
	h.syncOK()
	h.reportReady("a")
	h.reportReady("b")
	if v := h.webView(); v.Rollout.State != api.RolloutComplete || v.Deployment.Status.AvailableReplicas != 2 {
		t.Fatalf("after the first deploy: %+v", v.Rollout)
	}

	h.src.commit("c2", map[string]string{"web.yaml": rollingDeployment("web", 2, "img:2")})
	h.syncOK()
	if got := h.images("a", "b"); got != "img:1 img:1 img:2" {
		t.Fatalf("first step: pods %s, want both old ones and one new (maxSurge 1, maxUnavailable 0)", got)
	}
	raw, err := h.st.GetDeploymentStates(ctx)
	if err != nil || len(raw) != 1 || !strings.Contains(string(raw["default/web"]), `"img:1"`) {
		t.Fatalf("stored states: %q %v", raw, err)
	}
	_, digestA := h.doc("a")
	_, digestB := h.doc("b")

	// A restart goes on from the stored revisions: the same documents.
	h.open()
	if _, d := h.doc("a"); d != digestA {
		t.Fatal("restart changed a's document")
	}
	if _, d := h.doc("b"); d != digestB {
		t.Fatal("restart changed b's document")
	}
	if v := h.webView(); v.Rollout.State != api.RolloutProgressing || len(v.Rollout.Revisions) != 2 {
		t.Fatalf("mid-rollout view: %+v", v.Rollout)
	}

	// Nodes report the new pod ready: the next step, then the last, with
	// no commit in between.
	for i := 0; i < 4 && h.images("a", "b") != "img:2 img:2"; i++ {
		h.reportReady("a")
		h.reportReady("b")
		if got := h.images("a", "b"); strings.Count(got, "img:") > 3 || !strings.Contains(got, "img:2") {
			t.Fatalf("step %d: pods %s", i, got)
		}
	}
	if got := h.images("a", "b"); got != "img:2 img:2" {
		t.Fatalf("rollout did not finish: pods %s", got)
	}
	h.reportReady("a")
	h.reportReady("b")
	v := h.webView()
	if v.Rollout.State != api.RolloutComplete || v.Deployment.Status.UpdatedReplicas != 2 || len(v.Rollout.Revisions) != 1 ||
		v.Rollout.Message != `deployment "web" successfully rolled out` {
		t.Fatalf("after the rollout: %+v status %+v", v.Rollout, v.Deployment.Status)
	}
	if raw, _ := h.st.GetDeploymentStates(ctx); strings.Contains(string(raw["default/web"]), `"img:1"`) {
		t.Fatalf("the old revision is still stored: %s", raw["default/web"])
	}

	// Removing the Deployment from Git forgets its revisions.
	h.src.commit("c3", map[string]string{})
	h.syncOK()
	if raw, err := h.st.GetDeploymentStates(ctx); err != nil || len(raw) != 0 {
		t.Fatalf("states after removal: %q %v", raw, err)
	}
}

// A Recreate rollout removes the old pods, then starts the new ones once
// the nodes no longer report old ones.
func TestRecreateRolloutWaitsForNodes(t *testing.T) {
	h := newHarness(t)
	h.join("a", nil)
	recreate := func(image string) string {
		return strings.Replace(deployment("web", 2, image), "spec:\n", "spec:\n  strategy: {type: Recreate}\n", 1)
	}
	h.src.commit("c1", map[string]string{"web.yaml": recreate("img:1")})
	h.syncOK()
	h.reportReady("a")
	h.src.commit("c2", map[string]string{"web.yaml": recreate("img:2")})
	h.syncOK()
	if got := h.images("a"); got != "" {
		t.Fatalf("first step: pods %q, want none", got)
	}
	if h.ctrl.RequeueAfter() == 0 {
		t.Fatal("a waiting Recreate rollout asked for no requeue")
	}
	// a applied the empty document and reports no pods.
	h.reportReady("a")
	if got := h.images("a"); got != "img:2 img:2" {
		t.Fatalf("after the old pods are gone: %q", got)
	}
}
