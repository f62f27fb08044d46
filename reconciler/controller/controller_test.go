package controller

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/httpapi"
	"github.com/moor-dev/moor/reconciler/pki"
	"github.com/moor-dev/moor/reconciler/source"
	"github.com/moor-dev/moor/reconciler/store"
)

// fakeSource serves scripted commits; the real go-git source has its own
// tests against real repositories, and the e2e test runs both together.
type fakeSource struct {
	mu      sync.Mutex
	head    string
	last    string
	commits map[string]map[string][]byte
	fetches int
	err     error
}

func (f *fakeSource) commit(sha string, files map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string][]byte{}
	for k, v := range files {
		m[k] = []byte(v)
	}
	if f.commits == nil {
		f.commits = map[string]map[string][]byte{}
	}
	f.commits[sha], f.head = m, sha
}

func (f *fakeSource) Fetch(context.Context) (source.Revision, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches++
	if f.err != nil {
		return source.Revision{}, false, f.err
	}
	changed := f.head != f.last
	f.last = f.head
	return source.Revision{Commit: f.head, Author: "dev", Message: "msg " + f.head}, changed, nil
}

func (f *fakeSource) Files(_ context.Context, sha string) (map[string][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	files, ok := f.commits[sha]
	if !ok {
		return nil, fmt.Errorf("commit %s: %w", sha, errdefs.ErrNotFound)
	}
	return files, nil
}

var _ Source = (*fakeSource)(nil)

type harness struct {
	t    *testing.T
	dir  string
	src  *fakeSource
	st   *store.Store
	hub  *httpapi.Hub
	auth *pki.Authority
	ctrl *Controller
	now  time.Time
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, dir: t.TempDir(), src: &fakeSource{}, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	auth, err := pki.LoadOrCreate(filepath.Join(h.dir, "pki"), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.auth = auth
	h.open()
	return h
}

// open (re)creates the store, hub and controller over the same data dir,
// as a server restart does.
func (h *harness) open() {
	h.t.Helper()
	if h.st != nil {
		h.st.Close()
	}
	st, err := store.Open(filepath.Join(h.dir, "state.db"))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { st.Close() })
	h.st, h.hub = st, httpapi.NewHub()
	ctrl, err := New(Config{Source: h.src, Store: st, Publisher: h.hub, Signer: h.auth,
		Now: func() time.Time { return h.now }})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := ctrl.Restore(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.ctrl = ctrl
}

func (h *harness) join(node string, labels map[string]string) {
	h.t.Helper()
	csr, _, err := pki.NewCSR(node)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.ctrl.Join(context.Background(), api.JoinRequest{Node: node, Secret: h.auth.Token().Secret, CSR: string(csr), Labels: labels}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) doc(node string) (*api.NodeDesired, string) {
	h.t.Helper()
	body, digest, ok := h.hub.Get(node)
	if !ok {
		h.t.Fatalf("no document published for %s", node)
	}
	d, err := api.DecodeNodeDesired(body, digest)
	if err != nil {
		h.t.Fatal(err)
	}
	return d, digest
}

func deployment(name string, replicas int, image string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %s}
spec:
  replicas: %d
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec:
      containers: [{name: main, image: %s}]
`, name, replicas, name, name, image)
}

func TestSyncPublishesValidCommitAndKeepsItOverInvalidOnes(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.join("a", nil)
	h.join("b", nil)

	h.src.commit("c1", map[string]string{"web.yaml": deployment("web", 4, "img:1")})
	res, err := h.ctrl.Sync(ctx)
	if err != nil || res.State != api.CommitAccepted || !res.Changed {
		t.Fatalf("sync c1: %+v %v", res, err)
	}
	da, digestA := h.doc("a")
	db, _ := h.doc("b")
	if len(da.Pods) != 2 || len(db.Pods) != 2 || da.Commit != "c1" {
		t.Fatalf("want 2+2 pods at c1, got %d+%d at %s", len(da.Pods), len(db.Pods), da.Commit)
	}

	// An unchanged head does nothing.
	if res, err := h.ctrl.Sync(ctx); err != nil || res.Changed {
		t.Fatalf("unchanged sync: %+v %v", res, err)
	}

	// An invalid commit is rejected with file-level errors; nothing moves.
	h.src.commit("c2", map[string]string{
		"web.yaml": deployment("web", 4, "img:2"),
		"bad.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
	})
	res, err = h.ctrl.Sync(ctx)
	if err != nil || res.State != api.CommitRejected || len(res.Errors) == 0 || !strings.Contains(res.Errors[0], "bad.yaml") {
		t.Fatalf("sync c2: %+v %v", res, err)
	}
	if _, d := h.doc("a"); d != digestA {
		t.Fatal("a rejected commit changed a published document")
	}
	commits, err := h.ctrl.Commits(ctx)
	if err != nil || len(commits) != 2 || commits[0].SHA != "c2" || commits[0].State != api.CommitRejected || !commits[1].Deployed {
		t.Fatalf("commits: %+v %v", commits, err)
	}

	// A fetch failure is an error, not a rejected commit.
	h.src.err = fmt.Errorf("network down")
	if _, err := h.ctrl.Sync(ctx); err == nil || !errdefs.IsUnavailable(err) {
		t.Fatalf("fetch failure: %v", err)
	}
	h.src.err = nil

	// Deleting the manifest empties the nodes.
	h.src.commit("c3", map[string]string{})
	if res, err := h.ctrl.Sync(ctx); err != nil || res.State != api.CommitAccepted {
		t.Fatalf("sync c3: %+v %v", res, err)
	}
	if da, _ := h.doc("a"); len(da.Pods) != 0 || da.Commit != "c3" {
		t.Fatalf("after delete: %d pods at %s", len(da.Pods), da.Commit)
	}
}

func TestRestartRepublishesAndKeepsPlacement(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.join("a", nil)
	h.src.commit("c1", map[string]string{"web.yaml": deployment("web", 2, "img:1")})
	if _, err := h.ctrl.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	_, before := h.doc("a")

	// A node joining later gets new pods only; existing ones stay put.
	h.join("b", nil)
	if da, _ := h.doc("a"); len(da.Pods) != 2 {
		t.Fatalf("join moved pods: a has %d", len(da.Pods))
	}

	h.open() // server restart
	if _, after := h.doc("a"); after != before {
		t.Fatal("restart changed the published document")
	}
	pods, err := h.ctrl.Pods(ctx)
	if err != nil || len(pods) != 2 {
		t.Fatalf("pods after restart: %d %v", len(pods), err)
	}
	for _, p := range pods {
		if p.Pod.Spec.NodeName != "a" {
			t.Fatalf("pod %s placed on %q after restart", p.Pod.Name, p.Pod.Spec.NodeName)
		}
	}
}

func TestJoinAndStatus(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	csr, _, _ := pki.NewCSR("a")
	if _, err := h.ctrl.Join(ctx, api.JoinRequest{Node: "a", Secret: "wrong-secret-0123456789", CSR: string(csr)}); !errdefs.IsPermissionDenied(err) {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := h.ctrl.Join(ctx, api.JoinRequest{Node: "Not_A_Name", Secret: h.auth.Token().Secret, CSR: string(csr)}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("bad name: %v", err)
	}
	if err := h.ctrl.ReportStatus(ctx, api.NodeStatus{Node: "ghost"}); !errdefs.IsNotFound(err) {
		t.Fatalf("status of an unknown node: %v", err)
	}
	h.join("a", map[string]string{"zone": "x"})
	h.src.commit("c1", map[string]string{"web.yaml": deployment("web", 1, "img:1")})
	if _, err := h.ctrl.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	d, digest := h.doc("a")
	h.now = h.now.Add(5 * time.Second)
	if err := h.ctrl.ReportStatus(ctx, api.NodeStatus{Node: "a", Commit: "c1", DesiredDigest: digest,
		Pods: []api.PodStatus{{Namespace: d.Pods[0].Namespace, Name: d.Pods[0].Name, UID: d.Pods[0].UID, Commit: "c1"}}}); err != nil {
		t.Fatal(err)
	}
	nodes, err := h.ctrl.Nodes(ctx)
	if err != nil || len(nodes) != 1 || nodes[0].Commit != "c1" || !nodes[0].Ready || nodes[0].Pods != 1 || nodes[0].Labels["zone"] != "x" {
		t.Fatalf("nodes: %+v %v", nodes, err)
	}
	pods, _ := h.ctrl.Pods(ctx)
	if len(pods) != 1 || pods[0].Commit != "c1" {
		t.Fatalf("pods: %+v", pods)
	}

	// A silent node turns NotReady.
	h.now = h.now.Add(time.Minute)
	if nodes, _ := h.ctrl.Nodes(ctx); nodes[0].Ready {
		t.Fatal("silent node still Ready")
	}
}
