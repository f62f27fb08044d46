package storetest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/store"
)

// testPersistence writes one of everything, closes the backend, reopens it
// and reads everything back.
func testPersistence(t *testing.T, open Opener) {
	ctx := context.Background()
	b := open(t)
	body := []byte(`{"node":"n1"}`)
	must(t, b.PutNode(ctx, node("n1")))
	must(t, b.PutCommit(ctx, commit("old", 0, api.CommitRejected)))
	must(t, b.PutCommit(ctx, commit("new", time.Second, api.CommitAccepted)))
	must(t, b.SetDeployed(ctx, "new"))
	must(t, b.PutNodeStatus(ctx, status("n1")))
	must(t, b.PutDesired(ctx, "n1", body, api.Digest(body)))
	must(t, b.PutPlacement(ctx, map[string]string{"default/web-1": "n1"}))
	must(t, b.PutAllocations(ctx, allocations()))
	must(t, b.Close())
	must(t, b.Close()) // twice is harmless

	b = openClosed(t, open)
	nodes, err := b.ListNodes(ctx)
	must(t, err)
	sameJSON(t, nodes, []store.NodeRecord{node("n1")})
	commits, err := b.ListCommits(ctx, 0)
	must(t, err)
	sameJSON(t, commits, []store.CommitRecord{commit("new", time.Second, api.CommitAccepted), commit("old", 0, api.CommitRejected)})
	dep, err := b.Deployed(ctx)
	must(t, err)
	if dep != "new" {
		t.Errorf("Deployed after reopen = %q, want %q", dep, "new")
	}
	st, err := b.ListNodeStatus(ctx)
	must(t, err)
	sameJSON(t, st, map[string]api.NodeStatus{"n1": status("n1")})
	des, err := b.ListDesired(ctx)
	must(t, err)
	if want := (store.Desired{Body: body, Digest: api.Digest(body)}); !reflect.DeepEqual(des["n1"], want) || len(des) != 1 {
		t.Errorf("ListDesired after reopen = %+v, want n1: %+v", des, want)
	}
	p, err := b.Placement(ctx)
	must(t, err)
	if !reflect.DeepEqual(p, map[string]string{"default/web-1": "n1"}) {
		t.Errorf("Placement after reopen = %v", p)
	}
	a, err := b.Allocations(ctx)
	must(t, err)
	if !reflect.DeepEqual(a, allocations()) {
		t.Errorf("Allocations after reopen = %+v", a)
	}
}

// testConcurrent has writers and readers share one backend; run with -race.
func testConcurrent(t *testing.T, open Opener) {
	ctx := context.Background()
	b := openClosed(t, open)
	const workers, each = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*4)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				name := fmt.Sprintf("n%d-%d", w, i)
				sha := fmt.Sprintf("c%d-%d", w, i)
				errs <- b.PutNode(ctx, node(name))
				errs <- b.PutCommit(ctx, commit(sha, time.Duration(w*each+i)*time.Millisecond, api.CommitAccepted))
				errs <- b.PutNodeStatus(ctx, status(name))
				_, err := b.ListCommits(ctx, 5)
				errs <- err
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	nodes, err := b.ListNodes(ctx)
	must(t, err)
	commits, err := b.ListCommits(ctx, 0)
	must(t, err)
	st, err := b.ListNodeStatus(ctx)
	must(t, err)
	if len(nodes) != workers*each || len(commits) != workers*each || len(st) != workers*each {
		t.Errorf("got %d nodes, %d commits, %d statuses; want %d of each", len(nodes), len(commits), len(st), workers*each)
	}
	for i := 1; i < len(commits); i++ {
		if commits[i].SeenAt.After(commits[i-1].SeenAt) {
			t.Fatalf("commits not newest first at %d: %v after %v", i, commits[i].SeenAt, commits[i-1].SeenAt)
		}
	}
}
