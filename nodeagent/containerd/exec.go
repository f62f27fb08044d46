package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/nodeagent"
)

// execIOTimeout bounds the wait for an exec's output after the process
// exited: a background child that inherited its stdout must not hold Exec.
const execIOTimeout = 2 * time.Second

// Exec runs req.Cmd as an extra process of the container's task, with the
// process settings of the container's spec (user, env, cwd, capabilities)
// and a unique exec ID, copies req.Stdin to it and its output to req's
// writers through FIFOs, and deletes the process before returning. When
// req.Stdin ends, the process's stdin is closed (CloseIO). When ctx ends
// first the process is killed.
func (r *Runtime) Exec(ctx context.Context, id string, req nodeagent.ExecRequest) (int, error) {
	if len(req.Cmd) == 0 {
		return -1, fmt.Errorf("exec in container %s: empty command: %w", id, errdefs.ErrInvalidArgument)
	}
	nctx := r.ns(ctx)
	ctr, err := r.client.LoadContainer(nctx, id)
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, err)
	}
	task, err := ctr.Task(nctx, nil)
	if errdefs.IsNotFound(err) {
		return -1, fmt.Errorf("exec in container %s: it is not running: %w", id, errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: load task: %w", id, err)
	}
	st, err := task.Status(nctx)
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: task status: %w", id, err)
	}
	if st.Status != containerd.Running {
		return -1, fmt.Errorf("exec in container %s: it is %s, not running: %w", id, st.Status, errdefs.ErrFailedPrecondition)
	}
	spec, err := ctr.Spec(nctx)
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: read spec: %w", id, err)
	}
	if spec.Process == nil {
		return -1, fmt.Errorf("exec in container %s: its spec has no process: %w", id, errdefs.ErrFailedPrecondition)
	}
	pspec := *spec.Process
	pspec.Args = req.Cmd
	pspec.Terminal = false
	pspec.ConsoleSize = nil

	execID, err := newExecID()
	if err != nil {
		return -1, fmt.Errorf("exec in container %s: %w", id, err)
	}
	var stdin io.Reader
	stdinEnded := make(chan struct{})
	if req.Stdin != nil {
		stdin = &endNotifier{r: req.Stdin, ended: stdinEnded}
	}
	stdout, stderr := req.Stdout, req.Stderr
	if stdin != nil || stdout != nil || stderr != nil {
		// The shim wants both output FIFOs unless it is given no stream
		// at all (it opens "" as a file and fails).
		if stdout == nil {
			stdout = io.Discard
		}
		if stderr == nil {
			stderr = io.Discard
		}
	}
	proc, err := task.Exec(nctx, execID, &pspec, cio.NewCreator(cio.WithStreams(stdin, stdout, stderr)))
	if err != nil {
		return -1, fmt.Errorf("exec %q in container %s: %w", req.Cmd[0], id, err)
	}
	// Cleanup runs even when ctx has ended.
	cleanup, cancelCleanup := context.WithTimeout(r.ns(context.WithoutCancel(ctx)), killTimeout)
	defer cancelCleanup()
	killed := false
	defer func() {
		var opts []containerd.ProcessDeleteOpts
		if killed {
			opts = append(opts, containerd.WithProcessKill)
		}
		if _, err := proc.Delete(cleanup, opts...); err != nil {
			// Delete stops the output copy only when it succeeds; the
			// writers must not be used after Exec returns.
			if pio := proc.IO(); pio != nil {
				pio.Cancel()
				pio.Wait()
				pio.Close()
			}
			if !errdefs.IsNotFound(err) {
				r.log.Warn("delete exec process", "id", id, "exec_id", execID, "err", err)
			}
		}
	}()

	waitCtx, cancelWait := context.WithCancel(cleanup)
	defer cancelWait()
	exitCh, err := proc.Wait(waitCtx)
	if err != nil {
		return -1, fmt.Errorf("exec %q in container %s: wait: %w", req.Cmd[0], id, err)
	}
	if err := proc.Start(nctx); err != nil {
		return -1, fmt.Errorf("exec %q in container %s: %w", req.Cmd[0], id, err)
	}
	if stdin != nil {
		// The shim holds the stdin FIFO open until CloseIO, so the process
		// sees the end of its stdin only after both that and the copy
		// into the FIFO have ended: no input is lost.
		returned, closer := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(closer)
			select {
			case <-stdinEnded:
			case <-returned:
				return
			}
			if err := proc.CloseIO(cleanup, containerd.WithStdinCloser); err != nil && !errdefs.IsNotFound(err) {
				r.log.Debug("close exec stdin", "id", id, "exec_id", execID, "err", err)
			}
		}()
		defer func() {
			close(returned)
			<-closer
		}()
	}
	select {
	case es := <-exitCh:
		code, _, err := es.Result()
		if err != nil {
			return -1, fmt.Errorf("exec %q in container %s: wait: %w", req.Cmd[0], id, err)
		}
		waitIO(proc.IO(), execIOTimeout)
		return int(code), nil
	case <-ctx.Done():
	}
	killed = true
	if err := proc.Kill(cleanup, syscall.SIGKILL); err != nil && !errdefs.IsNotFound(err) {
		r.log.Warn("kill exec process", "id", id, "exec_id", execID, "err", err)
	}
	select {
	case <-exitCh:
	case <-cleanup.Done():
	}
	return -1, fmt.Errorf("exec %q in container %s: %w", req.Cmd[0], id, ctx.Err())
}

// endNotifier closes ended when a Read of r fails (io.EOF or an error).
type endNotifier struct {
	r     io.Reader
	ended chan struct{}
	once  sync.Once
}

// Read implements io.Reader.
func (e *endNotifier) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.ended) })
	}
	return n, err
}

// waitIO waits up to d for the process's output to be copied.
func waitIO(io cio.IO, d time.Duration) {
	done := make(chan struct{})
	go func() {
		io.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// newExecID returns a random exec ID, unique among the task's processes.
func newExecID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("exec id: %w", err)
	}
	return "exec-" + hex.EncodeToString(b[:]), nil
}
