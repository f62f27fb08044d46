// Package containerdproc runs a private containerd daemon as a child process:
// `moor up` uses it when no containerd socket is given, and tests use it so
// that each node (or test) has a daemon of its own.
//
// It owns everything under Config.Dir (config.toml, root, state, opt, the
// socket and the daemon log) and the daemon process it started. It never
// touches the system containerd, its socket, or /var/lib/containerd.
//
// Lifetime: the daemon runs in its own process group, so a Ctrl-C at the
// terminal reaches only moor, which then stops things in order. It is started
// with Pdeathsig=SIGKILL, so it dies if moor dies abruptly (strictly: if the
// OS thread that started it exits; Go only retires threads of goroutines that
// exit while locked to one, which this package does not do).
//
// What Stop guarantees: the daemon process has exited. Unless
// Config.LeaveTasksRunning is set, Stop first kills (SIGKILL) and deletes
// every task in every namespace of this daemon, so their
// containerd-shim-runc-v2 processes exit too and nothing is left running.
// With LeaveTasksRunning, shims and containers keep running (shims are
// re-parented and are not in the daemon's process group); a later daemon on
// the same Dir reconnects to them.
package containerdproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
)

// Config configures a private daemon.
type Config struct {
	// Dir holds config.toml, root/, state/, opt/ and, by default, the socket
	// and containerd.log. Required; created if missing.
	Dir string
	// Socket is the gRPC socket path; default Dir/containerd.sock. Unix
	// socket paths are limited to 107 bytes.
	Socket string
	// Binary is the containerd executable; default "containerd" from PATH.
	Binary string
	// Log receives lifecycle messages; default discards.
	Log *slog.Logger
	// Stdout receives the daemon's stdout and stderr; default Dir/containerd.log.
	Stdout io.Writer
	// StartTimeout bounds the wait for the socket to answer; default 30s.
	StartTimeout time.Duration
	// LeaveTasksRunning makes Stop leave tasks (and their shims) running.
	LeaveTasksRunning bool
}

// Validate fills defaults and checks the config.
func (c *Config) Validate() error {
	if c.Dir == "" {
		return errors.New("containerdproc: Config.Dir is required: set a directory for the daemon's root and state")
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return fmt.Errorf("containerdproc: Config.Dir: %w", err)
	}
	c.Dir = dir
	if c.Socket == "" {
		c.Socket = filepath.Join(c.Dir, "containerd.sock")
	}
	// The ttrpc socket adds ".ttrpc"; sun_path holds 107 bytes plus NUL.
	if n := len(c.Socket) + len(".ttrpc"); n > 107 {
		return fmt.Errorf("containerdproc: socket path %q is too long for a unix socket (%d > 107 bytes with .ttrpc): use a shorter Dir or Socket", c.Socket, n)
	}
	if c.Binary == "" {
		c.Binary = "containerd"
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 30 * time.Second
	}
	return nil
}

// Daemon is a running private containerd.
type Daemon struct {
	cfg     Config
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has been reaped
	waitErr error         // valid after done is closed
	logFile *os.File      // nil when Config.Stdout was given

	stopOnce sync.Once
	stopErr  error
}

// Start writes Dir/config.toml, starts containerd and waits until its socket
// answers a Version call.
func Start(ctx context.Context, cfg Config) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bin, err := exec.LookPath(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("containerdproc: find containerd binary %q: %w (install containerd or set Config.Binary)", cfg.Binary, err)
	}
	for _, d := range []string{cfg.Dir, filepath.Dir(cfg.Socket)} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("containerdproc: %w", err)
		}
	}
	confPath := filepath.Join(cfg.Dir, "config.toml")
	if err := os.WriteFile(confPath, renderConfig(cfg), 0o644); err != nil {
		return nil, fmt.Errorf("containerdproc: write config: %w", err)
	}
	_ = os.Remove(cfg.Socket) // a stale socket from a crashed run

	d := &Daemon{cfg: cfg, done: make(chan struct{})}
	out := cfg.Stdout
	if out == nil {
		f, err := os.OpenFile(d.logPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("containerdproc: open daemon log: %w", err)
		}
		d.logFile, out = f, f
	}
	// Not exec.CommandContext: the daemon must outlive ctx, which only bounds startup.
	d.cmd = exec.Command(bin, "--config", confPath)
	d.cmd.Stdout, d.cmd.Stderr = out, out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		d.closeLog()
		return nil, fmt.Errorf("containerdproc: start %s: %w", bin, err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		d.closeLog()
		close(d.done)
	}()
	cfg.Log.Info("started containerd", "pid", d.cmd.Process.Pid, "socket", cfg.Socket, "dir", cfg.Dir)

	if err := d.waitReady(ctx); err != nil {
		_ = d.kill()
		return nil, err
	}
	return d, nil
}

// Socket returns the daemon's gRPC socket path.
func (d *Daemon) Socket() string { return d.cfg.Socket }

// Pid returns the daemon's process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Done is closed when the daemon process has exited.
func (d *Daemon) Done() <-chan struct{} { return d.done }

func (d *Daemon) logPath() string { return filepath.Join(d.cfg.Dir, "containerd.log") }

func (d *Daemon) closeLog() {
	if d.logFile != nil {
		_ = d.logFile.Close()
	}
}

// waitReady polls Version until it answers, the process exits or the
// start timeout passes.
func (d *Daemon) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.StartTimeout)
	defer cancel()
	var lastErr error
	for {
		if lastErr = d.ping(ctx); lastErr == nil {
			return nil
		}
		select {
		case <-d.done:
			return fmt.Errorf("containerdproc: containerd exited during startup (%v)%s", d.waitErr, d.logTail())
		case <-ctx.Done():
			return fmt.Errorf("containerdproc: containerd socket %s did not answer: %w (last error: %v)%s", d.cfg.Socket, ctx.Err(), lastErr, d.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *Daemon) ping(ctx context.Context) error {
	if _, err := os.Stat(d.cfg.Socket); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := containerd.New(d.cfg.Socket, containerd.WithTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Version(cctx)
	return err
}

// logTail returns the end of the daemon log for error messages.
func (d *Daemon) logTail() string {
	if d.cfg.Stdout != nil {
		return ""
	}
	b, err := os.ReadFile(d.logPath())
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "; daemon log " + d.logPath() + " ends:\n" + string(bytes.TrimSpace(b))
}

// Stop kills the daemon's tasks (unless Config.LeaveTasksRunning), then sends
// SIGTERM and waits for the daemon to exit; if ctx ends first or 10s pass, it
// SIGKILLs the daemon's process group. Stop is idempotent.
func (d *Daemon) Stop(ctx context.Context) error {
	d.stopOnce.Do(func() { d.stopErr = d.stop(ctx) })
	return d.stopErr
}

func (d *Daemon) stop(ctx context.Context) error {
	select {
	case <-d.done:
		return nil // already exited (crashed or killed)
	default:
	}
	var errs []error
	if !d.cfg.LeaveTasksRunning {
		if err := d.killTasks(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	pid := d.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case <-d.done:
	case <-ctx.Done():
		errs = append(errs, d.kill())
	case <-timer.C:
		d.cfg.Log.Warn("containerd ignored SIGTERM; killing it", "pid", pid)
		errs = append(errs, d.kill())
	}
	d.cfg.Log.Info("stopped containerd", "pid", pid)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("containerdproc: stop: %w", err)
	}
	return nil
}

// kill SIGKILLs the daemon's process group and reaps the daemon.
func (d *Daemon) kill() error {
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-d.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("containerd pid %d did not exit after SIGKILL", d.cmd.Process.Pid)
	}
}

// killTasks kills and deletes every task in every namespace.
func (d *Daemon) killTasks(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := containerd.New(d.cfg.Socket, containerd.WithTimeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connect to kill tasks: %w", err)
	}
	defer c.Close()
	nss, err := c.NamespaceService().List(ctx)
	if err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	var errs []error
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		ctrs, err := c.Containers(nctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("list containers in %s: %w", ns, err))
			continue
		}
		for _, ctr := range ctrs {
			task, err := ctr.Task(nctx, nil)
			if err != nil {
				continue // no task
			}
			if _, err := task.Delete(nctx, containerd.WithProcessKill); err != nil {
				errs = append(errs, fmt.Errorf("kill task %s/%s: %w", ns, ctr.ID(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// renderConfig returns config.toml for cfg: a daemon confined to cfg.Dir,
// without CRI and without snapshotters moor does not use.
func renderConfig(cfg Config) []byte {
	q := strconv.Quote
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by moor (nodeagent/containerdproc); rewritten at every start.\n")
	fmt.Fprintf(&b, "version = 2\n")
	fmt.Fprintf(&b, "root = %s\n", q(filepath.Join(cfg.Dir, "root")))
	fmt.Fprintf(&b, "state = %s\n", q(filepath.Join(cfg.Dir, "state")))
	fmt.Fprintf(&b, "disabled_plugins = [\n")
	for _, p := range disabledPlugins {
		fmt.Fprintf(&b, "  %s,\n", q(p))
	}
	fmt.Fprintf(&b, "]\n\n[grpc]\n  address = %s\n", q(cfg.Socket))
	fmt.Fprintf(&b, "\n[ttrpc]\n  address = %s\n", q(cfg.Socket+".ttrpc"))
	fmt.Fprintf(&b, "\n[debug]\n  address = \"\"\n  level = \"info\"\n")
	fmt.Fprintf(&b, "\n[metrics]\n  address = \"\"\n")
	fmt.Fprintf(&b, "\n[plugins]\n  [plugins.%s]\n    path = %s\n",
		q("io.containerd.internal.v1.opt"), q(filepath.Join(cfg.Dir, "opt")))
	return b.Bytes()
}

var disabledPlugins = []string{
	"io.containerd.grpc.v1.cri",
	"io.containerd.snapshotter.v1.aufs",
	"io.containerd.snapshotter.v1.btrfs",
	"io.containerd.snapshotter.v1.devmapper",
	"io.containerd.snapshotter.v1.zfs",
	"io.containerd.tracing.processor.v1.otlp",
	"io.containerd.internal.v1.tracing",
}
