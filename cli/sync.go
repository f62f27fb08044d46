package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/moor-dev/moor/api"
)

// defaultSyncTimeout bounds `moor sync`, which waits for a fetch and a
// plan, when --request-timeout is unset.
const defaultSyncTimeout = 2 * time.Minute

// syncer is what `moor sync` needs of the server.
type syncer interface {
	Sync(ctx context.Context) (*api.SyncResponse, error)
}

var _ syncer = (*Client)(nil)

// ErrCommitRejected is returned (wrapped) by `moor sync` when the head
// commit was rejected, so the process exits non-zero.
var ErrCommitRejected = errors.New("commit rejected")

// NewSyncCommand returns `moor sync`: it asks the server to fetch the
// repository now, prints the commit, its state and any errors, and fails
// when the commit is rejected.
func NewSyncCommand(s Streams) *cobra.Command {
	return newSyncCommand(s, func(o Options) (syncer, error) {
		c, _, err := connectClient(o)
		if err != nil {
			return nil, err
		}
		return c, nil
	})
}

func newSyncCommand(s Streams, connect func(Options) (syncer, error)) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:          "sync",
		Short:        "Fetch the Git repository now and apply its head commit",
		Long:         "Ask the server to fetch its repository and plan the head commit now instead of waiting for the next poll. Exits non-zero when the commit is rejected; the last good commit then stays deployed.",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetErrPrefix("") // inherit, unless reportErrors sets one
			if output != "" && output != outputJSON && output != outputYAML {
				return fmt.Errorf("unknown output format %q: want json or yaml", output)
			}
			o, err := optionsFrom(cmd)
			if err != nil {
				return err
			}
			c, err := connect(o)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeoutOr(o.Timeout, defaultSyncTimeout))
			defer cancel()
			resp, err := c.Sync(ctx)
			if err != nil {
				return reportError(cmd, fmt.Errorf("sync: %w", err))
			}
			if output != "" {
				err = printObjects(s.Out, []any{resp}, true, output)
			} else {
				err = printSync(s.Out, resp)
			}
			if err != nil {
				return err
			}
			return syncError(resp)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json or yaml (default: text)")
	return cmd
}

// printSync writes a human summary of a sync.
func printSync(w io.Writer, r *api.SyncResponse) error {
	var line string
	switch {
	case r.State == api.CommitRejected:
		line = fmt.Sprintf("commit %s rejected; the last good commit stays deployed", shortSHA(r.Commit))
	case r.Changed:
		line = fmt.Sprintf("commit %s %s; desired state updated", shortSHA(r.Commit), stateWord(r.State))
	default:
		line = fmt.Sprintf("commit %s %s; already up to date", shortSHA(r.Commit), stateWord(r.State))
	}
	if _, err := fmt.Fprintln(w, line); err != nil {
		return err
	}
	for _, e := range r.Errors {
		if _, err := fmt.Fprintln(w, "  error:", e); err != nil {
			return err
		}
	}
	return nil
}

func stateWord(s string) string {
	if s == api.CommitAccepted {
		return "accepted"
	}
	return orNone(s)
}

// syncError is non-nil when the synced commit was rejected.
func syncError(r *api.SyncResponse) error {
	if r.State != api.CommitRejected {
		return nil
	}
	return fmt.Errorf("%w: fix the %d error(s) in commit %s and push again", ErrCommitRejected, len(r.Errors), shortSHA(r.Commit))
}
