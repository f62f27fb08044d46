package nodeagent_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/internal/devenv/imagebuild"
	"github.com/moor-dev/moor/internal/devenv/registry"
	"github.com/moor-dev/moor/nodeagent"
	ctrdruntime "github.com/moor-dev/moor/nodeagent/containerd"
	"github.com/moor-dev/moor/nodeagent/containerdproc"
)

// probeContainerdRuntime starts a private containerd and a loopback registry
// holding a busybox image, and returns a runtime on them and the image.
// It skips the test when not root or a component is missing.
func probeContainerdRuntime(t *testing.T) (*ctrdruntime.Runtime, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping containerd integration test: needs root (it runs containerd and runc)")
	}
	for _, bin := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("skipping containerd integration test: %s not in PATH (install containerd and runc)", bin)
		}
	}
	for _, f := range []string{imagebuild.DefaultBusybox, registry.DefaultBinary} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("skipping containerd integration test: %s missing (install busybox-static and docker-registry)", f)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "moorprobe") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	reg, err := registry.Start(ctx, registry.Config{Dir: filepath.Join(dir, "registry")})
	if err != nil {
		t.Fatalf("start registry: %v", err)
	}
	t.Cleanup(func() { _ = reg.Stop() })
	spec := imagebuild.Spec{Registry: reg.Addr(), Repository: "moor/busybox", Tag: "1", Cmd: []string{"sh"}}
	if _, err := imagebuild.Push(ctx, spec); err != nil {
		t.Fatalf("push image: %v", err)
	}

	daemon, err := containerdproc.Start(ctx, containerdproc.Config{Dir: filepath.Join(dir, "ctrd")})
	if err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := daemon.Stop(sctx); err != nil {
			t.Errorf("stop containerd: %v", err)
		}
	})
	cgroup := fmt.Sprintf("/moor-probetest-%d", os.Getpid())
	rt, err := ctrdruntime.New(ctx, ctrdruntime.Config{
		Address:            daemon.Socket(),
		Namespace:          "moor-probes",
		RuncRoot:           filepath.Join(dir, "runc"),
		CgroupParent:       cgroup,
		InsecureRegistries: []string{reg.Addr()},
		Log:                slog.New(slog.NewTextHandler(testLogWriter{t}, nil)),
	})
	if err != nil {
		t.Fatalf("connect runtime: %v", err)
	}
	t.Cleanup(func() {
		_ = rt.Close()
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + cgroup)
		for _, d := range append(dirs, "/sys/fs/cgroup"+cgroup) {
			_ = os.Remove(d)
		}
	})
	return rt, spec.Ref()
}

// TestProbesOnContainerd runs exec probes through the real runtime: a
// readiness probe turns Ready on once the test creates its file with
// Exec, and a liveness probe that starts failing gets the container killed
// and restarted, with a fresh file system, so not ready again.
func TestProbesOnContainerd(t *testing.T) {
	rt, image := probeContainerdRuntime(t)
	srv := newFakeServer(t, node)
	grace := int64(1)
	p := api.Pod{Namespace: "default", Name: "web", UID: "1111aaaa-0001"}
	p.Spec.TerminationGracePeriodSeconds = &grace
	p.Spec.Containers = []corev1.Container{{
		Name:    "app",
		Image:   image,
		Command: []string{"sleep", "100000"}, // PID 1 ignores SIGTERM: killed after the grace
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/tmp/ready"}}},
			PeriodSeconds: 1, TimeoutSeconds: 10,
		},
		LivenessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "test ! -f /tmp/dead"}}},
			PeriodSeconds: 1, TimeoutSeconds: 10, FailureThreshold: 2,
		},
	}}
	p.SpecHash = api.HashObject(p.Spec)
	id := cid(p, "app")
	srv.SetDesired("c1", p)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = rt.Stop(ctx, id, 0)
		_ = rt.Remove(ctx, id)
	})

	cfg := testConfig(t, srv, t.TempDir())
	cfg.RestartBackoff = 500 * time.Millisecond
	const second = 200 * time.Millisecond // one probe period
	startWith(t, cfg, rt, func(a *nodeagent.Agent) { nodeagent.SetProbeSecond(a, second) })
	within := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %s waiting for %s; last status: %+v", d, what, appStatus(srv))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	touch := func(file string) {
		t.Helper()
		code, err := rt.Exec(t.Context(), id, nodeagent.ExecRequest{Cmd: []string{"touch", file}})
		if err != nil || code != 0 {
			t.Fatalf("exec touch %s: %d, %v", file, code, err)
		}
	}

	within("the container running, not ready", time.Minute, func() bool { return reportedReady(srv, false) })
	time.Sleep(5 * second) // several failed readiness checks
	if !reportedReady(srv, false) {
		t.Fatalf("ready without /tmp/ready: %+v", appStatus(srv))
	}
	touch("/tmp/ready")
	within("ready", 10*time.Second, func() bool { return reportedReady(srv, true) })

	touch("/tmp/dead")
	within("the restart after the liveness probe failed", 30*time.Second, func() bool {
		cs := appStatus(srv)
		return cs != nil && cs.RestartCount == 1 && cs.State.Running != nil && cs.LastTerminationState.Terminated != nil
	})
	last := appStatus(srv).LastTerminationState.Terminated
	if last.Reason != "LivenessProbeFailed" || last.ExitCode != 137 ||
		!strings.Contains(last.Message, `command "sh -c test ! -f /tmp/dead" exited with code 1`) {
		t.Errorf("last termination %+v, want LivenessProbeFailed, exit 137 (killed after the grace period), with the probe's message", last)
	}
	// The new run has a fresh file system: not ready until told again.
	within("the new run not ready", 10*time.Second, func() bool { return reportedReady(srv, false) })
	touch("/tmp/ready")
	within("the new run ready", 10*time.Second, func() bool { return reportedReady(srv, true) })
}
