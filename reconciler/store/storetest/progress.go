package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/store"
)

// testCommitTimings stores a commit with every timestamp and reads it
// back, after a reopen too; a force-pushed-away commit is still listed.
func testCommitTimings(t *testing.T, open Opener) {
	ctx := context.Background()
	b := open(t)
	c := commit("abc", 0, api.CommitAccepted)
	c.WebhookAt = base.Add(time.Millisecond)
	c.FetchedAt = base.Add(40 * time.Millisecond)
	c.PlannedAt = base.Add(45 * time.Millisecond)
	c.PublishedAt = base.Add(46 * time.Millisecond)
	c.RunningAt = base.Add(1200 * time.Millisecond)
	rej := commit("bad", time.Second, api.CommitRejected)
	rej.FetchedAt, rej.RejectedAt = base.Add(time.Second), base.Add(time.Second+time.Millisecond)
	must(t, b.PutCommit(ctx, c))
	must(t, b.PutCommit(ctx, rej))
	must(t, b.Close())

	b = openClosed(t, open)
	got, err := b.ListCommits(ctx, 0)
	must(t, err)
	sameJSON(t, got, []store.CommitRecord{rej, c})
	if p := got[1].PushedAt(); !p.Equal(c.WebhookAt) {
		t.Errorf("PushedAt with a webhook = %v, want the webhook's time %v", p, c.WebhookAt)
	}
	if p := got[0].PushedAt(); !p.Equal(rej.FetchedAt) {
		t.Errorf("PushedAt without a webhook = %v, want the fetch's time %v", p, rej.FetchedAt)
	}
}

func progress(sha, node string, running time.Duration) store.NodeProgress {
	p := store.NodeProgress{Commit: sha, Node: node, PublishedAt: base, PulledAt: base.Add(100 * time.Millisecond)}
	if running > 0 {
		p.RunningAt = base.Add(running)
	}
	return p
}

func testNodeProgress(t *testing.T, open Opener) {
	ctx := context.Background()
	b := open(t)
	empty, err := b.ListNodeProgress(ctx, "abc")
	must(t, err)
	if empty == nil || len(empty) != 0 {
		t.Fatalf("new store lists progress %#v, want an empty slice", empty)
	}
	// "ab" is a prefix of "abc": its entries must not leak into abc's list.
	for _, p := range []store.NodeProgress{
		progress("abc", "n2", 0), progress("abc", "n1", time.Second),
		progress("ab", "n1", 0), progress("abcd", "n0", 0),
	} {
		must(t, b.PutNodeProgress(ctx, p))
	}
	must(t, b.PutNodeProgress(ctx, progress("abc", "n2", 2*time.Second))) // replaces
	must(t, b.Close())

	b = openClosed(t, open)
	got, err := b.ListNodeProgress(ctx, "abc")
	must(t, err)
	sameJSON(t, got, []store.NodeProgress{progress("abc", "n1", time.Second), progress("abc", "n2", 2*time.Second)})
	got, err = b.ListNodeProgress(ctx, "ab")
	must(t, err)
	sameJSON(t, got, []store.NodeProgress{progress("ab", "n1", 0)})

	for _, p := range []store.NodeProgress{{Node: "n1"}, {Commit: "abc"}} {
		if err := b.PutNodeProgress(ctx, p); !errdefs.IsInvalidArgument(err) {
			t.Errorf("PutNodeProgress(%+v): err = %v, want an invalid argument", p, err)
		}
	}
}
