package nodeagent

import (
	"context"
	"fmt"
	"slices"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/nodeagent/remote"
)

// This file serves `moor exec` on the node: it maps a request to one of
// the agent's running containers, as `moor logs` does, and runs the
// command there with Runtime.Exec. The session loop in nodeagent/remote
// carries the streams.

var _ remote.ExecSource = (*Agent)(nil)

// PrepareExec finds the running container an exec request names
// (remote.ExecSource). Errors: errdefs.ErrNotFound for a pod this node
// does not run, errdefs.ErrInvalidArgument for a container the pod lacks
// or an empty command, errdefs.ErrFailedPrecondition for a container that
// is not running.
func (a *Agent) PrepareExec(ctx context.Context, req api.ExecRequest) (remote.ExecFunc, error) {
	if len(req.Command) == 0 || req.Command[0] == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("exec: the command is empty; name a program to run")
	}
	t, actual, err := a.resolveContainer(ctx, "exec", api.LogRequest{Namespace: req.Namespace, Pod: req.Pod, Container: req.Container})
	if err != nil {
		return nil, err
	}
	if err := execTarget(t, actual, req.Pod); err != nil {
		return nil, err
	}
	cmd := slices.Clone(req.Command)
	return func(ctx context.Context, stdio remote.Stdio) (int, error) {
		code, err := a.rt.Exec(ctx, t.ID, ExecRequest{Cmd: cmd, Stdin: stdio.Stdin, Stdout: stdio.Stdout, Stderr: stdio.Stderr})
		if ctx.Err() == nil && (errdefs.IsNotFound(err) || errdefs.IsFailedPrecondition(err)) {
			// It stopped since PrepareExec looked.
			return code, errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %q in pod %q is not running any more: %v", t.Container, req.Pod, err))
		}
		return code, err
	}, nil
}

// execTarget checks that the container t resolved to runs in the pod
// incarnation it belongs to. It is pure.
func execTarget(t logTarget, actual []ContainerInfo, pod string) error {
	i := slices.IndexFunc(actual, func(c ContainerInfo) bool { return c.ID == t.ID && c.Labels[LabelPodUID] == t.PodUID })
	switch {
	case i >= 0 && actual[i].State == StateRunning:
		return nil
	case t.Waiting != "":
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %q in pod %q is not running: it is waiting to start: %s", t.Container, pod, t.Waiting))
	case i >= 0 && actual[i].State == StateExited:
		return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %q in pod %q is not running: it exited with code %d", t.Container, pod, actual[i].ExitCode))
	}
	return errdefs.ErrFailedPrecondition.WithMessage(fmt.Sprintf("container %q in pod %q is not running", t.Container, pod))
}
