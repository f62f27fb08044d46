package containerdproc

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func TestRenderConfigGolden(t *testing.T) {
	cfg := Config{Dir: "/var/lib/moor/node-a/containerd"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	got := renderConfig(cfg)
	golden := filepath.Join("testdata", "config.toml.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("config.toml differs from %s (run with -update if intended):\n%s", golden, got)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "missing dir", cfg: Config{}, wantErr: "Config.Dir is required"},
		{name: "socket too long", cfg: Config{Dir: "/tmp/" + strings.Repeat("x", 100)}, wantErr: "too long"},
		{name: "defaults", cfg: Config{Dir: "/tmp/d"}, check: func(t *testing.T, c Config) {
			if c.Socket != "/tmp/d/containerd.sock" || c.Binary != "containerd" || c.Log == nil || c.StartTimeout == 0 {
				t.Errorf("defaults not filled: %+v", c)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Validate() = %v, want error mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, tc.cfg)
		})
	}
}

// requireDaemonEnv skips unless the test can run a real containerd.
func requireDaemonEnv(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: running a containerd daemon needs root")
	}
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Skip("skipping: containerd binary not in PATH")
	}
}

func TestStartVersionStop(t *testing.T) {
	requireDaemonEnv(t)
	ctx := context.Background()
	dir := shortTempDir(t)
	d, err := Start(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	pid := d.Pid()

	c, err := containerd.New(d.Socket())
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Version(ctx)
	c.Close()
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	if v.Version == "" {
		t.Errorf("empty version")
	}

	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := d.Stop(stopCtx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := d.Stop(stopCtx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("containerd pid %d still exists after Stop", pid)
	}
	if strays := processesMentioning(t, dir); len(strays) > 0 {
		t.Errorf("processes left referring to %s: %v", dir, strays)
	}
}

func TestStartFailsClearly(t *testing.T) {
	requireDaemonEnv(t)
	dir := shortTempDir(t)
	// A directory where the socket should go makes containerd fail to listen.
	sock := filepath.Join(dir, "sock")
	if err := os.MkdirAll(filepath.Join(sock, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := Start(ctx, Config{Dir: dir, Socket: sock, StartTimeout: 10 * time.Second})
	if err == nil {
		t.Fatal("Start succeeded with an unusable socket path")
	}
	t.Log(err)
}

// shortTempDir returns a temporary directory with a short path, because unix
// socket paths are limited to 107 bytes and t.TempDir paths can be long.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctrd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// processesMentioning returns the command lines of processes whose command
// line contains s.
func processesMentioning(t *testing.T, s string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
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
