package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/nodeagent/internal/backoff"
	"github.com/moor-dev/moor/nodeagent/remote"
)

// This file serves `moor logs` on the node: it maps a request to a
// container's log file through the agent's desired pods and records and
// streams the file, with tail -n and tail -f semantics. Each container's
// stdout and stderr are appended to <DataDir>/logs/<container id>.log; on a
// restart the runner moves the ended run's log to
// <container id>.previous.log (rotateLog), which --previous reads.

// defaultContainerAnnotation names a pod's default container, as kubectl
// reads it.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

const (
	// logPollInterval is how often a followed log is checked for new data.
	logPollInterval = 200 * time.Millisecond
	// exitCheckInterval is how often a follow at the end of the file asks
	// the runtime whether the container still runs.
	exitCheckInterval = time.Second
)

var _ remote.LogSource = (*Agent)(nil)

// serveSessions runs the loop that serves the server's sessions (`moor
// logs`, `moor exec`) over c until ctx ends. The run loop starts it once connected.
func (a *Agent) serveSessions(ctx context.Context, c *client) {
	l, err := remote.New(remote.Config{Client: c.hc, Server: c.base, Node: a.cfg.Name, Logs: a, Exec: a,
		Log: a.cfg.Log.With("node", a.cfg.Name), PollWait: a.cfg.PollWait})
	if err != nil {
		a.log.Error("cannot serve logs", "err", err)
		return
	}
	l.Run(ctx)
}

// OpenLogs opens the log a request names (remote.LogSource). Errors:
// errdefs.ErrNotFound for a pod this node does not run,
// errdefs.ErrInvalidArgument for a container the pod lacks or that has
// not started yet and for --previous without a previous run.
func (a *Agent) OpenLogs(ctx context.Context, req api.LogRequest) (io.ReadCloser, error) {
	t, _, err := a.resolveContainer(ctx, "logs", req)
	if err != nil {
		return nil, err
	}
	if t.Waiting != "" {
		if _, err := os.Stat(t.Path); errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("container %q in pod %q is waiting to start: %s", t.Container, req.Pod, t.Waiting))
		}
	}
	exited := func(ctx context.Context) bool { return a.containerDone(ctx, t.ID, t.PodUID) }
	s, err := openLogStream(ctx, logStreamConfig{Path: t.Path, Follow: req.Follow && !req.Previous,
		TailLines: req.TailLines, Exited: exited})
	if err != nil {
		return nil, err
	}
	if req.Timestamps {
		return newLineStamper(s, a.now), nil
	}
	return s, nil
}

// resolveContainer maps the pod and container of req (which `moor logs`
// and `moor exec` name alike) to a container of this node, with
// resolveLogTarget, and returns the runtime's containers it looked at;
// what names the verb in errors.
func (a *Agent) resolveContainer(ctx context.Context, what string, req api.LogRequest) (logTarget, []ContainerInfo, error) {
	actual, err := a.rt.List(ctx)
	if err != nil {
		return logTarget{}, nil, fmt.Errorf("%s: list containers: %w", what, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st == nil {
		return logTarget{}, nil, errdefs.ErrUnavailable.WithMessage("the node agent is still starting; retry")
	}
	t, err := resolveLogTarget(logTargetInput{Node: a.cfg.Name, Pods: a.desiredPodsLocked(), Records: a.st.Containers,
		Actual: actual, LogDir: a.runner.logDir, Req: req})
	return t, actual, err
}

// containerDone reports whether container id of pod incarnation uid has
// stopped writing: it exited, or is gone or replaced. A failed listing
// counts as still running; the next check asks again.
func (a *Agent) containerDone(ctx context.Context, id, uid string) bool {
	actual, err := a.rt.List(ctx)
	if err != nil {
		return false
	}
	for _, c := range actual {
		if c.ID == id {
			return c.State == StateExited || c.Labels[LabelPodUID] != uid
		}
	}
	return true
}

// logTargetInput is what resolveLogTarget looks at.
type logTargetInput struct {
	Node    string
	Pods    []api.Pod
	Records map[string]containerRecord
	Actual  []ContainerInfo
	LogDir  string
	Req     api.LogRequest
}

// logTarget is the log file a request reads.
type logTarget struct {
	ID, PodUID, Container string
	Path                  string
	// Waiting, when set, is why the container has not started (yet): its
	// log exists only if an earlier incarnation of the agent ran it.
	Waiting string
}

// resolveLogTarget maps a request to a log file. It does no I/O; the
// errors are what `kubectl logs` says in the same cases, and a container
// that has not started is marked Waiting.
func resolveLogTarget(in logTargetInput) (logTarget, error) {
	req := in.Req
	i := slices.IndexFunc(in.Pods, func(p api.Pod) bool { return p.Namespace == req.Namespace && p.Name == req.Pod })
	if i < 0 {
		return logTarget{}, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("pods %q not found in namespace %q on node %q", req.Pod, req.Namespace, in.Node))
	}
	p := &in.Pods[i]
	name, err := pickContainer(p, req.Container)
	if err != nil {
		return logTarget{}, err
	}
	id := ContainerID(p.Namespace, p.Name, p.UID, name)
	t := logTarget{ID: id, PodUID: p.UID, Container: name, Path: filepath.Join(in.LogDir, id+".log")}
	rec, hasRec := in.Records[id]
	hasRec = hasRec && rec.matches(p.UID, specHash(p))
	if req.Previous {
		if !hasRec || rec.LastTermination == nil {
			return logTarget{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("previous terminated container %q in pod %q not found", name, p.Name))
		}
		t.Path = previousLogPath(in.LogDir, id)
		return t, nil
	}
	started := slices.ContainsFunc(in.Actual, func(c ContainerInfo) bool {
		return c.ID == id && c.Labels[LabelPodUID] == p.UID && !c.StartedAt.IsZero()
	})
	if !started && (!hasRec || rec.LastTermination == nil) {
		t.Waiting = reasonContainerCreating
		if hasRec && rec.WaitingReason != "" {
			t.Waiting = rec.WaitingReason
		}
	}
	return t, nil
}

// pickContainer returns the container a request names, or the pod's only
// (or default) one when it names none.
func pickContainer(p *api.Pod, want string) (string, error) {
	var names, inits []string
	for _, c := range p.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range p.Spec.InitContainers {
		inits = append(inits, c.Name)
	}
	if want != "" {
		if slices.Contains(names, want) || slices.Contains(inits, want) {
			return want, nil
		}
		return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("container %q is not valid for pod %q: choose one of %s", want, p.Name, containerChoices(names, inits)))
	}
	if len(names) == 1 {
		return names[0], nil
	}
	if d := p.Annotations[defaultContainerAnnotation]; d != "" && slices.Contains(names, d) {
		return d, nil
	}
	return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %s", p.Name, containerChoices(names, inits)))
}

// containerChoices lists container names as kubectl does.
func containerChoices(names, inits []string) string {
	s := "[" + strings.Join(names, " ") + "]"
	if len(inits) > 0 {
		s += " or one of the init containers: [" + strings.Join(inits, " ") + "]"
	}
	return s
}

// previousLogPath is where the log of a container's previous run is kept.
func previousLogPath(logDir, id string) string {
	return filepath.Join(logDir, id+".previous.log")
}

// rotateLog keeps the log of a container's run that just ended as its
// previous log, replacing the one before, so that the next run starts an
// empty log: <id>.log becomes <id>.previous.log. A missing log is not an
// error. The runner calls it before it creates a restarted container
// again.
func rotateLog(logDir, id string) error {
	err := os.Rename(filepath.Join(logDir, id+".log"), previousLogPath(logDir, id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keep the previous log of container %s: %w", id, err)
	}
	return nil
}

// logStreamConfig configures a logStream.
type logStreamConfig struct {
	Path string
	// Follow waits for more data at the end of the file until Exited
	// reports the writer gone and the file is drained.
	Follow bool
	// TailLines, when set, starts that many lines before the end.
	TailLines *int64
	// Exited reports whether the container has stopped writing.
	Exited func(ctx context.Context) bool
	// Poll is how often a follow checks for new data (default
	// logPollInterval), ExitCheck how often it calls Exited at the end of
	// the file (default exitCheckInterval).
	Poll, ExitCheck time.Duration
}

// logStream reads a log file as `tail [-n N] [-f]` does. Read blocks at
// the end of a followed file and fails once ctx ends; Close may be called
// concurrently with Read.
type logStream struct {
	ctx context.Context
	cfg logStreamConfig

	mu     sync.Mutex // guards f and closed
	f      *os.File   // nil until the file exists
	closed bool

	// Read's own state.
	lastCheck time.Time
	exited    bool // the writer is gone: the next EOF ends the stream
}

// openLogStream opens cfg.Path and positions it for cfg.TailLines. A file
// that does not exist yet reads as empty, or, followed, is waited for.
func openLogStream(ctx context.Context, cfg logStreamConfig) (*logStream, error) {
	if cfg.Poll <= 0 {
		cfg.Poll = logPollInterval
	}
	if cfg.ExitCheck <= 0 {
		cfg.ExitCheck = exitCheckInterval
	}
	s := &logStream{ctx: ctx, cfg: cfg}
	f, err := os.Open(cfg.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	if cfg.TailLines != nil {
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open log: %w", err)
		}
		off, err := tailOffset(f, fi.Size(), *cfg.TailLines)
		if err == nil {
			_, err = f.Seek(off, io.SeekStart)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open log: find the last %d lines: %w", *cfg.TailLines, err)
		}
	}
	s.f = f
	return s, nil
}

// Read implements io.Reader.
func (s *logStream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		f, err := s.file()
		if err != nil {
			return 0, err
		}
		if f != nil {
			n, err := f.Read(p)
			if n > 0 {
				return n, nil
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return 0, fmt.Errorf("read log: %w", err)
			}
		}
		// At the end of what was written so far.
		if !s.cfg.Follow || s.exited {
			return 0, io.EOF
		}
		if time.Since(s.lastCheck) >= s.cfg.ExitCheck && s.cfg.Exited != nil {
			s.lastCheck = time.Now()
			if s.cfg.Exited(s.ctx) {
				// Read once more after a pause: the runtime may still be
				// copying the last output into the file.
				s.exited = true
			}
		}
		if !backoff.Sleep(s.ctx, s.cfg.Poll) {
			return 0, s.ctx.Err()
		}
	}
}

// file returns the open file, opening it once it exists; nil while it
// does not.
func (s *logStream) file() (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, os.ErrClosed
	}
	if s.f == nil {
		f, err := os.Open(s.cfg.Path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("open log: %w", err)
		}
		s.f = f
	}
	return s.f, nil
}

// Close implements io.Closer.
func (s *logStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}

// tailOffset returns where the last n lines of r (size bytes) start. A
// final line without a newline counts as a line; a final newline does not
// start one.
func tailOffset(r io.ReaderAt, size, n int64) (int64, error) {
	if n <= 0 {
		return size, nil
	}
	const block = 32 << 10
	buf := make([]byte, block)
	lines := int64(0)
	for end := size; end > 0; {
		start := max(end-block, 0)
		b := buf[:end-start]
		if _, err := r.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' || start+int64(i) == size-1 {
				continue
			}
			if lines++; lines == n {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return 0, nil
}

// lineStamper prefixes every line of a stream with the time it was read
// (RFC 3339, UTC) and a space, as `kubectl logs --timestamps` prints
// them. The log files record no write times, so the read time is the
// closest moor knows; for a followed log it is within the poll interval.
type lineStamper struct {
	r         io.ReadCloser
	now       func() time.Time
	in, out   []byte
	off       int // of out's first byte not yet returned
	lineStart bool
	err       error
}

func newLineStamper(r io.ReadCloser, now func() time.Time) *lineStamper {
	return &lineStamper{r: r, now: now, in: make([]byte, 32<<10), lineStart: true}
}

// Read implements io.Reader.
func (l *lineStamper) Read(p []byte) (int, error) {
	for l.off == len(l.out) {
		if l.err != nil {
			return 0, l.err
		}
		l.out, l.off = l.out[:0], 0
		n, err := l.r.Read(l.in)
		if n > 0 {
			stamp := l.now().UTC().Format(time.RFC3339Nano) + " "
			for _, b := range l.in[:n] {
				if l.lineStart {
					l.out = append(l.out, stamp...)
				}
				l.out = append(l.out, b)
				l.lineStart = b == '\n'
			}
		}
		l.err = err
	}
	n := copy(p, l.out[l.off:])
	l.off += n
	return n, nil
}

// Close implements io.Closer.
func (l *lineStamper) Close() error { return l.r.Close() }
