// Package storetest is the behavioural test suite every state-store backend
// must pass: the embedded bbolt store today, an etcd one later. It owns the
// contract (ordering, not-found class, persistence, concurrency) and nothing
// of any backend's layout.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/store"
)

// Backend is what a state store offers the reconciler.
type Backend interface {
	PutNode(ctx context.Context, n store.NodeRecord) error
	GetNode(ctx context.Context, name string) (store.NodeRecord, error)
	ListNodes(ctx context.Context) ([]store.NodeRecord, error)
	PutCommit(ctx context.Context, c store.CommitRecord) error
	GetCommit(ctx context.Context, sha string) (store.CommitRecord, error)
	ListCommits(ctx context.Context, limit int) ([]store.CommitRecord, error)
	SetDeployed(ctx context.Context, sha string) error
	Deployed(ctx context.Context) (string, error)
	PutNodeStatus(ctx context.Context, s api.NodeStatus) error
	ListNodeStatus(ctx context.Context) (map[string]api.NodeStatus, error)
	PutDesired(ctx context.Context, node string, body []byte, digest string) error
	ListDesired(ctx context.Context) (map[string]store.Desired, error)
	PutPlacement(ctx context.Context, p map[string]string) error
	Placement(ctx context.Context) (map[string]string, error)
	PutAllocations(ctx context.Context, a store.Allocations) error
	Allocations(ctx context.Context) (store.Allocations, error)
	PutNodeProgress(ctx context.Context, p store.NodeProgress) error
	ListNodeProgress(ctx context.Context, sha string) ([]store.NodeProgress, error)
	PutBatchStates(ctx context.Context, s store.BatchStates) error
	GetBatchStates(ctx context.Context) (store.BatchStates, error)
	// Deployment rollout states: "namespace/name" → opaque JSON, put as
	// a whole map.
	PutDeploymentStates(ctx context.Context, states map[string][]byte) error
	GetDeploymentStates(ctx context.Context) (map[string][]byte, error)
	// Close releases the backend; calling it twice must be harmless.
	Close() error
}

// Opener opens a backend for test t. The first call for a given t returns
// an empty backend; a later call for the same t, after the previous backend
// was closed, must return the state that backend left (same file, same
// etcd prefix). Run closes every backend it opens.
type Opener func(t *testing.T) Backend

// Run runs the whole suite against the backend open returns.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"Nodes", testNodes},
		{"Commits", testCommits},
		{"CommitOrdering", testCommitOrdering},
		{"Deployed", testDeployed},
		{"NodeStatus", testNodeStatus},
		{"Desired", testDesired},
		{"Placement", testPlacement},
		{"Allocations", testAllocations},
		{"CommitTimings", testCommitTimings},
		{"NodeProgress", testNodeProgress},
		{"NotFound", testNotFound},
		{"InvalidArgument", testInvalid},
		{"Canceled", testCanceled},
		{"Persistence", testPersistence},
		{"Concurrent", testConcurrent},
		{"BatchStates", testBatchStates},
		{"DeploymentStates", testDeploymentStates},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// openClosed opens a backend and closes it when the test ends.
func openClosed(t *testing.T, open Opener) Backend {
	t.Helper()
	b := open(t)
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

// base is a fixed instant so records compare exactly after a round trip.
var base = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

func node(name string) store.NodeRecord {
	return store.NodeRecord{
		Name:          name,
		Labels:        map[string]string{"zone": "a", "name": name},
		JoinedAt:      base,
		LastSeen:      base.Add(time.Minute),
		Commit:        "c0ffee",
		DesiredDigest: "sha256:00",
		Address:       netip.MustParseAddr("192.168.1.10"),
	}
}

func allocations() store.Allocations {
	return store.Allocations{
		PodCIDRs:   map[string]netip.Prefix{"n1": netip.MustParsePrefix("10.244.0.0/24"), "n2": netip.MustParsePrefix("10.244.1.0/24")},
		ClusterIPs: map[string]netip.Addr{"default/web": netip.MustParseAddr("10.96.0.1")},
		NodePorts:  map[string]int32{"default/web/80/TCP": 30080},
	}
}

func commit(sha string, seen time.Duration, state string) store.CommitRecord {
	c := store.CommitRecord{
		SHA: sha, Author: "Ada <ada@example.com>", Message: "msg " + sha,
		Time: base.Add(-time.Hour), SeenAt: base.Add(seen), State: state,
	}
	if state == api.CommitRejected {
		c.Errors = []string{"deployment.yaml: bad", "svc.yaml: worse"}
	}
	return c
}

func status(n string) api.NodeStatus {
	return api.NodeStatus{
		APIVersion: api.Version, Kind: api.KindNodeStatus, Node: n,
		DesiredDigest: "sha256:" + n, Commit: "abc", ReportedAt: base,
		Pods: []api.PodStatus{{Namespace: "default", Name: "web-1", UID: "u1", Commit: "abc"}},
	}
}

// sameJSON reports whether a and b encode identically, which compares
// times by instant and ignores nil-versus-empty distinctions JSON erases.
func sameJSON(t *testing.T, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Errorf("mismatch\n got: %s\nwant: %s", g, w)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testNodes(t *testing.T, open Opener) {
	ctx := context.Background()
	b := openClosed(t, open)
	nodes, err := b.ListNodes(ctx)
	must(t, err)
	if len(nodes) != 0 {
		t.Fatalf("new store lists %d nodes", len(nodes))
	}
	for _, n := range []string{"n3", "n1", "n2"} {
		must(t, b.PutNode(ctx, node(n)))
	}
	got, err := b.GetNode(ctx, "n2")
	must(t, err)
	sameJSON(t, got, node("n2"))

	updated := node("n1")
	updated.LastSeen = base.Add(time.Hour)
	updated.Labels = map[string]string{"zone": "b"}
	must(t, b.PutNode(ctx, updated))

	nodes, err = b.ListNodes(ctx)
	must(t, err)
	sameJSON(t, nodes, []store.NodeRecord{updated, node("n2"), node("n3")})
}

func testCommits(t *testing.T, open Opener) {
	ctx := context.Background()
	b := openClosed(t, open)
	rej := commit("bad", 0, api.CommitRejected)
	must(t, b.PutCommit(ctx, rej))
	got, err := b.GetCommit(ctx, "bad")
	must(t, err)
	sameJSON(t, got, rej)
}

func testCommitOrdering(t *testing.T, open Opener) {
	ctx := context.Background()
	b := openClosed(t, open)
	// Stored out of order; "b" and "c" share a SeenAt.
	for _, c := range []store.CommitRecord{
		commit("c", 2*time.Second, api.CommitAccepted),
		commit("a", 0, api.CommitAccepted),
		commit("d", 3*time.Second, api.CommitRejected),
		commit("b", 2*time.Second, api.CommitAccepted),
	} {
		must(t, b.PutCommit(ctx, c))
	}
	// Re-storing "a" with a later SeenAt moves it, without a duplicate.
	must(t, b.PutCommit(ctx, commit("a", 4*time.Second, api.CommitRejected)))

	tests := []struct {
		limit int
		want  []string
	}{
		{0, []string{"a", "d", "c", "b"}},
		{-1, []string{"a", "d", "c", "b"}},
		{2, []string{"a", "d"}},
		{4, []string{"a", "d", "c", "b"}},
		{10, []string{"a", "d", "c", "b"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("limit=", tt.limit), func(t *testing.T) {
			cs, err := b.ListCommits(ctx, tt.limit)
			must(t, err)
			var got []string
			for _, c := range cs {
				got = append(got, c.SHA)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ListCommits(%d) = %v, want %v", tt.limit, got, tt.want)
			}
		})
	}
	a, err := b.GetCommit(ctx, "a")
	must(t, err)
	if a.State != api.CommitRejected || len(a.Errors) != 2 {
		t.Errorf("re-stored commit a = %+v, want the rejected version", a)
	}
}

func testDeployed(t *testing.T, open Opener) {
	ctx := context.Background()
	b := openClosed(t, open)
	sha, err := b.Deployed(ctx)
	must(t, err)
	if sha != "" {
		t.Fatalf("new store has deployed commit %q", sha)
	}
	must(t, b.PutCommit(ctx, commit("one", 0, api.CommitAccepted)))
	must(t, b.PutCommit(ctx, commit("two", time.Second, api.CommitAccepted)))
	for _, want := range []string{"one", "two", "one"} {
		must(t, b.SetDeployed(ctx, want))
		got, err := b.Deployed(ctx)
		must(t, err)
		if got != want {
			t.Errorf("Deployed = %q, want %q", got, want)
		}
	}
}

func testNodeStatus(t *testing.T, open Opener) {
	ctx := context.Background()
	b := openClosed(t, open)
	all, err := b.ListNodeStatus(ctx)
	must(t, err)
	if len(all) != 0 {
		t.Fatalf("new store lists %d statuses", len(all))
	}
	must(t, b.PutNodeStatus(ctx, status("n1")))
	must(t, b.PutNodeStatus(ctx, status("n2")))
	newer := status("n1")
	newer.Commit, newer.Pods = "def", nil
	must(t, b.PutNodeStatus(ctx, newer))
	all, err = b.ListNodeStatus(ctx)
	must(t, err)
	sameJSON(t, all, map[string]api.NodeStatus{"n1": newer, "n2": status("n2")})
}

func testDesired(t *testing.T, open Opener) {
	ctx := context.Background()
	b := openClosed(t, open)
	d1 := []byte(`{"apiVersion":"moor.dev/v1","kind":"NodeDesired","node":"n1"}`)
	d2 := []byte{0, 1, 2, 255} // bodies are opaque bytes
	must(t, b.PutDesired(ctx, "n1", []byte("old"), api.Digest([]byte("old"))))
	must(t, b.PutDesired(ctx, "n1", d1, api.Digest(d1)))
	must(t, b.PutDesired(ctx, "n2", d2, api.Digest(d2)))
	got, err := b.ListDesired(ctx)
	must(t, err)
	want := map[string]store.Desired{"n1": {Body: d1, Digest: api.Digest(d1)}, "n2": {Body: d2, Digest: api.Digest(d2)}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListDesired = %+v, want %+v", got, want)
	}
}

func testPlacement(t *testing.T, open Opener) {
	ctx := context.Background()
	b := openClosed(t, open)
	p, err := b.Placement(ctx)
	must(t, err)
	if p == nil || len(p) != 0 {
		t.Fatalf("new store placement = %#v, want an empty map", p)
	}
	must(t, b.PutPlacement(ctx, map[string]string{"default/a": "n1", "default/b": "n2"}))
	// PutPlacement replaces the whole map: default/a disappears.
	want := map[string]string{"default/b": "n1", "kube/c": "n3"}
	must(t, b.PutPlacement(ctx, want))
	p, err = b.Placement(ctx)
	must(t, err)
	if !reflect.DeepEqual(p, want) {
		t.Errorf("Placement = %v, want %v", p, want)
	}
}

func testAllocations(t *testing.T, open Opener) {
	ctx := context.Background()
	b := openClosed(t, open)
	a, err := b.Allocations(ctx)
	must(t, err)
	if a.PodCIDRs == nil || a.ClusterIPs == nil || a.NodePorts == nil || len(a.PodCIDRs)+len(a.ClusterIPs)+len(a.NodePorts) != 0 {
		t.Fatalf("new store allocations = %#v, want empty maps", a)
	}
	must(t, b.PutAllocations(ctx, allocations()))
	// PutAllocations replaces every map; nil stores an empty one.
	want := store.Allocations{
		PodCIDRs:   map[string]netip.Prefix{"n3": netip.MustParsePrefix("10.244.2.0/24")},
		ClusterIPs: map[string]netip.Addr{},
		NodePorts:  map[string]int32{"default/api/53/UDP": 30053},
	}
	must(t, b.PutAllocations(ctx, store.Allocations{PodCIDRs: want.PodCIDRs, NodePorts: want.NodePorts}))
	a, err = b.Allocations(ctx)
	must(t, err)
	if !reflect.DeepEqual(a, want) {
		t.Errorf("Allocations = %+v, want %+v", a, want)
	}
}

func testNotFound(t *testing.T, open Opener) {
	ctx := context.Background()
	b := openClosed(t, open)
	must(t, b.PutNode(ctx, node("present")))
	must(t, b.PutCommit(ctx, commit("present", 0, api.CommitAccepted)))
	tests := []struct {
		name string
		call func() error
	}{
		{"GetNode", func() error { _, err := b.GetNode(ctx, "absent"); return err }},
		{"GetNodeEmpty", func() error { _, err := b.GetNode(ctx, ""); return err }},
		{"GetCommit", func() error { _, err := b.GetCommit(ctx, "absent"); return err }},
		{"SetDeployedUnknown", func() error { return b.SetDeployed(ctx, "absent") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errdefs.IsNotFound(err) {
				t.Fatalf("err = %v, want one wrapping errdefs.ErrNotFound", err)
			}
		})
	}
	if sha, err := b.Deployed(ctx); err != nil || sha != "" {
		t.Errorf("after failed SetDeployed: Deployed = %q, %v; want \"\", nil", sha, err)
	}
}

func testInvalid(t *testing.T, open Opener) {
	ctx := context.Background()
	b := openClosed(t, open)
	tests := []struct {
		name string
		call func() error
	}{
		{"PutNodeNoName", func() error { return b.PutNode(ctx, store.NodeRecord{}) }},
		{"PutCommitNoSHA", func() error { return b.PutCommit(ctx, commit("", 0, api.CommitAccepted)) }},
		{"PutCommitBadState", func() error { return b.PutCommit(ctx, commit("x", 0, "Maybe")) }},
		{"PutNodeStatusNoNode", func() error { return b.PutNodeStatus(ctx, api.NodeStatus{}) }},
		{"PutDesiredNoNode", func() error { return b.PutDesired(ctx, "", []byte("x"), "sha256:1") }},
		{"PutDesiredNoDigest", func() error { return b.PutDesired(ctx, "n", []byte("x"), "") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errdefs.IsInvalidArgument(err) {
				t.Fatalf("err = %v, want one wrapping errdefs.ErrInvalidArgument", err)
			}
		})
	}
}

func testCanceled(t *testing.T, open Opener) {
	b := openClosed(t, open)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.PutNode(ctx, node("n1")); !errors.Is(err, context.Canceled) {
		t.Errorf("PutNode with canceled ctx: err = %v, want context.Canceled", err)
	}
	if _, err := b.ListNodes(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("ListNodes with canceled ctx: err = %v, want context.Canceled", err)
	}
	if err := b.PutAllocations(ctx, allocations()); !errors.Is(err, context.Canceled) {
		t.Errorf("PutAllocations with canceled ctx: err = %v, want context.Canceled", err)
	}
	if _, err := b.Allocations(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Allocations with canceled ctx: err = %v, want context.Canceled", err)
	}
	if nodes, err := b.ListNodes(context.Background()); err != nil || len(nodes) != 0 {
		t.Errorf("canceled PutNode wrote: %v, %v", nodes, err)
	}
}
