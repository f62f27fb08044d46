package storetest

import (
	"context"
	"testing"

	"github.com/containerd/errdefs"
)

// testDeploymentStates stores Deployment rollout states as a whole map: a
// key left out of the next put is gone, the states survive a reopen, an
// empty store answers an empty map and an empty key is invalid.
func testDeploymentStates(t *testing.T, open Opener) {
	ctx := context.Background()
	b := open(t)
	got, err := b.GetDeploymentStates(ctx)
	must(t, err)
	if got == nil || len(got) != 0 {
		t.Fatalf("empty store: got %v, want an empty map", got)
	}
	must(t, b.PutDeploymentStates(ctx, map[string][]byte{
		"default/web": []byte(`{"revisions":[{"hash":"a"}]}`),
		"shop/api":    []byte(`{"revisions":[{"hash":"b"}]}`),
	}))
	must(t, b.PutDeploymentStates(ctx, map[string][]byte{"shop/api": []byte(`{"revisions":[{"hash":"c"}]}`)}))
	if err := b.PutDeploymentStates(ctx, map[string][]byte{"": []byte(`{}`)}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("empty key: %v, want invalid argument", err)
	}
	must(t, b.Close())

	b = openClosed(t, open)
	got, err = b.GetDeploymentStates(ctx)
	must(t, err)
	sameJSON(t, got, map[string][]byte{"shop/api": []byte(`{"revisions":[{"hash":"c"}]}`)})
	must(t, b.PutDeploymentStates(ctx, nil))
	got, err = b.GetDeploymentStates(ctx)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("after putting nil: %v, want none", got)
	}
}
