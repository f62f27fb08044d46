package nodeagent_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/nodeagent/fakeruntime"
	"github.com/moor-dev/moor/nodeagent/remote"
)

// playExec answers execs in one container: "whoami" prints the
// container's name, "sh -c ..." prints to both streams and exits 3,
// "cat" copies stdin, "hang" waits for its context.
func playExec(name string) fakeruntime.ExecIOHandler {
	return func(ctx context.Context, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
		switch cmd[0] {
		case "whoami":
			io.WriteString(stdout, name+"\n")
			return 0, nil
		case "sh":
			io.WriteString(stdout, "out\n")
			io.WriteString(stderr, "err\n")
			return 3, nil
		case "cat":
			_, err := io.Copy(stdout, stdin)
			return 0, err
		case "hang":
			<-ctx.Done()
			return -1, ctx.Err()
		}
		return 127, nil
	}
}

// runExec prepares and runs req on a and returns the outcome.
func runExec(t *testing.T, a interface {
	PrepareExec(context.Context, api.ExecRequest) (remote.ExecFunc, error)
}, ctx context.Context, req api.ExecRequest, stdin io.Reader) (stdout, stderr string, code int, err error) {
	t.Helper()
	run, err := a.PrepareExec(ctx, req)
	if err != nil {
		return "", "", -1, err
	}
	var o, e bytes.Buffer
	code, err = run(ctx, remote.Stdio{Stdin: stdin, Stdout: &o, Stderr: &e})
	return o.String(), e.String(), code, err
}

// The agent runs commands in the running containers of its pods, which it
// finds as `moor logs` does.
func TestPrepareExec(t *testing.T) {
	srv := newFakeServer(t, node)
	rt := fakeruntime.New()
	a := runAgent(t, testConfig(t, srv, t.TempDir()), rt)
	web := testPod("web", "u1", "web")
	two := testPod("two", "u2", "app", "sidecar")
	job := testPod("job", "u3", "main")
	job.Spec.RestartPolicy = corev1.RestartPolicyNever
	job.SpecHash = api.HashObject(job.Spec)
	for _, c := range []struct {
		p    api.Pod
		name string
	}{{web, "web"}, {two, "app"}, {two, "sidecar"}, {job, "main"}} {
		rt.HandleExecIO(cid(c.p, c.name), playExec(c.name))
	}
	srv.SetDesired("c1", web, two, job)
	for _, id := range []string{cid(web, "web"), cid(two, "app"), cid(two, "sidecar"), cid(job, "main")} {
		eventually(t, id+" running", func() bool { return running(rt, id) })
	}
	ctx := context.Background()

	out, errOut, code, err := runExec(t, a, ctx, api.ExecRequest{Namespace: "default", Pod: "web", Command: []string{"sh", "-c", "x"}}, nil)
	if out != "out\n" || errOut != "err\n" || code != 3 || err != nil {
		t.Errorf("exec sh: stdout %q, stderr %q, code %d, %v", out, errOut, code, err)
	}
	out, _, code, err = runExec(t, a, ctx, api.ExecRequest{Namespace: "default", Pod: "web", Command: []string{"cat"}, Stdin: true},
		strings.NewReader("hello\n"))
	if out != "hello\n" || code != 0 || err != nil {
		t.Errorf("exec cat: stdout %q, code %d, %v", out, code, err)
	}
	if out, _, _, err := runExec(t, a, ctx, api.ExecRequest{Namespace: "default", Pod: "two", Container: "sidecar", Command: []string{"whoami"}}, nil); out != "sidecar\n" || err != nil {
		t.Errorf("exec -c sidecar: %q, %v", out, err)
	}

	if err := rt.Exit(cid(job, "main"), 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "job's container exited", func() bool { return !running(rt, cid(job, "main")) })
	for _, tc := range []struct {
		req   api.ExecRequest
		class func(error) bool
		msg   string
	}{
		{api.ExecRequest{Namespace: "default", Pod: "ghost", Command: []string{"ls"}}, errdefs.IsNotFound, `pods "ghost" not found in namespace "default" on node "node-1"`},
		{api.ExecRequest{Namespace: "other", Pod: "web", Command: []string{"ls"}}, errdefs.IsNotFound, `pods "web" not found in namespace "other"`},
		{api.ExecRequest{Namespace: "default", Pod: "two", Command: []string{"ls"}}, errdefs.IsInvalidArgument, "a container name must be specified for pod two, choose one of: [app sidecar]"},
		{api.ExecRequest{Namespace: "default", Pod: "web", Container: "nope", Command: []string{"ls"}}, errdefs.IsInvalidArgument, `container "nope" is not valid for pod "web": choose one of [web]`},
		{api.ExecRequest{Namespace: "default", Pod: "job", Command: []string{"ls"}}, errdefs.IsFailedPrecondition, `container "main" in pod "job" is not running: it exited with code 0`},
		{api.ExecRequest{Namespace: "default", Pod: "web"}, errdefs.IsInvalidArgument, "the command is empty"},
	} {
		if _, err := a.PrepareExec(ctx, tc.req); !tc.class(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%+v: %v, want one containing %q", tc.req, err, tc.msg)
		}
	}

	// The command is killed when its context ends.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, _, _, err := runExec(t, a, cctx, api.ExecRequest{Namespace: "default", Pod: "web", Command: []string{"hang"}}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("exec hang with a deadline: %v", err)
	}

	// The container stops between PrepareExec and the run.
	run, err := a.PrepareExec(ctx, api.ExecRequest{Namespace: "default", Pod: "two", Container: "app", Command: []string{"whoami"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Exit(cid(two, "app"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := run(ctx, remote.Stdio{Stdout: io.Discard, Stderr: io.Discard}); !errdefs.IsFailedPrecondition(err) ||
		!strings.Contains(err.Error(), `container "app" in pod "two" is not running any more`) {
		t.Errorf("exec in a container that stopped meanwhile: %v", err)
	}
}
