package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/moor-dev/moor/api"
)

// ErrRolloutFailed is returned (wrapped) by `moor rollout status` when the
// Deployment exceeded its progress deadline, so the process exits non-zero.
var ErrRolloutFailed = errors.New("rollout failed")

// deploymentLister is what `moor rollout` needs of the server.
type deploymentLister interface {
	Deployments(ctx context.Context) ([]api.DeploymentView, error)
}

var _ deploymentLister = (*Client)(nil)

// rolloutPoll is how often `moor rollout status` asks the server.
const rolloutPoll = time.Second

// NewRolloutCommand returns `moor rollout` with its status and history
// verbs. Rollouts start from Git: there is no `rollout restart` or `undo`,
// a commit (or a revert) is the way to change a Deployment.
func NewRolloutCommand(s Streams) *cobra.Command {
	return newRolloutCommand(s, connectAs[deploymentLister], rolloutPoll)
}

func newRolloutCommand(s Streams, connect func(Options) (deploymentLister, string, error), poll time.Duration) *cobra.Command {
	root := &cobra.Command{
		Use:   "rollout",
		Short: "Follow the rollout of a Deployment",
		Long: "Show how a Deployment's rollout stands. A rollout starts when a commit changes the pod template " +
			"(or a Secret its pods read through env gets a new version in Vault); to undo one, revert the commit.",
	}
	var watch bool
	var timeout time.Duration
	status := &cobra.Command{
		Use:          "status deployment/NAME",
		Short:        "Wait until a Deployment's rollout completes, printing its progress",
		Example:      "  moor rollout status deployment/web\n  moor rollout status web -n shop --timeout 5m",
		Args:         cobra.ExactArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, o, c, ns, err := rolloutTarget(cmd, args[0], connect)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			err = rolloutStatus(ctx, c, ns, name, watch, poll, timeoutOr(o.Timeout, defaultGetTimeout), s.Out)
			return reportError(cmd, err)
		},
	}
	status.Flags().BoolVarP(&watch, "watch", "w", true, "wait until the rollout completes; false prints the state once")
	status.Flags().DurationVar(&timeout, "timeout", 0, "give up waiting after this long (0: wait until the rollout completes or fails)")

	history := &cobra.Command{
		Use:          "history deployment/NAME",
		Short:        "List the revisions of a Deployment that still have pods",
		Args:         cobra.ExactArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, o, c, ns, err := rolloutTarget(cmd, args[0], connect)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeoutOr(o.Timeout, defaultGetTimeout))
			defer cancel()
			v, err := findDeployment(ctx, c, ns, name)
			if err != nil {
				return reportError(cmd, err)
			}
			return printRevisions(s.Out, v)
		},
	}
	root.AddCommand(status, history)
	return root
}

// rolloutTarget parses the Deployment argument and connects to the server.
func rolloutTarget(cmd *cobra.Command, arg string, connect func(Options) (deploymentLister, string, error)) (string, Options, deploymentLister, string, error) {
	name, err := deploymentArg(arg)
	if err != nil {
		return "", Options{}, nil, "", err
	}
	o, err := optionsFrom(cmd)
	if err != nil {
		return "", Options{}, nil, "", err
	}
	c, ns, err := connect(o)
	return name, o, c, ns, err
}

// deploymentArg accepts NAME, deployment/NAME, deployments/NAME and
// deploy/NAME (with an optional .apps group), as kubectl does.
func deploymentArg(arg string) (string, error) {
	kind, name, ok := strings.Cut(arg, "/")
	if !ok {
		return arg, nil
	}
	switch strings.TrimSuffix(strings.ToLower(kind), ".apps") {
	case "deployment", "deployments", "deploy":
	default:
		return "", fmt.Errorf("rollout works on Deployments only, not %q: use deployment/NAME", kind)
	}
	if name == "" {
		return "", fmt.Errorf("%q names no Deployment: use deployment/NAME", arg)
	}
	return name, nil
}

func findDeployment(ctx context.Context, c deploymentLister, ns, name string) (*api.DeploymentView, error) {
	views, err := c.Deployments(ctx)
	if err != nil {
		return nil, err
	}
	for i := range views {
		d := &views[i].Deployment
		if d.Namespace == ns && d.Name == name {
			return &views[i], nil
		}
	}
	return nil, &NotFoundError{Resource: "deployments.apps", Name: name}
}

// rolloutStatus prints the rollout's message each time it changes until
// the rollout completes (nil), fails (ErrRolloutFailed) or ctx ends. Each
// request is bounded by reqTimeout; a failed request is retried until ctx
// ends, so a server restart does not end the wait.
func rolloutStatus(ctx context.Context, c deploymentLister, ns, name string, watch bool, poll, reqTimeout time.Duration, out io.Writer) error {
	last := ""
	var lastErr error
	for {
		rctx, cancel := context.WithTimeout(ctx, reqTimeout)
		v, err := findDeployment(rctx, c, ns, name)
		cancel()
		var nf *NotFoundError
		switch {
		case errors.As(err, &nf):
			return err
		case err != nil:
			if !watch {
				return err
			}
			lastErr = err
		default:
			lastErr = nil
			r := v.Rollout
			if r.Message != last {
				fmt.Fprintln(out, r.Message)
				last = r.Message
			}
			switch {
			case r.State == api.RolloutComplete:
				return nil
			case r.State == api.RolloutFailed:
				return fmt.Errorf("deployment %q: %w: %s", name, ErrRolloutFailed, r.Message)
			case !watch:
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("timed out waiting for the rollout of deployment %q (last error: %w)", name, lastErr)
			}
			return fmt.Errorf("timed out waiting for the rollout of deployment %q: %w", name, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// printRevisions prints a Deployment's live revisions, oldest first, like
// `kubectl get replicasets` for one Deployment.
func printRevisions(w io.Writer, v *api.DeploymentView) error {
	tw := tabwriter.NewWriter(w, tabMinWidth, tabWidth, tabPadding, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tCURRENT\tPODS\tREADY\tAVAILABLE\tIMAGES")
	for _, r := range v.Rollout.Revisions {
		cur := ""
		if r.Current {
			cur = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", r.Hash, cur, r.Replicas, r.Ready, r.Available, strings.Join(r.Images, ","))
	}
	return tw.Flush()
}
