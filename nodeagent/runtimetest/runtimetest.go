// Package runtimetest is the behavioural test suite every nodeagent.Runtime
// implementation must pass (the fake and containerd run the identical
// suite). It owns only the suite; it starts no daemons and pulls no images
// of its own — what differs per runtime comes in through a Fixture.
package runtimetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/nodeagent"
)

// Program is an abstract process behaviour the suite needs; each Fixture
// maps it onto a command its runtime can run.
type Program int

const (
	// Sleep runs until killed and ignores the stop signal (as `sleep` does
	// when it is PID 1 of a container), so Stop must escalate to SIGKILL and
	// the exit code is 137.
	Sleep Program = iota
	// TrapTerm exits promptly with code 143 when it gets SIGTERM.
	TrapTerm
	// PrintExit prints Fixture.Output and then, on its own and within about a
	// second, exits with Fixture.ExitCode.
	PrintExit
	// Sandbox prints three lines and exits 0: the host name, the target of
	// /proc/self/ns/net ("net:[<inode>]") and the content of the file
	// mounted at /etc/moor-test (which ends in a newline).
	Sandbox
)

// SandboxFile is where the Sandbox test mounts a file.
const SandboxFile = "/etc/moor-test"

// ExecProgram is an abstract process the Exec tests run in a container
// running Sleep; Fixture.ExecCommand maps it onto a command.
type ExecProgram int

const (
	// ExecOutput prints ExecStdout to stdout and ExecStderr to stderr and
	// exits with ExecExitCode.
	ExecOutput ExecProgram = iota
	// ExecEnv prints the value of the container's MOOR_TEST variable
	// (set to "1" in its spec) and a newline, and exits 0.
	ExecEnv
	// ExecHang runs until it is killed.
	ExecHang
	// ExecTouch creates ExecFile in the container and exits 0.
	ExecTouch
	// ExecTest exits 0 when ExecFile exists in the container, 1 otherwise.
	ExecTest
	// ExecCat copies its stdin to its stdout and exits 0 at the end of
	// stdin. The stdin tests skip when ExecCommand maps it to nil.
	ExecCat
)

// What the Exec programs print, return and touch.
const (
	ExecStdout   = "out\n"
	ExecStderr   = "err\n"
	ExecExitCode = 3
	ExecFile     = "/tmp/moor-exec-test"
)

func (p ExecProgram) String() string {
	switch p {
	case ExecOutput:
		return "exec-output"
	case ExecEnv:
		return "exec-env"
	case ExecHang:
		return "exec-hang"
	case ExecTouch:
		return "exec-touch"
	case ExecTest:
		return "exec-test"
	case ExecCat:
		return "exec-cat"
	}
	return fmt.Sprintf("exec-program(%d)", int(p))
}

func (p Program) String() string {
	switch p {
	case Sleep:
		return "sleep"
	case TrapTerm:
		return "trap-term"
	case PrintExit:
		return "print-exit"
	case Sandbox:
		return "sandbox"
	}
	return fmt.Sprintf("program(%d)", int(p))
}

// Fixture is what differs between runtimes under test.
type Fixture struct {
	// Image is the ref the suite pulls and runs; it must be pullable.
	Image string
	// Command returns the ContainerSpec.Command that runs p in Image.
	Command func(p Program) []string
	// Output is what PrintExit prints (e.g. "hi\n"); ExitCode its exit code
	// (must not be 0).
	Output   string
	ExitCode uint32
	// Started, when non-nil, is called after each successful Start of a
	// container running p. Runtimes whose processes act on their own (real
	// ones) leave it nil; the fake uses it to make the process behave like p.
	Started func(t *testing.T, id string, p Program)
	// Timeout bounds each wait for a state change; default 30s.
	Timeout time.Duration
	// NetNS, when non-nil, returns the path of a network namespace for the
	// Sandbox test (which is skipped without it).
	NetNS func(t *testing.T) string
	// ExecCommand returns the Exec argv that runs p in Image. Required.
	ExecCommand func(p ExecProgram) []string
}

type suite struct {
	rt  nodeagent.Runtime
	fx  Fixture
	dir string
}

// Run runs the suite. newRuntime is called once per subtest and returns a
// fresh (or at least clean-enough) runtime and its fixture; container IDs
// are unique per subtest, so runtimes may be shared between subtests.
func Run(t *testing.T, newRuntime func(t *testing.T) (nodeagent.Runtime, Fixture)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"PullIsIdempotent", testPull},
		{"CreateStartList", testCreateStartList},
		{"CreateExistingFails", testCreateExisting},
		{"StopEscalatesToKill", testStopKill},
		{"StopGraceful", testStopGraceful},
		{"ExitThenRestart", testExitRestart},
		{"RemoveAndNoOps", testRemoveNoOps},
		{"Sandbox", testSandbox},
		{"Exec", testExec},
		{"ExecConcurrent", testExecConcurrent},
		{"ExecTimeoutKills", testExecTimeout},
		{"ExecNotRunning", testExecNotRunning},
		{"ExecStdin", testExecStdin},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt, fx := newRuntime(t)
			if fx.Timeout == 0 {
				fx.Timeout = 30 * time.Second
			}
			s := &suite{rt: rt, fx: fx, dir: t.TempDir()}
			if err := rt.PullImage(ctx(t), fx.Image); err != nil {
				t.Fatalf("PullImage(%q): %v", fx.Image, err)
			}
			tc.fn(t, s)
		})
	}
}

func ctx(t *testing.T) context.Context {
	return t.Context()
}

// spec returns a spec for a container with id running p.
func (s *suite) spec(id string, p Program) nodeagent.ContainerSpec {
	return nodeagent.ContainerSpec{
		ID:      id,
		Image:   s.fx.Image,
		Command: s.fx.Command(p),
		Env:     []string{"MOOR_TEST=1"},
		Labels:  map[string]string{"moor.dev/pod": "default/" + id, "moor.dev/spec-hash": "abc123"},
		LogPath: filepath.Join(s.dir, id+".log"),
	}
}

// create creates the container and registers its removal.
func (s *suite) create(t *testing.T, spec nodeagent.ContainerSpec) {
	t.Helper()
	if err := s.rt.Create(ctx(t), spec); err != nil {
		t.Fatalf("Create(%s): %v", spec.ID, err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.rt.Stop(c, spec.ID, 0)
		if err := s.rt.Remove(c, spec.ID); err != nil {
			t.Errorf("cleanup: Remove(%s): %v", spec.ID, err)
		}
	})
}

func (s *suite) start(t *testing.T, id string, p Program) {
	t.Helper()
	if err := s.rt.Start(ctx(t), id); err != nil {
		t.Fatalf("Start(%s): %v", id, err)
	}
	if s.fx.Started != nil {
		s.fx.Started(t, id, p)
	}
}

// find returns the container with id from List, and whether it exists.
func (s *suite) find(t *testing.T, id string) (nodeagent.ContainerInfo, bool) {
	t.Helper()
	list, err := s.rt.List(ctx(t))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, c := range list {
		if c.ID == id {
			return c, true
		}
	}
	return nodeagent.ContainerInfo{}, false
}

func (s *suite) mustFind(t *testing.T, id string) nodeagent.ContainerInfo {
	t.Helper()
	c, ok := s.find(t, id)
	if !ok {
		t.Fatalf("List does not contain %s", id)
	}
	return c
}

// waitFor polls List until cond holds for id or the fixture timeout passes.
func (s *suite) waitFor(t *testing.T, id, what string, cond func(nodeagent.ContainerInfo) bool) nodeagent.ContainerInfo {
	t.Helper()
	deadline := time.Now().Add(s.fx.Timeout)
	for {
		c := s.mustFind(t, id)
		if cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not %s after %v; last: %+v", id, what, s.fx.Timeout, c)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func exited(c nodeagent.ContainerInfo) bool { return c.State == nodeagent.StateExited }

func (s *suite) logs(t *testing.T, id string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := s.rt.Logs(ctx(t), id, &buf); err != nil {
		t.Fatalf("Logs(%s): %v", id, err)
	}
	return buf.String()
}

func testPull(t *testing.T, s *suite) {
	for range 2 {
		if err := s.rt.PullImage(ctx(t), s.fx.Image); err != nil {
			t.Fatalf("PullImage again: %v", err)
		}
	}
}

func testCreateStartList(t *testing.T, s *suite) {
	spec := s.spec("rt-create", Sleep)
	s.create(t, spec)

	c := s.mustFind(t, spec.ID)
	if c.State != nodeagent.StateCreated {
		t.Errorf("after Create: state %q, want %q", c.State, nodeagent.StateCreated)
	}
	if c.Image != spec.Image {
		t.Errorf("Image = %q, want %q", c.Image, spec.Image)
	}
	if !maps.Equal(c.Labels, spec.Labels) {
		t.Errorf("Labels = %v, want exactly %v", c.Labels, spec.Labels)
	}
	if !c.StartedAt.IsZero() {
		t.Errorf("StartedAt = %v before Start, want zero", c.StartedAt)
	}

	before := time.Now().Add(-time.Second)
	s.start(t, spec.ID, Sleep)
	c = s.mustFind(t, spec.ID)
	if c.State != nodeagent.StateRunning {
		t.Fatalf("after Start: state %q, want %q", c.State, nodeagent.StateRunning)
	}
	if c.Pid == 0 {
		t.Errorf("running container has Pid 0")
	}
	if c.StartedAt.Before(before) {
		t.Errorf("StartedAt = %v, want after %v", c.StartedAt, before)
	}
	if !maps.Equal(c.Labels, spec.Labels) {
		t.Errorf("after Start: Labels = %v, want exactly %v", c.Labels, spec.Labels)
	}
	if err := s.rt.Start(ctx(t), spec.ID); err == nil {
		t.Errorf("Start of a running container succeeded, want an error")
	}
}

func testCreateExisting(t *testing.T, s *suite) {
	spec := s.spec("rt-exists", Sleep)
	s.create(t, spec)
	err := s.rt.Create(ctx(t), spec)
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second Create: err = %v, want one wrapping errdefs.ErrAlreadyExists", err)
	}
}

func testStopKill(t *testing.T, s *suite) {
	spec := s.spec("rt-stopkill", Sleep)
	s.create(t, spec)
	s.start(t, spec.ID, Sleep)
	started := s.mustFind(t, spec.ID)

	const grace = 700 * time.Millisecond
	t0 := time.Now()
	if err := s.rt.Stop(ctx(t), spec.ID, grace); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if took := time.Since(t0); took < grace {
		t.Errorf("Stop returned after %v, before the grace period %v", took, grace)
	}
	c := s.mustFind(t, spec.ID)
	if c.State != nodeagent.StateExited || c.ExitCode != 137 {
		t.Errorf("after Stop: state %q exit %d, want exited 137 (SIGKILL)", c.State, c.ExitCode)
	}
	if c.FinishedAt.Before(started.StartedAt) {
		t.Errorf("FinishedAt %v before StartedAt %v", c.FinishedAt, started.StartedAt)
	}
	if !maps.Equal(c.Labels, spec.Labels) {
		t.Errorf("after Stop: Labels = %v, want exactly %v", c.Labels, spec.Labels)
	}
	if err := s.rt.Stop(ctx(t), spec.ID, grace); err != nil {
		t.Errorf("Stop of a stopped container: %v, want nil", err)
	}
}

func testStopGraceful(t *testing.T, s *suite) {
	spec := s.spec("rt-graceful", TrapTerm)
	s.create(t, spec)
	s.start(t, spec.ID, TrapTerm)
	// Give a real shell time to install its trap.
	time.Sleep(300 * time.Millisecond)

	const grace = 20 * time.Second
	t0 := time.Now()
	if err := s.rt.Stop(ctx(t), spec.ID, grace); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if took := time.Since(t0); took > grace/2 {
		t.Errorf("Stop took %v; a process that exits on SIGTERM should not wait out the grace", took)
	}
	c := s.mustFind(t, spec.ID)
	if c.State != nodeagent.StateExited || c.ExitCode != 143 {
		t.Errorf("after Stop: state %q exit %d, want exited 143", c.State, c.ExitCode)
	}
}

func testExitRestart(t *testing.T, s *suite) {
	spec := s.spec("rt-restart", PrintExit)
	s.create(t, spec)
	s.start(t, spec.ID, PrintExit)
	first := s.waitFor(t, spec.ID, "exited", exited)
	if first.ExitCode != s.fx.ExitCode {
		t.Errorf("ExitCode = %d, want %d", first.ExitCode, s.fx.ExitCode)
	}
	if first.FinishedAt.IsZero() || first.FinishedAt.Before(first.StartedAt) {
		t.Errorf("FinishedAt = %v, StartedAt = %v; want FinishedAt set and not earlier", first.FinishedAt, first.StartedAt)
	}
	if got := s.logs(t, spec.ID); got != s.fx.Output {
		t.Errorf("Logs = %q, want %q", got, s.fx.Output)
	}

	s.start(t, spec.ID, PrintExit)
	second := s.waitFor(t, spec.ID, "exited a second time", func(c nodeagent.ContainerInfo) bool {
		return exited(c) && c.StartedAt.After(first.StartedAt)
	})
	if second.ID != spec.ID || second.ExitCode != s.fx.ExitCode {
		t.Errorf("second run: %+v, want same ID and exit code %d", second, s.fx.ExitCode)
	}
	if second.StartedAt.Before(first.FinishedAt) {
		t.Errorf("second StartedAt %v before first FinishedAt %v", second.StartedAt, first.FinishedAt)
	}
	if got, want := s.logs(t, spec.ID), strings.Repeat(s.fx.Output, 2); got != want {
		t.Errorf("Logs after restart = %q, want %q (appended)", got, want)
	}
}

func testRemoveNoOps(t *testing.T, s *suite) {
	// A created, never-started container can be removed.
	created := s.spec("rt-remove-created", Sleep)
	if err := s.rt.Create(ctx(t), created); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := s.rt.Remove(ctx(t), created.ID); err != nil {
		t.Fatalf("Remove(created): %v", err)
	}

	spec := s.spec("rt-remove", Sleep)
	if err := s.rt.Create(ctx(t), spec); err != nil {
		t.Fatalf("Create: %v", err)
	}
	s.start(t, spec.ID, Sleep)
	if err := s.rt.Stop(ctx(t), spec.ID, 0); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.rt.Remove(ctx(t), spec.ID); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	for _, id := range []string{created.ID, spec.ID} {
		if _, ok := s.find(t, id); ok {
			t.Errorf("List still contains removed %s", id)
		}
	}
	if err := s.rt.Remove(ctx(t), spec.ID); err != nil {
		t.Errorf("Remove of a missing container: %v, want nil", err)
	}
	// The ID is free again.
	s.create(t, spec)
}

// testSandbox runs a container in a given network namespace with a host
// name and a read-only bind mount, as pods on the pod network run.
func testSandbox(t *testing.T, s *suite) {
	if s.fx.NetNS == nil {
		t.Skip("the fixture provides no network namespace")
	}
	nsPath := s.fx.NetNS(t)
	var st syscall.Stat_t
	if err := syscall.Stat(nsPath, &st); err != nil {
		t.Fatalf("stat netns %s: %v", nsPath, err)
	}
	src := filepath.Join(s.dir, "mounted")
	if err := os.WriteFile(src, []byte("mounted content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := s.spec("rt-sandbox", Sandbox)
	spec.NetNSPath = nsPath
	spec.Hostname = "pod-sandbox"
	spec.Mounts = []nodeagent.Mount{{Source: src, Destination: SandboxFile, ReadOnly: true}}
	s.create(t, spec)
	s.start(t, spec.ID, Sandbox)
	c := s.waitFor(t, spec.ID, "exited", exited)
	want := fmt.Sprintf("pod-sandbox\nnet:[%d]\nmounted content\n", st.Ino)
	if got := s.logs(t, spec.ID); got != want || c.ExitCode != 0 {
		t.Errorf("output %q exit %d, want %q exit 0", got, c.ExitCode, want)
	}
}
