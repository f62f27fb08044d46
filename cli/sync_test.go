package cli

import (
	"context"
	"errors"
	"testing"

	"github.com/spf13/cobra"

	"github.com/moor-dev/moor/api"
)

type fakeSyncer struct {
	resp *api.SyncResponse
	err  error
}

func (f fakeSyncer) Sync(context.Context) (*api.SyncResponse, error) { return f.resp, f.err }

func fakeSync(f fakeSyncer) func(Streams) *cobra.Command {
	return func(s Streams) *cobra.Command {
		return newSyncCommand(s, func(Options) (syncer, error) { return f, nil })
	}
}

func TestSyncGolden(t *testing.T) {
	rejected := &api.SyncResponse{Commit: shaHead, State: api.CommitRejected,
		Errors: []string{"apps/web.yaml: Deployment default/web: spec.replicas: must be at most 10", "apps/db.yaml: unknown field \"spec.replica\""}}
	cases := []struct {
		name     string
		f        fakeSyncer
		args     []string
		rejected bool
	}{
		{"changed", fakeSyncer{resp: &api.SyncResponse{Commit: shaDeployed, State: api.CommitAccepted, Changed: true}}, nil, false},
		{"unchanged", fakeSyncer{resp: &api.SyncResponse{Commit: shaDeployed, State: api.CommitAccepted}}, nil, false},
		{"rejected", fakeSyncer{resp: rejected}, nil, true},
		{"rejected-json", fakeSyncer{resp: rejected}, []string{"-o", "json"}, true},
		{"server-error", fakeSyncer{err: &APIError{StatusCode: 503, Message: "git fetch failed: repository not found"}}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runRoot(t, fakeSync(tc.f), append([]string{"sync"}, tc.args...)...)
			if errors.Is(err, ErrCommitRejected) != tc.rejected {
				t.Errorf("err = %v, want rejected %v", err, tc.rejected)
			}
			checkGolden(t, "sync-"+tc.name, []byte(got))
		})
	}
}
