package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// execManifests is a Deployment whose container idles, to exec into.
func execManifests(image string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: shell, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: shell}}
  template:
    metadata: {labels: {app: shell}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: %s
        command: ["sh", "-c", "while true; do sleep 1; done"]
`, image)
}

// execResult is what a `moor exec` process printed and exited with.
type execResult struct {
	stdout, stderr string
	code           int
}

// execCLI runs `moor exec args...` with stdin and returns its streams and
// exit code.
func (e *env) execCLI(stdin string, args ...string) execResult {
	e.t.Helper()
	cmd := e.cliCmd(e.ctx, append([]string{"exec"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("moor exec %v: %v", args, err)
	}
	return execResult{out.String(), errb.String(), code}
}

// TestExec runs commands in a Deployment's container through the
// server's reverse tunnel to the agent: separate streams and the exit
// code, stdin with -i, a clear error for a missing container, and
// Ctrl-C killing the command.
func TestExec(t *testing.T) {
	e := newNodeEnv(t, "exec", execManifests)
	e.eventually(90*time.Second, "exec into deployment/shell works", func() error {
		_, err := e.cli("exec", "deployment/shell", "--", "true")
		return err
	})

	r := e.execCLI("", "deployment/shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
	if r.stdout != "out\n" || r.stderr != "err\ncommand terminated with exit code 3\n" || r.code != 3 {
		t.Fatalf("moor exec deploy -- sh -c '...; exit 3': stdout %q, stderr %q, exit %d", r.stdout, r.stderr, r.code)
	}

	shells := e.podsOf("shell-")
	if len(shells) == 0 {
		t.Fatal("no pod of deployment/shell listed")
	}
	pod := shells[len(shells)-1].Name
	if r := e.execCLI("hello\n", "-i", pod, "--", "cat"); r.stdout != "hello\n" || r.code != 0 {
		t.Fatalf("echo hello | moor exec -i %s -- cat: stdout %q, stderr %q, exit %d", pod, r.stdout, r.stderr, r.code)
	}
	// Without -i the command's stdin is empty, so cat ends at once.
	if r := e.execCLI("ignored\n", pod, "--", "cat"); r.stdout != "" || r.code != 0 {
		t.Fatalf("moor exec %s -- cat: stdout %q, stderr %q, exit %d", pod, r.stdout, r.stderr, r.code)
	}

	r = e.execCLI("", pod, "-c", "nope", "--", "true")
	want := fmt.Sprintf(`Error from server (BadRequest): container "nope" is not valid for pod %q: choose one of [main]`, pod)
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("exec into a missing container: stderr %q, exit %d; want %q", r.stderr, r.code, want)
	}
	if r := e.execCLI("", pod, "--", "no-such-program"); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "no-such-program") {
		t.Fatalf("exec of a missing program: stdout %q, stderr %q, exit %d", r.stdout, r.stderr, r.code)
	}

	// Ctrl-C ends moor exec and kills the command in the container.
	cmd := e.cliCmd(e.ctx, "exec", pod, "--", "sh", "-c", "echo started; exec sleep 4242")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	buf := make([]byte, len("started\n"))
	if _, err := stdout.Read(buf); err != nil || string(buf) != "started\n" {
		t.Fatalf("the long command printed %q, %v", buf, err)
	}
	running := func() bool {
		out, err := e.cli("exec", pod, "--", "ps")
		if err != nil {
			t.Fatalf("ps: %v", err)
		}
		return strings.Contains(out, "sleep 4242")
	}
	if !running() {
		t.Fatal("ps in the container does not list the exec'd sleep 4242")
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Fatalf("moor exec after Ctrl-C: %v, want exit code 130", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("moor exec still runs 10s after Ctrl-C")
	}
	e.eventually(15*time.Second, "the interrupted command is killed", func() error {
		if running() {
			return errors.New("sleep 4242 still runs in the container")
		}
		return nil
	})
}
