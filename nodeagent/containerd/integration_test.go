package containerd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/internal/devenv/imagebuild"
	"github.com/moor-dev/moor/internal/devenv/registry"
	"github.com/moor-dev/moor/nodeagent"
	ctrdruntime "github.com/moor-dev/moor/nodeagent/containerd"
	"github.com/moor-dev/moor/nodeagent/containerdproc"
	"github.com/moor-dev/moor/nodeagent/runtimetest"
)

// env is a private containerd daemon, a loopback registry and a busybox
// image in it.
type env struct {
	dir    string
	daemon *containerdproc.Daemon
	reg    *registry.Registry
	image  string // ref of the default busybox image
}

func requireRoot(t *testing.T) {
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
}

func startEnv(t *testing.T) *env {
	t.Helper()
	requireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "moorctrd") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	e := &env{dir: dir}

	e.reg, err = registry.Start(ctx, registry.Config{Dir: filepath.Join(dir, "registry")})
	if err != nil {
		t.Fatalf("start registry: %v", err)
	}
	t.Cleanup(func() { _ = e.reg.Stop() })
	e.image = e.push(t, imagebuild.Spec{Repository: "moor/busybox", Tag: "1", Cmd: []string{"sh"}})

	e.daemon, err = containerdproc.Start(ctx, containerdproc.Config{Dir: filepath.Join(dir, "ctrd")})
	if err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.daemon.Stop(sctx); err != nil {
			t.Errorf("stop containerd: %v", err)
		}
		if strays := processesMentioning(e.daemon.Socket()); len(strays) > 0 {
			t.Errorf("processes left after stopping containerd: %v", strays)
		}
	})
	return e
}

// push builds and pushes an image to the env's registry and returns its ref.
func (e *env) push(t *testing.T, spec imagebuild.Spec) string {
	t.Helper()
	spec.Registry = e.reg.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := imagebuild.Push(ctx, spec); err != nil {
		t.Fatalf("push image: %v", err)
	}
	return spec.Ref()
}

// newRuntime connects a runtime for node to the env's daemon.
func (e *env) newRuntime(t *testing.T, node string) (*ctrdruntime.Runtime, ctrdruntime.Config) {
	t.Helper()
	cfg := ctrdruntime.Config{
		Address:            e.daemon.Socket(),
		Namespace:          "moor-" + node,
		RuncRoot:           filepath.Join(e.dir, "runc-"+node),
		CgroupParent:       fmt.Sprintf("/moor-test-%d-%s", os.Getpid(), node),
		InsecureRegistries: []string{e.reg.Addr()},
		Log:                slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	rt, err := ctrdruntime.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("connect runtime: %v", err)
	}
	t.Cleanup(func() {
		_ = rt.Close()
		removeCgroup(cfg.CgroupParent)
	})
	return rt, cfg
}

var commands = map[runtimetest.Program][]string{
	runtimetest.Sleep:     {"sleep", "1000"},
	runtimetest.TrapTerm:  {"sh", "-c", "trap 'exit 143' TERM; while :; do sleep 1 & wait $!; done"},
	runtimetest.PrintExit: {"sh", "-c", "echo hi; sleep 1; exit 3"},
	runtimetest.Sandbox:   {"sh", "-c", "hostname; readlink /proc/self/ns/net; cat " + runtimetest.SandboxFile},
}

// testNetNS creates a network namespace with `ip netns add` and deletes it
// at the end of the test.
func testNetNS(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("moor-rt-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", name).Run() })
	return "/var/run/netns/" + name
}

func TestRuntimeSuite(t *testing.T) {
	e := startEnv(t)
	rt, _ := e.newRuntime(t, "suite")
	runtimetest.Run(t, func(t *testing.T) (nodeagent.Runtime, runtimetest.Fixture) {
		return rt, runtimetest.Fixture{
			Image:       e.image,
			Command:     func(p runtimetest.Program) []string { return commands[p] },
			Output:      "hi\n",
			ExitCode:    3,
			NetNS:       testNetNS,
			ExecCommand: func(p runtimetest.ExecProgram) []string { return execCommands[p] },
		}
	})
}

var execCommands = map[runtimetest.ExecProgram][]string{
	runtimetest.ExecOutput: {"sh", "-c", "echo out; echo err >&2; exit 3"},
	runtimetest.ExecEnv:    {"sh", "-c", "echo $MOOR_TEST"},
	runtimetest.ExecHang:   {"sleep", "1000"},
	runtimetest.ExecTouch:  {"touch", runtimetest.ExecFile},
	runtimetest.ExecTest:   {"test", "-f", runtimetest.ExecFile},
	runtimetest.ExecCat:    {"cat"},
}

// TestImageConfigAndIsolation checks argv/env/cwd resolution against a real
// image config, and that the container runs in its cgroup under CgroupParent
// with runc state under RuncRoot.
func TestImageConfigAndIsolation(t *testing.T) {
	e := startEnv(t)
	rt, cfg := e.newRuntime(t, "cfg")
	ctx := t.Context()
	img := e.push(t, imagebuild.Spec{
		Repository: "moor/configured", Tag: "1",
		Entrypoint: []string{"sh", "-c"}, Cmd: []string{"echo default"},
		Env: []string{"PATH=/bin", "FOO=from-image"}, WorkingDir: "/tmp",
	})
	if err := rt.PullImage(ctx, img); err != nil {
		t.Fatal(err)
	}
	logDir := t.TempDir()
	tests := []struct {
		name          string
		command, args []string
		want          string
	}{
		{name: "image-default", want: "default\n"},
		{name: "args", args: []string{`echo $FOO $EXTRA $(pwd)`}, want: "from-image extra /work\n"},
		{name: "command", command: []string{"echo", "cmd"}, args: []string{"arg"}, want: "cmd arg\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := nodeagent.ContainerSpec{
				ID: "cfg-" + tc.name, Image: img, Command: tc.command, Args: tc.args,
				Env: []string{"EXTRA=extra"}, LogPath: filepath.Join(logDir, tc.name+".log"),
			}
			if tc.name == "args" {
				spec.WorkingDir = "/work"
			}
			if err := rt.Create(ctx, spec); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rt.Remove(context.Background(), spec.ID) })
			if err := rt.Start(ctx, spec.ID); err != nil {
				t.Fatal(err)
			}
			info := waitExited(t, rt, spec.ID)
			var buf bytes.Buffer
			if err := rt.Logs(ctx, spec.ID, &buf); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.want || info.ExitCode != 0 {
				t.Errorf("output %q exit %d, want %q exit 0", buf.String(), info.ExitCode, tc.want)
			}
		})
	}

	t.Run("cgroup-and-runc-root", func(t *testing.T) {
		spec := nodeagent.ContainerSpec{ID: "cfg-sleep", Image: img, Command: []string{"sleep", "1000"}}
		if err := rt.Create(ctx, spec); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rt.Remove(context.Background(), spec.ID) })
		if err := rt.Start(ctx, spec.ID); err != nil {
			t.Fatal(err)
		}
		info := find(t, rt, spec.ID)
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", info.Pid))
		if err != nil {
			t.Fatal(err)
		}
		if want := cfg.CgroupParent + "/" + spec.ID; !strings.Contains(string(cg), want) {
			t.Errorf("/proc/%d/cgroup does not mention %s:\n%s", info.Pid, want, cg)
		}
		if !dirExists(cfg.RuncRoot, spec.ID) {
			t.Errorf("no runc state for %s under RuncRoot %s", spec.ID, cfg.RuncRoot)
		}
	})
}

func TestErrorClasses(t *testing.T) {
	e := startEnv(t)
	rt, _ := e.newRuntime(t, "errs")
	ctx := t.Context()
	missing := e.reg.Addr() + "/moor/nope:1"
	if err := rt.PullImage(ctx, missing); !errdefs.IsNotFound(err) {
		t.Errorf("PullImage(missing) = %v, want NotFound", err)
	}
	spec := nodeagent.ContainerSpec{ID: "errs-1", Image: missing, Command: []string{"true"}}
	if err := rt.Create(ctx, spec); !errdefs.IsNotFound(err) {
		t.Errorf("Create with unpulled image = %v, want NotFound", err)
	}
	spec.ID = "bad/id"
	if err := rt.Create(ctx, spec); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Create with bad id = %v, want InvalidArgument", err)
	}
	if err := rt.Start(ctx, "errs-missing"); !errdefs.IsNotFound(err) {
		t.Errorf("Start(missing) = %v, want NotFound", err)
	}
	if err := rt.Stop(ctx, "errs-missing", time.Second); !errdefs.IsNotFound(err) {
		t.Errorf("Stop(missing) = %v, want NotFound", err)
	}
}

func find(t *testing.T, rt nodeagent.Runtime, id string) nodeagent.ContainerInfo {
	t.Helper()
	list, err := rt.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("%s not listed", id)
	return nodeagent.ContainerInfo{}
}

func waitExited(t *testing.T, rt nodeagent.Runtime, id string) nodeagent.ContainerInfo {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := find(t, rt, id)
		if c.State == nodeagent.StateExited {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not exit: %+v", id, c)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dirExists(root, name string) bool {
	found := false
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == name {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

// removeCgroup removes the (now empty) parent cgroup in every hierarchy.
func removeCgroup(parent string) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + parent)
	dirs = append(dirs, "/sys/fs/cgroup"+parent) // cgroup v2
	for _, d := range dirs {
		_ = os.Remove(d)
	}
}

// processesMentioning returns the command lines of processes whose command
// line contains s.
func processesMentioning(s string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if cmd := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmd, s) {
			out = append(out, e.Name()+": "+cmd)
		}
	}
	return out
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestDaemonStopKillsTasks checks containerdproc's guarantee: stopping the
// daemon kills its tasks, so no shim or container process is left.
func TestDaemonStopKillsTasks(t *testing.T) {
	e := startEnv(t)
	rt, _ := e.newRuntime(t, "stray")
	ctx := t.Context()
	if err := rt.PullImage(ctx, e.image); err != nil {
		t.Fatal(err)
	}
	spec := nodeagent.ContainerSpec{ID: "stray-1", Image: e.image, Command: []string{"sleep", "1000"}}
	if err := rt.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	pid := find(t, rt, spec.ID).Pid
	if len(processesMentioning(e.daemon.Socket())) == 0 {
		t.Fatal("no shim process found for the running container")
	}
	if err := e.daemon.Stop(ctx); err != nil {
		t.Fatalf("stop daemon: %v", err)
	}
	if strays := processesMentioning(e.daemon.Socket()); len(strays) > 0 {
		t.Errorf("processes left after Stop: %v", strays)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("container process %d still running after Stop", pid)
	}
}

// TestExecTimeoutKillsProcess: an exec whose context ends is killed, not
// left running in the container; one that cannot start fails.
func TestExecTimeoutKillsProcess(t *testing.T) {
	e := startEnv(t)
	rt, _ := e.newRuntime(t, "exec")
	ctx := t.Context()
	if err := rt.PullImage(ctx, e.image); err != nil {
		t.Fatal(err)
	}
	spec := nodeagent.ContainerSpec{ID: "exec-1", Image: e.image, Command: []string{"sleep", "1000"}}
	if err := rt.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Remove(context.Background(), spec.ID) })
	if err := rt.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	const marker = "sleep 4242"
	tctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := rt.Exec(tctx, spec.ID, nodeagent.ExecRequest{Cmd: strings.Fields(marker)}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Exec = %v, want a deadline error", err)
	}
	if left := processesMentioning(marker); len(left) > 0 {
		t.Errorf("exec process left running after its timeout: %v", left)
	}
	// A command that cannot start is an error, not an exit code.
	if code, err := rt.Exec(ctx, spec.ID, nodeagent.ExecRequest{Cmd: []string{"/no/such/binary"}}); err == nil {
		t.Errorf("Exec of a missing binary = %d, nil; want an error", code)
	} else {
		t.Logf("Exec of a missing binary: %v", err)
	}
	if c := find(t, rt, spec.ID); c.State != nodeagent.StateRunning {
		t.Errorf("container %s: %s, want running", spec.ID, c.State)
	}
}
