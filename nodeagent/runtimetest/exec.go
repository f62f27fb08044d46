package runtimetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
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

// syncBuffer is a bytes.Buffer safe for a writer and a poller.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func testExecStdin(t *testing.T, s *suite) {
	cat := s.fx.ExecCommand(ExecCat)
	if cat == nil {
		t.Skip("the fixture maps no command for ExecCat")
	}
	const id = "rt-exec-stdin"
	s.running(t, id)

	// All of stdin at once; its end ends cat.
	var out bytes.Buffer
	code, err := s.rt.Exec(ctx(t), id, nodeagent.ExecRequest{Cmd: cat, Stdin: strings.NewReader("hello\n"), Stdout: &out})
	if err != nil || code != 0 || out.String() != "hello\n" {
		t.Errorf("Exec(%v) with stdin %q = %d, stdout %q, err %v; want 0, %q, nil", ExecCat, "hello\n", code, out.String(), err, "hello\n")
	}
	// No stdin reads as empty.
	out.Reset()
	code, err = s.rt.Exec(ctx(t), id, nodeagent.ExecRequest{Cmd: cat, Stdout: &out})
	if err != nil || code != 0 || out.Len() != 0 {
		t.Errorf("Exec(%v) without stdin = %d, stdout %q, err %v; want 0, empty, nil", ExecCat, code, out.String(), err)
	}

	// Stdin streams: the process sees the first line before the second
	// is written, and ends when stdin is closed.
	pr, pw := io.Pipe()
	var sout syncBuffer
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := s.rt.Exec(ctx(t), id, nodeagent.ExecRequest{Cmd: cat, Stdin: pr, Stdout: &sout})
		done <- result{code, err}
	}()
	if _, err := io.WriteString(pw, "one\n"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(s.fx.Timeout)
	for sout.String() != "one\n" {
		if time.Now().After(deadline) {
			t.Fatalf("the streamed stdin's first line did not come back within %v: stdout %q", s.fx.Timeout, sout.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	io.WriteString(pw, "two\n")
	pw.Close()
	select {
	case r := <-done:
		if r.err != nil || r.code != 0 || sout.String() != "one\ntwo\n" {
			t.Errorf("Exec(%v) with streamed stdin = %d, stdout %q, err %v; want 0, %q, nil", ExecCat, r.code, sout.String(), r.err, "one\ntwo\n")
		}
	case <-time.After(s.fx.Timeout):
		t.Fatalf("Exec(%v) still runs %v after its stdin was closed", ExecCat, s.fx.Timeout)
	}

	// A process that exits without reading its stdin does not wait for
	// stdin's end.
	pr2, pw2 := io.Pipe()
	defer pw2.Close()
	ch := make(chan result, 1)
	go func() {
		code, err := s.rt.Exec(ctx(t), id, nodeagent.ExecRequest{Cmd: s.fx.ExecCommand(ExecOutput), Stdin: pr2})
		ch <- result{code, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil || r.code != ExecExitCode {
			t.Errorf("Exec(%v) with an open stdin = %d, %v; want %d, nil", ExecOutput, r.code, r.err, ExecExitCode)
		}
	case <-time.After(s.fx.Timeout):
		t.Fatalf("Exec(%v) with an open stdin did not return within %v", ExecOutput, s.fx.Timeout)
	}
}
