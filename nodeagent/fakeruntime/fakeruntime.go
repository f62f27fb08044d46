// Package fakeruntime is an in-memory, scriptable nodeagent.Runtime for fast
// unit tests of the node agent. It owns only its own in-memory state (and the
// log files named by ContainerSpec.LogPath, which it appends to when a test
// calls Print); it never touches containerd, cgroups or processes.
//
// Processes do nothing by themselves: tests make them print (Print), exit
// (Exit) or ignore the stop signal (SetStopBehaviour), and answer Exec
// through a handler (HandleExec, or HandleExecIO for one reading stdin). Failures are injected with FailPull and
// Fail. Every method is safe for concurrent use.
package fakeruntime

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/nodeagent"
)

var _ nodeagent.Runtime = (*Runtime)(nil)

// StopBehaviour says how a fake process reacts to its stop signal.
type StopBehaviour int

const (
	// StopExits: the process exits at once with 128+signal (the default).
	StopExits StopBehaviour = iota
	// StopIgnoresSignal: the process ignores the stop signal, so Stop waits
	// the full grace period (a real timer) and then kills it (exit code 137).
	StopIgnoresSignal
)

// Runtime is the fake. Create it with New.
type Runtime struct {
	// Now is the clock used for StartedAt and FinishedAt. Set it before use.
	Now func() time.Time

	mu        sync.Mutex
	images    map[string]bool
	pullErrs  map[string]error
	failNext  map[string]error // "op id" -> error for the next call
	ctrs      map[string]*container
	behaviour map[string]StopBehaviour
	execs     map[string]ExecIOHandler
	calls     []string
	nextPid   uint32
}

type container struct {
	spec nodeagent.ContainerSpec
	info nodeagent.ContainerInfo
	done chan struct{} // closed when the current process exits; nil if none
	log  strings.Builder
}

// New returns an empty fake runtime using the real clock.
func New() *Runtime {
	return &Runtime{
		Now:       time.Now,
		images:    map[string]bool{},
		pullErrs:  map[string]error{},
		failNext:  map[string]error{},
		ctrs:      map[string]*container{},
		behaviour: map[string]StopBehaviour{},
		execs:     map[string]ExecIOHandler{},
		nextPid:   1000,
	}
}

var validID = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// --- scripting helpers ---

// AddImage makes ref present as if it had been pulled.
func (r *Runtime) AddImage(ref string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.images[ref] = true
}

// FailPull makes every PullImage of ref fail with err; a nil err clears it.
func (r *Runtime) FailPull(ref string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		delete(r.pullErrs, ref)
		return
	}
	r.pullErrs[ref] = err
}

// Fail makes the next call of op ("create", "start", "stop", "remove",
// "logs" or "exec") for container id fail with err, before it has any
// effect.
func (r *Runtime) Fail(op, id string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failNext[op+" "+id] = err
}

// SetStopBehaviour sets how container id's processes react to Stop.
func (r *Runtime) SetStopBehaviour(id string, b StopBehaviour) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.behaviour[id] = b
}

// ExecHandler plays a process run by Exec in a running container: it
// writes the output and returns the exit code. It should return when ctx
// ends (Exec then fails with ctx's error, as a killed process would).
type ExecHandler func(ctx context.Context, cmd []string, stdout, stderr io.Writer) (exitCode int, err error)

// HandleExec makes h answer the Exec calls in container id (kept across
// Remove and Create, like SetStopBehaviour); nil restores the default, a
// process that exits 0 at once without output.
func (r *Runtime) HandleExec(id string, h ExecHandler) {
	if h == nil {
		r.HandleExecIO(id, nil)
		return
	}
	r.HandleExecIO(id, func(ctx context.Context, cmd []string, _ io.Reader, stdout, stderr io.Writer) (int, error) {
		return h(ctx, cmd, stdout, stderr)
	})
}

// ExecIOHandler is an ExecHandler that also reads the process's stdin:
// ExecRequest.Stdin, or an empty reader when that is nil.
type ExecIOHandler func(ctx context.Context, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (exitCode int, err error)

// HandleExecIO is HandleExec for a handler that reads stdin.
func (r *Runtime) HandleExecIO(id string, h ExecIOHandler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if h == nil {
		delete(r.execs, id)
		return
	}
	r.execs[id] = h
}

// Images returns the refs present, sorted.
func (r *Runtime) Images() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.images))
	for ref := range r.images {
		out = append(out, ref)
	}
	sort.Strings(out)
	return out
}

// Calls returns the log of runtime calls so far, e.g. "pull <ref>",
// "create <id>", "start <id>", "stop <id>", "kill <id>", "remove <id>",
// "exec <id> <cmd...>".
func (r *Runtime) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Exit makes container id's running process exit with code. It fails when
// the container is missing or not running.
func (r *Runtime) Exit(id string, code uint32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.ctrs[id]
	if !ok {
		return fmt.Errorf("fakeruntime: exit %s: %w", id, errdefs.ErrNotFound)
	}
	if c.info.State != nodeagent.StateRunning {
		return fmt.Errorf("fakeruntime: exit %s: container is %s, not running: %w",
			id, c.info.State, errdefs.ErrFailedPrecondition)
	}
	r.exitLocked(c, code)
	return nil
}

// Print appends s to container id's log as if its process had written it:
// to spec.LogPath when set, otherwise to an in-memory buffer.
func (r *Runtime) Print(id, s string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.ctrs[id]
	if !ok {
		return fmt.Errorf("fakeruntime: print %s: %w", id, errdefs.ErrNotFound)
	}
	if c.spec.LogPath == "" {
		c.log.WriteString(s)
		return nil
	}
	f, err := os.OpenFile(c.spec.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("fakeruntime: print %s: %w", id, err)
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// --- nodeagent.Runtime ---

// PullImage records the image as present unless FailPull scripted an error.
func (r *Runtime) PullImage(ctx context.Context, ref string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "pull "+ref)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pull image %q: %w", ref, err)
	}
	if err := r.pullErrs[ref]; err != nil {
		return fmt.Errorf("pull image %q: %w", ref, err)
	}
	r.images[ref] = true
	return nil
}

// Create stores a created container. The image must have been pulled.
func (r *Runtime) Create(ctx context.Context, spec nodeagent.ContainerSpec) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "create "+spec.ID)
	if err := r.takeFailure("create", spec.ID); err != nil {
		return err
	}
	if !validID.MatchString(spec.ID) {
		return fmt.Errorf("create container %q: id must match %s: %w", spec.ID, validID, errdefs.ErrInvalidArgument)
	}
	if _, ok := r.ctrs[spec.ID]; ok {
		return fmt.Errorf("create container %q: %w", spec.ID, errdefs.ErrAlreadyExists)
	}
	if !r.images[spec.Image] {
		return fmt.Errorf("create container %q: image %q not pulled: %w", spec.ID, spec.Image, errdefs.ErrNotFound)
	}
	spec.Labels = cloneLabels(spec.Labels)
	spec.Command = slices.Clone(spec.Command)
	spec.Args = slices.Clone(spec.Args)
	spec.Env = slices.Clone(spec.Env)
	spec.Mounts = slices.Clone(spec.Mounts)
	r.ctrs[spec.ID] = &container{
		spec: spec,
		info: nodeagent.ContainerInfo{
			ID:     spec.ID,
			Image:  spec.Image,
			Labels: spec.Labels,
			State:  nodeagent.StateCreated,
		},
	}
	return nil
}

// Spec returns the spec a container was created with (its network
// namespace, host name, mounts, env...), and whether it exists.
func (r *Runtime) Spec(id string) (nodeagent.ContainerSpec, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.ctrs[id]
	if !ok {
		return nodeagent.ContainerSpec{}, false
	}
	spec := c.spec
	spec.Labels = cloneLabels(spec.Labels)
	spec.Command = slices.Clone(spec.Command)
	spec.Args = slices.Clone(spec.Args)
	spec.Env = slices.Clone(spec.Env)
	spec.Mounts = slices.Clone(spec.Mounts)
	return spec, true
}

// Start starts a new process for a created or exited container.
func (r *Runtime) Start(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "start "+id)
	if err := r.takeFailure("start", id); err != nil {
		return err
	}
	c, ok := r.ctrs[id]
	if !ok {
		return fmt.Errorf("start container %q: %w", id, errdefs.ErrNotFound)
	}
	if c.info.State == nodeagent.StateRunning {
		return fmt.Errorf("start container %q: already running: %w", id, errdefs.ErrFailedPrecondition)
	}
	r.nextPid++
	c.info.State = nodeagent.StateRunning
	c.info.Pid = r.nextPid
	c.info.ExitCode = 0
	c.info.StartedAt = r.Now()
	c.info.FinishedAt = time.Time{}
	c.done = make(chan struct{})
	return nil
}

// Stop "signals" the process: it exits at once, or after grace when
// SetStopBehaviour(id, StopIgnoresSignal) was called.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	r.mu.Lock()
	r.calls = append(r.calls, "stop "+id)
	if err := r.takeFailure("stop", id); err != nil {
		r.mu.Unlock()
		return err
	}
	c, ok := r.ctrs[id]
	if !ok {
		r.mu.Unlock()
		return fmt.Errorf("stop container %q: %w", id, errdefs.ErrNotFound)
	}
	if c.info.State != nodeagent.StateRunning {
		r.mu.Unlock()
		return nil
	}
	sig := c.spec.StopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	if r.behaviour[id] != StopIgnoresSignal {
		r.exitLocked(c, 128+uint32(sig))
		r.mu.Unlock()
		return nil
	}
	done := c.done
	r.mu.Unlock()

	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-done:
		return nil // exited by other means (Exit) during the grace period
	case <-ctx.Done():
		return fmt.Errorf("stop container %q: %w", id, ctx.Err())
	case <-timer.C:
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "kill "+id)
	if c.done == done && c.info.State == nodeagent.StateRunning {
		r.exitLocked(c, 128+uint32(syscall.SIGKILL))
	}
	return nil
}

// Remove deletes the container, killing its process if it runs.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "remove "+id)
	if err := r.takeFailure("remove", id); err != nil {
		return err
	}
	c, ok := r.ctrs[id]
	if !ok {
		return nil
	}
	if c.info.State == nodeagent.StateRunning {
		r.exitLocked(c, 128+uint32(syscall.SIGKILL))
	}
	delete(r.ctrs, id)
	return nil
}

// List returns all containers sorted by ID.
func (r *Runtime) List(ctx context.Context) ([]nodeagent.ContainerInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]nodeagent.ContainerInfo, 0, len(r.ctrs))
	for _, c := range r.ctrs {
		info := c.info
		info.Labels = cloneLabels(info.Labels)
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Logs copies what Print wrote for the container.
func (r *Runtime) Logs(ctx context.Context, id string, w io.Writer) error {
	r.mu.Lock()
	if err := r.takeFailure("logs", id); err != nil {
		r.mu.Unlock()
		return err
	}
	c, ok := r.ctrs[id]
	if !ok {
		r.mu.Unlock()
		return fmt.Errorf("logs of container %q: %w", id, errdefs.ErrNotFound)
	}
	path, buffered := c.spec.LogPath, c.log.String()
	r.mu.Unlock()
	if path == "" {
		_, err := io.WriteString(w, buffered)
		return err
	}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil // nothing printed yet
	}
	if err != nil {
		return fmt.Errorf("logs of container %q: %w", id, err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("logs of container %q: %w", id, err)
	}
	return nil
}

// Exec runs the container's handler (see HandleExec and HandleExecIO)
// while the container runs. Nil writers discard; a nil Stdin reads as
// empty.
func (r *Runtime) Exec(ctx context.Context, id string, req nodeagent.ExecRequest) (int, error) {
	r.mu.Lock()
	r.calls = append(r.calls, strings.TrimSpace("exec "+id+" "+strings.Join(req.Cmd, " ")))
	if err := r.takeFailure("exec", id); err != nil {
		r.mu.Unlock()
		return -1, err
	}
	c, ok := r.ctrs[id]
	if !ok {
		r.mu.Unlock()
		return -1, fmt.Errorf("exec in container %q: %w", id, errdefs.ErrNotFound)
	}
	if c.info.State != nodeagent.StateRunning {
		r.mu.Unlock()
		return -1, fmt.Errorf("exec in container %q: it is %s, not running: %w", id, c.info.State, errdefs.ErrFailedPrecondition)
	}
	h := r.execs[id]
	r.mu.Unlock()
	if len(req.Cmd) == 0 {
		return -1, fmt.Errorf("exec in container %q: empty command: %w", id, errdefs.ErrInvalidArgument)
	}
	if h == nil {
		return 0, nil
	}
	stdin, stdout, stderr := req.Stdin, req.Stdout, req.Stderr
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	code, err := h(ctx, slices.Clone(req.Cmd), stdin, stdout, stderr)
	if cerr := ctx.Err(); cerr != nil {
		return -1, fmt.Errorf("exec %q in container %q: %w", req.Cmd[0], id, cerr)
	}
	if err != nil {
		return -1, fmt.Errorf("exec %q in container %q: %w", req.Cmd[0], id, err)
	}
	return code, nil
}

// --- helpers (r.mu held) ---

func (r *Runtime) exitLocked(c *container, code uint32) {
	c.info.State = nodeagent.StateExited
	c.info.ExitCode = code
	c.info.FinishedAt = r.Now()
	if c.done != nil {
		close(c.done)
		c.done = nil
	}
}

func (r *Runtime) takeFailure(op, id string) error {
	key := op + " " + id
	err, ok := r.failNext[key]
	if !ok {
		return nil
	}
	delete(r.failNext, key)
	return fmt.Errorf("%s container %q: %w", op, id, err)
}

func cloneLabels(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
