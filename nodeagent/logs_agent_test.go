package nodeagent_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/nodeagent"
	"github.com/moor-dev/moor/nodeagent/fakeruntime"
)

// runAgent runs an agent until the test ends and returns it.
func runAgent(t *testing.T, cfg nodeagent.Config, rt nodeagent.Runtime) *nodeagent.Agent {
	t.Helper()
	a, err := nodeagent.New(cfg, rt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("agent did not stop within 10s")
		}
	})
	return a
}

func readAll(t *testing.T, a *nodeagent.Agent, req api.LogRequest) (string, error) {
	t.Helper()
	rc, err := a.OpenLogs(context.Background(), req)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	done := make(chan struct{})
	var b []byte
	go func() { b, err = io.ReadAll(rc); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("logs %+v: no end within 10s", req)
	}
	return string(b), err
}

// The agent serves the logs of the containers it runs, as the runtime
// writes them to the agent's log directory.
func TestOpenLogs(t *testing.T) {
	srv := newFakeServer(t, node)
	rt := fakeruntime.New()
	a := runAgent(t, testConfig(t, srv, t.TempDir()), rt)
	web := testPod("web", "u1", "web")
	two := testPod("two", "u2", "app", "sidecar")
	job := testPod("job", "u3", "main")
	job.Spec.RestartPolicy = corev1.RestartPolicyNever
	job.SpecHash = api.HashObject(job.Spec)
	srv.SetDesired("c1", web, two, job)
	for _, id := range []string{cid(web, "web"), cid(two, "app"), cid(job, "main")} {
		eventually(t, id+" running", func() bool { return running(rt, id) })
	}
	if err := rt.Print(cid(web, "web"), "a\nb\nc\n"); err != nil {
		t.Fatal(err)
	}

	got, err := readAll(t, a, api.LogRequest{Namespace: "default", Pod: "web"})
	if err != nil || got != "a\nb\nc\n" {
		t.Fatalf("logs: %q %v", got, err)
	}
	one := int64(1)
	got, err = readAll(t, a, api.LogRequest{Namespace: "default", Pod: "web", TailLines: &one, Timestamps: true})
	if err != nil || !strings.HasSuffix(got, "Z c\n") || strings.Count(got, "\n") != 1 {
		t.Fatalf("--tail 1 --timestamps: %q %v", got, err)
	}
	for _, tc := range []struct {
		req   api.LogRequest
		class func(error) bool
	}{
		{api.LogRequest{Namespace: "default", Pod: "ghost"}, errdefs.IsNotFound},
		{api.LogRequest{Namespace: "default", Pod: "two"}, errdefs.IsInvalidArgument},
		{api.LogRequest{Namespace: "default", Pod: "web", Previous: true}, errdefs.IsInvalidArgument},
	} {
		if _, err := a.OpenLogs(context.Background(), tc.req); !tc.class(err) {
			t.Errorf("%+v: %v", tc.req, err)
		}
	}

	// -f streams new output and ends once the container exited.
	rc, err := a.OpenLogs(context.Background(), api.LogRequest{Namespace: "default", Pod: "job", Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := rt.Print(cid(job, "main"), "working\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := rc.Read(buf)
	if err != nil || string(buf[:n]) != "working\n" {
		t.Fatalf("first followed read: %q %v", buf[:n], err)
	}
	if err := rt.Print(cid(job, "main"), "done\n"); err != nil {
		t.Fatal(err)
	}
	if err := rt.Exit(cid(job, "main"), 0); err != nil {
		t.Fatal(err)
	}
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(rc); rest <- string(b) }()
	select {
	case got := <-rest:
		if got != "done\n" {
			t.Fatalf("rest of the followed log: %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("following an exited container did not end within 10s")
	}
	// The exited container's log stays readable.
	if got, err := readAll(t, a, api.LogRequest{Namespace: "default", Pod: "job"}); err != nil || got != "working\ndone\n" {
		t.Fatalf("logs of the exited container: %q %v", got, err)
	}
}
