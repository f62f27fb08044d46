package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/internal/devenv/imagebuild"
	"github.com/moor-dev/moor/internal/devenv/registry"
	"github.com/moor-dev/moor/nodeagent"
	"github.com/moor-dev/moor/nodeagent/containerd"
	"github.com/moor-dev/moor/nodeagent/containerdproc"
)

// env is one test cluster: registry, containerd, git repo, server, agents.
type env struct {
	t       testing.TB
	ctx     context.Context
	dir     string
	moor    string // binary
	reg     *registry.Registry
	bare    string
	work    string
	server  *proc
	srvDir  string
	srvURL  string
	socket  string
	runtime *containerd.Runtime
}

// requireRoot skips unless the test can run real containers.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("end-to-end tests run containers and need root (CI runs them as root)")
	}
	for _, b := range []string{"containerd", "runc", "git", "docker-registry", "busybox"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s is not installed: run hack/install-deps.sh", b)
		}
	}
}

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// moorBinary builds cmd/moor once per test binary.
func moorBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "moor-e2e-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "moor")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, "../cmd/moor").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

func newEnv(t testing.TB) *env {
	requireRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, dir: t.TempDir(), moor: moorBinary(t)}

	reg, err := registry.Start(ctx, registry.Config{Dir: filepath.Join(e.dir, "registry")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Stop() })
	e.reg = reg

	e.socket, e.runtime = startContainerd(t, ctx, containerdproc.Config{Dir: filepath.Join(e.dir, "containerd")},
		containerd.Config{RuncRoot: filepath.Join(e.dir, "agent-node-a", "runc"), InsecureRegistries: []string{reg.Addr()}})
	e.initRepo()
	return e
}

// newNodeEnv is a cluster of one node, node-a, running manifests(image)
// from a commit of <tag>.yaml, with image the demo image variant tag.
func newNodeEnv(t testing.TB, tag string, manifests func(image string) string) *env {
	e := newEnv(t)
	e.push(tag, map[string]string{tag + ".yaml": manifests(e.image(tag))})
	e.startServer()
	e.startAgent("node-a")
	e.mustCLI("sync")
	return e
}

// startContainerd starts a private containerd as pc says and connects to
// it as cc says (Address set here). When the test ends it stops and
// removes the containers left running, then containerd.
func startContainerd(t testing.TB, ctx context.Context, pc containerdproc.Config, cc containerd.Config) (string, *containerd.Runtime) {
	t.Helper()
	d, err := containerdproc.Start(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	cc.Address = d.Socket()
	rt, err := containerd.New(ctx, cc)
	if err != nil {
		_ = d.Stop(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if cs, err := rt.List(cctx); err == nil {
			for _, c := range cs {
				_ = rt.Stop(cctx, c.ID, time.Second)
				_ = rt.Remove(cctx, c.ID)
			}
		}
		rt.Close()
		_ = d.Stop(cctx)
	})
	return cc.Address, rt
}

// initRepo creates the bare repository the server reads (branch main)
// and the working clone push commits in.
func (e *env) initRepo() {
	e.bare = filepath.Join(e.dir, "repo.git")
	e.git("", "init", "-q", "--bare", "--initial-branch=main", e.bare)
	e.work = filepath.Join(e.dir, "work")
	e.git("", "clone", "-q", e.bare, e.work)
	e.git(e.work, "checkout", "-q", "-b", "main")
}

// image pushes a demo image variant and returns its reference.
func (e *env) image(tag string) string {
	spec := imagebuild.DemoSpec(e.reg.Addr())
	spec.Tag = tag
	spec.Env = append(spec.Env, "DEMO_VARIANT="+tag)
	if _, err := imagebuild.Push(e.ctx, spec); err != nil {
		e.t.Fatal(err)
	}
	return spec.Ref()
}

func (e *env) git(dir string, args ...string) string {
	e.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=e2e", "-c", "user.email=e2e@test"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// push writes files (nil content deletes), commits and pushes; it returns the commit.
func (e *env) push(msg string, files map[string]string) string {
	e.t.Helper()
	for name, content := range files {
		p := filepath.Join(e.work, name)
		if content == "" {
			os.Remove(p)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	e.git(e.work, "add", "-A")
	e.git(e.work, "commit", "-q", "--allow-empty", "-m", msg)
	e.git(e.work, "push", "-q", "origin", "main")
	return strings.TrimSpace(e.git(e.work, "rev-parse", "HEAD"))
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a moor process started by the test.
type proc struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

func (e *env) start(name string, args ...string) *proc {
	e.t.Helper()
	return e.startCmd(name, exec.Command(e.moor, args...))
}

// startCmd starts cmd in its own process group with its output in
// <name>.log, stops it when the test ends and shows the log's tail when
// the test failed.
func (e *env) startCmd(name string, cmd *exec.Cmd) *proc {
	e.t.Helper()
	logf, err := os.Create(filepath.Join(e.dir, name+".log"))
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	e.t.Cleanup(func() {
		p.stop()
		if e.t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			e.t.Logf("--- %s log ---\n%s", name, tail(string(b), 80))
		}
	})
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop sends SIGTERM and waits.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// startServer starts the server on loopback, polling hourly.
func (e *env) startServer() { e.startServerOn("127.0.0.1", "--poll-interval", "1h") }

// startServerOn starts the server on a free port of host, advertising
// that address, with extra flags, and waits until it has written its
// admin config.
func (e *env) startServerOn(host string, extra ...string) {
	e.t.Helper()
	e.srvDir = filepath.Join(e.dir, "server")
	addr := net.JoinHostPort(host, strconv.Itoa(freePort(e.t)))
	e.srvURL = "https://" + addr
	args := []string{"server", "--repo", "file://" + e.bare, "--branch", "main", "--data-dir", e.srvDir,
		"--listen", addr, "--advertise-url", e.srvURL}
	e.server = e.start("server", append(args, extra...)...)
	e.eventually(10*time.Second, "server writes its admin config", func() error {
		_, err := os.Stat(e.adminConf())
		return err
	})
}

// adminConf is the admin config the server wrote.
func (e *env) adminConf() string { return filepath.Join(e.srvDir, "admin.conf") }

// startAgent starts node name's agent; extra are more flags.
func (e *env) startAgent(name string, extra ...string) *proc {
	args := []string{"agent", "--server", e.srvURL,
		"--token-file", filepath.Join(e.srvDir, "token"), "--name", name,
		"--data-dir", filepath.Join(e.dir, "agent-"+name), "--containerd", e.socket,
		"--runc-root", filepath.Join(e.dir, "agent-"+name, "runc"),
		"--insecure-registry", e.reg.Addr(), "--poll-wait", "5s",
		// Host network: these single-node tests share the host's network
		// namespace; TestMultiNode covers the pod network.
		"--pod-network=false"}
	return e.start("agent-"+name, append(args, extra...)...)
}

// cliCmd is `moor args...` against the test server, killed when ctx ends.
func (e *env) cliCmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, e.moor, append([]string{"--config", e.adminConf()}, args...)...)
}

// cli runs a CLI verb against the test server and returns stdout.
func (e *env) cli(args ...string) (string, error) {
	cmd := e.cliCmd(e.ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("moor %v: %v: %s%s", args, err, out.String(), errb.String())
	}
	return out.String(), nil
}

func (e *env) mustCLI(args ...string) string {
	e.t.Helper()
	out, err := e.cli(args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// pods returns the pods as `moor get pods -A -o json` lists them.
func (e *env) pods() []corev1.Pod {
	e.t.Helper()
	return getList[corev1.Pod](e, "pods")
}

// podsOf returns the pods whose names start with prefix.
func (e *env) podsOf(prefix string) []corev1.Pod {
	e.t.Helper()
	var out []corev1.Pod
	for _, p := range e.pods() {
		if strings.HasPrefix(p.Name, prefix) {
			out = append(out, p)
		}
	}
	return out
}

// getList returns the objects `moor get resource -A -o json` lists.
func getList[T any](e *env, resource string) []T {
	e.t.Helper()
	var list struct {
		Kind  string `json:"kind"`
		Items []T    `json:"items"`
	}
	if err := json.Unmarshal([]byte(e.mustCLI("get", resource, "-A", "-o", "json")), &list); err != nil {
		e.t.Fatal(err)
	}
	if list.Kind != "List" {
		e.t.Fatalf("get %s -o json: kind %q, want List", resource, list.Kind)
	}
	return list.Items
}

// containers lists containerd's containers with their state.
func (e *env) containers() []nodeagent.ContainerInfo {
	e.t.Helper()
	cs, err := e.runtime.List(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return cs
}

func (e *env) eventually(timeout time.Duration, what string, f func() error) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("timed out after %s waiting until %s: %v", timeout, what, err)
}
