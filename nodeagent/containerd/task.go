package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/cio"
	ctrderrdefs "github.com/containerd/containerd/errdefs"
	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/nodeagent"
)

// killTimeout bounds the wait for a process to die after SIGKILL.
const killTimeout = 30 * time.Second

// Start deletes the container's previous (exited) task, if any, and starts a
// new process that appends stdout and stderr to the spec's LogPath.
func (r *Runtime) Start(ctx context.Context, id string) error {
	ctx = r.ns(ctx)
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	if err := r.deleteOldTask(ctx, ctr); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return fmt.Errorf("start container %s: read labels: %w", id, err)
	}
	creator := cio.NullIO
	if logPath := labels[labelLogPath]; logPath != "" {
		if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
			return fmt.Errorf("start container %s: create log directory: %w", id, err)
		}
		creator = cio.LogFile(logPath)
	}
	task, err := ctr.NewTask(ctx, creator)
	if err != nil {
		return fmt.Errorf("start container %s: create task: %w", id, err)
	}
	if err := task.Start(ctx); err != nil {
		if _, derr := task.Delete(ctx, containerd.WithProcessKill); derr != nil {
			r.log.Warn("delete failed task", "id", id, "err", derr)
		}
		return fmt.Errorf("start container %s: %w", id, err)
	}
	_, err = ctr.SetLabels(ctx, map[string]string{
		labelStartedAt:  time.Now().UTC().Format(time.RFC3339Nano),
		labelFinishedAt: "",
		labelExitCode:   "",
	})
	if err != nil {
		return fmt.Errorf("start container %s: record start time: %w", id, err)
	}
	r.log.Debug("started container", "id", id, "pid", task.Pid())
	return nil
}

// deleteOldTask removes a stopped or never-started task; a running one is
// an error.
func (r *Runtime) deleteOldTask(ctx context.Context, ctr containerd.Container) error {
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load task: %w", err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return fmt.Errorf("task status: %w", err)
	}
	switch st.Status {
	case containerd.Stopped:
		_, err = task.Delete(ctx)
	case containerd.Created:
		_, err = task.Delete(ctx, containerd.WithProcessKill)
	default:
		return fmt.Errorf("task is %s; stop it first: %w", st.Status, errdefs.ErrFailedPrecondition)
	}
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete previous task: %w", err)
	}
	return nil
}

// Stop sends the container's stop signal, waits up to grace, then SIGKILLs
// and deletes the task, recording its exit. No task is not an error.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	ctx = r.ns(ctx)
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop container %s: load task: %w", id, err)
	}
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return fmt.Errorf("stop container %s: read labels: %w", id, err)
	}
	sig := syscall.SIGTERM
	if n, err := strconv.Atoi(labels[labelStopSignal]); err == nil && n > 0 {
		sig = syscall.Signal(n)
	}
	st, err := task.Status(ctx)
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop container %s: task status: %w", id, err)
	}
	if err == nil && st.Status != containerd.Stopped {
		if err := r.signalAndWait(ctx, task, sig, grace); err != nil {
			return fmt.Errorf("stop container %s: %w", id, err)
		}
	}
	return r.deleteTask(ctx, ctr, task)
}

// signalAndWait sends sig and waits up to grace for the task to exit, then
// kills it and waits for that.
func (r *Runtime) signalAndWait(ctx context.Context, task containerd.Task, sig syscall.Signal, grace time.Duration) error {
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	exitCh, err := task.Wait(waitCtx)
	if err != nil {
		return fmt.Errorf("wait for task: %w", err)
	}
	if err := task.Kill(ctx, sig); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("send signal %d: %w", sig, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-exitCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
	}
	r.log.Info("container ignored its stop signal; killing it", "id", task.ID(), "signal", int(sig), "grace", grace)
	if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("send SIGKILL: %w", err)
	}
	select {
	case <-exitCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(killTimeout):
		return fmt.Errorf("process did not exit %v after SIGKILL: %w", killTimeout, errdefs.ErrUnavailable)
	}
}

// deleteTask deletes an exited task and records its exit in labels, since
// List can no longer ask the task.
func (r *Runtime) deleteTask(ctx context.Context, ctr containerd.Container, task containerd.Task) error {
	es, err := task.Delete(ctx)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete task of %s: %w", ctr.ID(), err)
	}
	_, err = ctr.SetLabels(ctx, map[string]string{
		labelExitCode:   strconv.FormatUint(uint64(es.ExitCode()), 10),
		labelFinishedAt: es.ExitTime().UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		return fmt.Errorf("record exit of %s: %w", ctr.ID(), err)
	}
	return nil
}

// Remove kills the container's task if it still runs, then deletes the task,
// the container and its snapshot. A missing container is not an error.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	ctx = r.ns(ctx)
	ctr, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	task, err := ctr.Task(ctx, nil)
	switch {
	case err == nil:
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove container %s: delete task: %w", id, err)
		}
	case !errdefs.IsNotFound(err):
		return fmt.Errorf("remove container %s: load task: %w", id, err)
	}
	if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	r.log.Debug("removed container", "id", id)
	return nil
}

// List returns every container in the namespace with its task state, using
// one call for the containers and one for all tasks.
func (r *Runtime) List(ctx context.Context) ([]nodeagent.ContainerInfo, error) {
	ctx = r.ns(ctx)
	ctrs, err := r.client.ContainerService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	resp, err := r.client.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", ctrderrdefs.FromGRPC(err))
	}
	tasks := make(map[string]*tasktypes.Process, len(resp.Tasks))
	for _, t := range resp.Tasks {
		tasks[t.ID] = t
	}
	out := make([]nodeagent.ContainerInfo, 0, len(ctrs))
	for _, c := range ctrs {
		out = append(out, containerInfo(c.ID, c.Labels, tasks[c.ID]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// containerInfo combines a container's labels and its task (nil if none).
func containerInfo(id string, labels map[string]string, task *tasktypes.Process) nodeagent.ContainerInfo {
	info := nodeagent.ContainerInfo{
		ID:        id,
		Image:     labels[labelImage],
		Labels:    userLabels(labels),
		State:     nodeagent.StateCreated,
		StartedAt: parseTime(labels[labelStartedAt]),
	}
	if task == nil {
		if !info.StartedAt.IsZero() {
			info.State = nodeagent.StateExited
			code, _ := strconv.ParseUint(labels[labelExitCode], 10, 32)
			info.ExitCode = uint32(code)
			info.FinishedAt = parseTime(labels[labelFinishedAt])
		}
		return info
	}
	info.Pid = task.Pid
	switch task.Status {
	case tasktypes.Status_CREATED:
		info.State = nodeagent.StateCreated
	case tasktypes.Status_RUNNING, tasktypes.Status_PAUSED, tasktypes.Status_PAUSING:
		info.State = nodeagent.StateRunning
	case tasktypes.Status_STOPPED:
		info.State = nodeagent.StateExited
		info.ExitCode = task.ExitStatus
		if task.ExitedAt != nil {
			info.FinishedAt = task.ExitedAt.AsTime()
		}
	default:
		info.State = nodeagent.StateUnknown
	}
	return info
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// Logs copies the container's log file to w; nothing printed yet is no error.
func (r *Runtime) Logs(ctx context.Context, id string, w io.Writer) error {
	ctx = r.ns(ctx)
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return fmt.Errorf("logs of container %s: %w", id, err)
	}
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return fmt.Errorf("logs of container %s: read labels: %w", id, err)
	}
	logPath := labels[labelLogPath]
	if logPath == "" {
		return nil
	}
	f, err := os.Open(logPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("logs of container %s: %w", id, err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("logs of container %s: %w", id, err)
	}
	return nil
}
