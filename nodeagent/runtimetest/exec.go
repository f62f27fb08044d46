package runtimetest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/nodeagent"
)

// exec runs p in container id and returns its exit code and output.
func (s *suite) exec(t *testing.T, ctx context.Context, id string, p ExecProgram) (code int, stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	code, err = s.rt.Exec(ctx, id, nodeagent.ExecRequest{Cmd: s.fx.ExecCommand(p), Stdout: &out, Stderr: &errOut})
	return code, out.String(), errOut.String(), err
}

// running creates and starts a container running Sleep.
func (s *suite) running(t *testing.T, id string) {
	t.Helper()
	spec := s.spec(id, Sleep)
	s.create(t, spec)
	s.start(t, id, Sleep)
}

func testExec(t *testing.T, s *suite) {
	const id = "rt-exec"
	s.running(t, id)

	code, out, errOut, err := s.exec(t, ctx(t), id, ExecOutput)
	if err != nil || code != ExecExitCode || out != ExecStdout || errOut != ExecStderr {
		t.Errorf("Exec(%v) = %d, stdout %q, stderr %q, err %v; want %d, %q, %q, nil",
			ExecOutput, code, out, errOut, err, ExecExitCode, ExecStdout, ExecStderr)
	}
	// The process has the container's environment.
	if code, out, _, err := s.exec(t, ctx(t), id, ExecEnv); err != nil || code != 0 || out != "1\n" {
		t.Errorf("Exec(%v) = %d, stdout %q, err %v; want 0, %q, nil", ExecEnv, code, out, err, "1\n")
	}
	// Nil writers discard the output.
	code, err = s.rt.Exec(ctx(t), id, nodeagent.ExecRequest{Cmd: s.fx.ExecCommand(ExecOutput)})
	if err != nil || code != ExecExitCode {
		t.Errorf("Exec without writers = %d, %v; want %d, nil", code, err, ExecExitCode)
	}
	// Execs share the container's file system.
	if code, _, _, err := s.exec(t, ctx(t), id, ExecTest); err != nil || code == 0 {
		t.Errorf("Exec(%v) before %v = %d, %v; want a non-zero exit code", ExecTest, ExecTouch, code, err)
	}
	if code, _, _, err := s.exec(t, ctx(t), id, ExecTouch); err != nil || code != 0 {
		t.Fatalf("Exec(%v) = %d, %v; want 0", ExecTouch, code, err)
	}
	if code, _, _, err := s.exec(t, ctx(t), id, ExecTest); err != nil || code != 0 {
		t.Errorf("Exec(%v) after %v = %d, %v; want 0", ExecTest, ExecTouch, code, err)
	}
	if err := errOnly(s.rt.Exec(ctx(t), id, nodeagent.ExecRequest{})); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Exec of an empty command: %v, want InvalidArgument", err)
	}
	if c := s.mustFind(t, id); c.State != nodeagent.StateRunning {
		t.Errorf("container %s after the execs: %q, want running", id, c.State)
	}
}

// errOnly drops Exec's exit code.
func errOnly(_ int, err error) error { return err }

func testExecConcurrent(t *testing.T, s *suite) {
	const id = "rt-exec-many"
	s.running(t, id)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			code, out, errOut, err := s.exec(t, ctx(t), id, ExecOutput)
			if err != nil || code != ExecExitCode || out != ExecStdout || errOut != ExecStderr {
				t.Errorf("concurrent Exec %d = %d, %q, %q, %v", i, code, out, errOut, err)
			}
		})
	}
	wg.Wait()
}

func testExecTimeout(t *testing.T, s *suite) {
	const id = "rt-exec-timeout"
	s.running(t, id)
	const timeout = 500 * time.Millisecond
	t0 := time.Now() // before the deadline is set, so took >= timeout
	c, cancel := context.WithTimeout(ctx(t), timeout)
	defer cancel()
	_, _, _, err := s.exec(t, c, id, ExecHang)
	took := time.Since(t0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Exec(%v) with a %v timeout: err %v, want one wrapping context.DeadlineExceeded", ExecHang, timeout, err)
	}
	if took < timeout-10*time.Millisecond || took > s.fx.Timeout {
		t.Errorf("Exec(%v) with a %v timeout returned after %v", ExecHang, timeout, took)
	}
	// The container survives and runs further execs.
	if code, out, _, err := s.exec(t, ctx(t), id, ExecOutput); err != nil || code != ExecExitCode || out != ExecStdout {
		t.Errorf("Exec after a timed-out one = %d, %q, %v", code, out, err)
	}
	if c := s.mustFind(t, id); c.State != nodeagent.StateRunning {
		t.Errorf("container %s after a timed-out exec: %q, want running", id, c.State)
	}
}

func testExecNotRunning(t *testing.T, s *suite) {
	if err := errOnly(s.rt.Exec(ctx(t), "rt-exec-missing", nodeagent.ExecRequest{Cmd: s.fx.ExecCommand(ExecOutput)})); !errdefs.IsNotFound(err) {
		t.Errorf("Exec in a missing container: %v, want NotFound", err)
	}
	spec := s.spec("rt-exec-created", PrintExit)
	s.create(t, spec)
	if err := errOnly(s.rt.Exec(ctx(t), spec.ID, nodeagent.ExecRequest{Cmd: s.fx.ExecCommand(ExecOutput)})); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("Exec in a created container: %v, want FailedPrecondition", err)
	}
	s.start(t, spec.ID, PrintExit)
	s.waitFor(t, spec.ID, "exited", exited)
	if err := errOnly(s.rt.Exec(ctx(t), spec.ID, nodeagent.ExecRequest{Cmd: s.fx.ExecCommand(ExecOutput)})); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("Exec in an exited container: %v, want FailedPrecondition", err)
	}
}
