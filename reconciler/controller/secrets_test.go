package controller

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
)

const dbSecret = `apiVersion: v1
kind: Secret
metadata:
  name: db
  annotations:
    vault.moor.dev/path: secret/data/shop/db
    vault.moor.dev/key.password: pass
---
apiVersion: v1
kind: Secret
metadata:
  name: unused
  annotations: {vault.moor.dev/path: secret/data/unused, vault.moor.dev/version: "2"}
`

const dbConsumer = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: main
        image: img:1
        env:
        - name: DB_PASSWORD
          valueFrom: {secretKeyRef: {name: db, key: password}}
`

func TestSecretVersionsFromStatus(t *testing.T) {
	got := secretVersions(map[string]api.NodeStatus{
		"a": {Secrets: []api.SecretStatus{{Namespace: "default", Name: "db", Version: 3}, {Namespace: "shop", Name: "db", Version: 9}}},
		"b": {Secrets: []api.SecretStatus{{Namespace: "default", Name: "db", Version: 5}, {Namespace: "default", Name: "new", Error: "permission denied"}}},
		"c": {},
	})
	want := map[string]int64{"default/db": 5, "shop/db": 9}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
}

func TestSecretsNewer(t *testing.T) {
	used := map[string]int64{"default/db": 4, "default/fresh": 0}
	for _, tt := range []struct {
		reported []api.SecretStatus
		want     bool
	}{
		{nil, false},
		{[]api.SecretStatus{{Namespace: "default", Name: "db", Version: 4}}, false},
		{[]api.SecretStatus{{Namespace: "default", Name: "db", Version: 3}}, false},
		{[]api.SecretStatus{{Namespace: "default", Name: "gone", Version: 8}}, false}, // not in the commit
		{[]api.SecretStatus{{Namespace: "default", Name: "db", Version: 5}}, true},
		{[]api.SecretStatus{{Namespace: "default", Name: "fresh", Version: 1}}, true}, // first read
	} {
		if got := secretsNewer(tt.reported, used); got != tt.want {
			t.Errorf("secretsNewer(%+v) = %t", tt.reported, got)
		}
	}
}

func TestSecretViews(t *testing.T) {
	objs, err := manifest.LoadWithOptions(map[string][]byte{
		"s.yaml":     []byte(dbSecret),
		"plain.yaml": []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: dev}\nstringData: {token: hunter2, id: x}\n"),
	}, manifest.Options{AllowPlainSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	pod := func(name string, env ...string) api.Pod {
		p := api.Pod{Namespace: "default", Name: name}
		p.Spec.Containers = []corev1.Container{{Name: "c"}}
		for _, s := range env {
			p.Spec.Containers[0].EnvFrom = append(p.Spec.Containers[0].EnvFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: s}}})
		}
		return p
	}
	read := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	nodes := map[string]*api.NodeDesired{
		"a": {Node: "a", Pods: []api.Pod{pod("web-2", "db"), pod("web-1", "db", "db"), pod("other")}},
		"b": {Node: "b", Pods: []api.Pod{pod("dev", "dev")}},
	}
	statuses := map[string]api.NodeStatus{
		"a": {Secrets: []api.SecretStatus{{Namespace: "default", Name: "db", Version: 3, Keys: []string{"password"}, ReadAt: read}}},
		"c": {Secrets: []api.SecretStatus{{Namespace: "default", Name: "db", Version: 2, Error: "permission denied"},
			{Namespace: "default", Name: "removed", Version: 1}}},
	}
	got := secretViews(objs, nodes, statuses, "c1")
	want := []api.SecretView{{
		Namespace: "default", Name: "db", Type: "Opaque", Commit: "c1",
		Vault: &api.VaultSource{Engine: "kv", Path: "secret/data/shop/db", Keys: map[string]string{"password": "pass"}},
		Nodes: []api.SecretNodeView{
			{Node: "a", Pods: []string{"web-1", "web-2"}, Version: 3, Keys: []string{"password"}, ReadAt: read},
			{Node: "c", Version: 2, Error: "permission denied"},
		},
	}, {
		Namespace: "default", Name: "dev", Type: "Opaque", Commit: "c1", PlainKeys: []string{"id", "token"},
		Nodes: []api.SecretNodeView{{Node: "b", Pods: []string{"dev"}}},
	}, {
		Namespace: "default", Name: "unused", Type: "Opaque", Commit: "c1",
		Vault: &api.VaultSource{Engine: "kv", Path: "secret/data/unused", Version: 2},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("views (-want +got):\n%s", diff)
	}
	b, _ := json.Marshal(got)
	if strings.Contains(string(b), "hunter2") {
		t.Errorf("a view holds a value: %s", b)
	}
	if got := secretViews(nil, nil, nil, ""); got == nil || len(got) != 0 {
		t.Errorf("nothing deployed: %#v", got)
	}
}

// TestSecretsEndToEnd: a commit with a Secret publishes its reference to
// the nodes whose pods use it, the view joins the nodes' reports, and a
// report of a newer version calls for a new plan.
func TestSecretsEndToEnd(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.join("a", nil)
	h.join("b", nil)
	h.src.commit("c1", map[string]string{"s.yaml": dbSecret, "web.yaml": dbConsumer})
	if res, err := h.ctrl.Sync(ctx); err != nil || res.State != api.CommitAccepted {
		t.Fatalf("sync: %+v %v", res, err)
	}
	for _, n := range []string{"a", "b"} {
		d, _ := h.doc(n)
		if len(d.Secrets) != 1 || d.Secrets[0].Key() != "default/db" || d.Secrets[0].Vault == nil ||
			d.Secrets[0].Vault.Path != "secret/data/shop/db" || d.Secrets[0].Data != nil {
			t.Fatalf("secrets of %s: %+v", n, d.Secrets)
		}
	}
	d, _ := h.doc("a")
	st := api.NodeStatus{Node: "a", Commit: "c1", Secrets: []api.SecretStatus{
		{Namespace: "default", Name: "db", Version: 3, Keys: []string{"password"}, ReadAt: h.now}}}
	if !h.ctrl.secretReportChanged(st) {
		t.Error("the first version read does not call for a new plan")
	}
	if err := h.ctrl.ReportStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	views, err := h.ctrl.Secrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(views) != 2 || views[0].Name != "db" || len(views[0].Nodes) != 2 ||
		views[0].Nodes[0].Version != 3 || len(views[0].Nodes[0].Pods) < len(d.Pods) || views[0].Nodes[1].Version != 0 {
		t.Fatalf("views: %+v", views)
	}
	// Version 3 is news to the planner: the Deployment reading db through
	// env rolls, so node a may run a pod of the new revision beside the old.
	if views[1].Name != "unused" || views[1].Nodes != nil {
		t.Errorf("unused secret: %+v", views[1])
	}
}
