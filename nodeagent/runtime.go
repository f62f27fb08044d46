package nodeagent

import (
	"context"
	"io"
	"syscall"
	"time"
)

// Runtime is what the agent needs from a container runtime. The containerd
// implementation lives in nodeagent/containerd; nodeagent/fakeruntime is a
// scriptable in-memory one for fast unit tests. Both pass the shared suite
// in nodeagent/runtimetest.
type Runtime interface {
	// PullImage makes ref available locally; it is a no-op when the image is
	// already present.
	PullImage(ctx context.Context, ref string) error
	// Create creates (but does not start) a container. It fails with an
	// error wrapping errdefs.ErrAlreadyExists when spec.ID exists.
	Create(ctx context.Context, spec ContainerSpec) error
	// Start starts the container's process.
	Start(ctx context.Context, id string) error
	// Stop sends signal, waits up to grace for the process to exit, then
	// kills it. Stopping a stopped container is not an error.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Remove deletes a stopped container and its task and snapshot.
	// Removing a missing container is not an error.
	Remove(ctx context.Context, id string) error
	// List returns every container the runtime holds for moor.
	List(ctx context.Context) ([]ContainerInfo, error)
	// Logs streams the container's log file (stdout and stderr).
	Logs(ctx context.Context, id string, w io.Writer) error
	// Exec runs req.Cmd in the running container id, in its namespaces and
	// with its process settings (user, env, working directory), copies the
	// process's stdout and stderr to req's writers and returns its exit
	// code once it has exited and its output has been copied. Missing
	// container: errdefs.ErrNotFound; not running: errdefs.ErrFailedPrecondition.
	// When ctx ends first the process is killed and the error wraps
	// ctx.Err(). Execs may run concurrently.
	Exec(ctx context.Context, id string, req ExecRequest) (exitCode int, err error)
}

// ExecRequest is a process to run in a running container (probes and
// `moor exec`). Fields may be added (a terminal).
type ExecRequest struct {
	// Cmd is the argv; Cmd[0] is looked up in the container's PATH.
	Cmd []string
	// Stdin, when set, is copied to the process's stdin, which is closed
	// when Stdin ends (io.EOF or an error), so that a process reading it
	// to its end (cat) finishes. Nil: the process's stdin is empty. Exec
	// may return with a Read of Stdin still pending (the process exited
	// without reading all of it); the caller ends that Read by closing
	// Stdin's source.
	Stdin io.Reader
	// Stdout and Stderr receive the process's output; nil discards it.
	// They are written from other goroutines, but never after Exec
	// returns.
	Stdout, Stderr io.Writer
}

// ContainerSpec describes one container of a pod.
type ContainerSpec struct {
	ID         string // unique, [A-Za-z0-9_.-]
	Image      string
	Command    []string // overrides the image's entrypoint when set
	Args       []string // overrides the image's cmd when set
	Env        []string // KEY=VALUE, appended to the image's env
	WorkingDir string
	// Labels are stored with the container and returned by List; the agent
	// records pod identity and the spec hash here so it can adopt running
	// containers after a restart.
	Labels map[string]string
	// LogPath is the file stdout and stderr are appended to.
	LogPath string
	// StopSignal defaults to SIGTERM.
	StopSignal syscall.Signal
	// NetNSPath is the network namespace the container joins (the pod's,
	// shared by all its containers). Empty: the host's network namespace,
	// with the host's /etc/hosts and /etc/resolv.conf unless Mounts
	// provides them.
	NetNSPath string
	// Hostname is the container's host name (the pod name); empty keeps
	// the runtime's default.
	Hostname string
	// Mounts are bind mounts of host files or directories, in order.
	Mounts []Mount
}

// Mount is a bind mount of Source (on the node) at Destination (in the
// container).
type Mount struct {
	Source, Destination string
	ReadOnly            bool
}

// ContainerState is a container's coarse state.
type ContainerState string

// Container states.
const (
	StateCreated ContainerState = "created" // created, never started
	StateRunning ContainerState = "running"
	StateExited  ContainerState = "exited"
	StateUnknown ContainerState = "unknown"
)

// ContainerInfo is a container as the runtime reports it.
type ContainerInfo struct {
	ID         string
	Image      string
	Labels     map[string]string
	State      ContainerState
	Pid        uint32
	ExitCode   uint32
	StartedAt  time.Time
	FinishedAt time.Time
}
