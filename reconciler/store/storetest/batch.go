package storetest

import (
	"context"
	"testing"

	"github.com/moor-dev/moor/reconciler/store"
)

// testBatchStates stores Job and CronJob states as whole maps: a key left
// out of the next put is gone, both survive a reopen, and an empty store
// answers empty maps.
func testBatchStates(t *testing.T, open Opener) {
	ctx := context.Background()
	b := open(t)
	got, err := b.GetBatchStates(ctx)
	must(t, err)
	if got.Jobs == nil || got.CronJobs == nil || len(got.Jobs)+len(got.CronJobs) != 0 {
		t.Fatalf("empty store: got %+v, want two empty maps", got)
	}
	first := store.BatchStates{
		Jobs:     map[string][]byte{"default/a": []byte(`{"job":1}`), "default/b": []byte(`{"job":2}`)},
		CronJobs: map[string][]byte{"ops/nightly": []byte(`{"uid":"x"}`)},
	}
	must(t, b.PutBatchStates(ctx, first))
	second := store.BatchStates{Jobs: map[string][]byte{"default/b": []byte(`{"job":3}`)}}
	must(t, b.PutBatchStates(ctx, second))
	must(t, b.Close())

	b = openClosed(t, open)
	got, err = b.GetBatchStates(ctx)
	must(t, err)
	want := store.BatchStates{Jobs: map[string][]byte{"default/b": []byte(`{"job":3}`)}, CronJobs: map[string][]byte{}}
	sameJSON(t, got, want)
}
