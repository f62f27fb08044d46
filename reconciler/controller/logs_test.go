package controller

import (
	"context"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/reconciler/httpapi"
)

var _ httpapi.PodLocator = (*Controller)(nil)

func TestPodNode(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.ctrl.PodNode(ctx, "default", "web"); !errdefs.IsNotFound(err) {
		t.Fatalf("before any commit: %v", err)
	}
	h.join("a", map[string]string{"disk": "hdd"})
	h.src.commit("c1", map[string]string{
		"web.yaml": deployment("web", 1, "img:1"),
		"ssd.yaml": strings.Replace(deployment("fast", 1, "img:1"), "    spec:\n", "    spec:\n      nodeSelector: {disk: ssd}\n", 1),
	})
	if _, err := h.ctrl.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	d, _ := h.doc("a")
	if len(d.Pods) != 1 {
		t.Fatalf("node a runs %d pods, want 1", len(d.Pods))
	}
	if node, err := h.ctrl.PodNode(ctx, d.Pods[0].Namespace, d.Pods[0].Name); err != nil || node != "a" {
		t.Fatalf("placed pod: %q %v", node, err)
	}
	if _, err := h.ctrl.PodNode(ctx, "other", d.Pods[0].Name); !errdefs.IsNotFound(err) {
		t.Fatalf("pod of another namespace: %v", err)
	}
	pods, err := h.ctrl.Pods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pending string
	for _, p := range pods {
		if p.Pod.Spec.NodeName == "" {
			pending = p.Pod.Name
		}
	}
	if pending == "" {
		t.Fatalf("no pending pod among %d", len(pods))
	}
	_, err = h.ctrl.PodNode(ctx, "default", pending)
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "not running on any node yet") {
		t.Fatalf("pending pod: %v", err)
	}
	t.Log(err)
}
