package secrets

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/moor-dev/moor/api"
)

// The tests run a real Vault: tools/vaultdev, built once per test binary
// (the Go build cache makes later builds fast), or the binary named by
// MOOR_VAULTDEV.

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// vaultdevBinary returns the vaultdev binary, building it on first use.
func vaultdevBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("MOOR_VAULTDEV"); p != "" {
			buildBin = p
			return
		}
		tool, err := filepath.Abs(filepath.Join("..", "tools", "vaultdev"))
		if err != nil {
			buildErr = err
			return
		}
		if buildDir, err = os.MkdirTemp("", "vaultdev-build-"); err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(buildDir, "vaultdev")
		cmd := exec.Command("go", "build", "-C", tool, "-o", buildBin, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build -C %s: %v\n%s", tool, err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build tools/vaultdev (set MOOR_VAULTDEV to a built binary to skip this): %v", buildErr)
	}
	return buildBin
}

// devVault is a running vaultdev.
type devVault struct {
	Addr      string `json:"addr"`
	RootToken string `json:"root_token"`
	UnsealKey string `json:"unseal_key"`

	bin, dataDir string
	cmd          *exec.Cmd
	root         *vaultapi.Client
}

// startVault starts vaultdev; dataDir "" keeps its storage in memory. It
// is stopped when the test ends.
func startVault(t *testing.T, dataDir string) *devVault {
	t.Helper()
	v, err := launchVault(vaultdevBinary(t), dataDir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.stop)
	return v
}

func launchVault(bin, dataDir, listen string) (*devVault, error) {
	args := []string{"--listen", listen}
	if dataDir != "" {
		args = append(args, "--data-dir", dataDir)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
	}()
	v := &devVault{bin: bin, dataDir: dataDir, cmd: cmd}
	select {
	case l, ok := <-line:
		if !ok {
			_ = cmd.Wait()
			return nil, fmt.Errorf("vaultdev exited before printing its address")
		}
		if err := json.Unmarshal([]byte(l), v); err != nil {
			v.stop()
			return nil, fmt.Errorf("vaultdev's line %q: %w", l, err)
		}
	case <-time.After(60 * time.Second):
		v.stop()
		return nil, fmt.Errorf("vaultdev printed nothing in 60s")
	}
	c, err := vaultapi.NewClient(&vaultapi.Config{Address: v.Addr, MaxRetries: 0, Timeout: 10 * time.Second})
	if err != nil {
		v.stop()
		return nil, err
	}
	c.SetToken(v.RootToken)
	v.root = c
	return v, nil
}

// stop ends vaultdev gracefully.
func (v *devVault) stop() {
	if v.cmd == nil || v.cmd.ProcessState != nil {
		return
	}
	_ = v.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = v.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = v.cmd.Process.Kill()
		<-done
	}
}

// kill ends vaultdev abruptly.
func (v *devVault) kill(t *testing.T) {
	t.Helper()
	if err := v.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = v.cmd.Wait()
}

// restart starts vaultdev again on the same address and data directory.
func (v *devVault) restart(t *testing.T) *devVault {
	t.Helper()
	u, err := url.Parse(v.Addr)
	if err != nil {
		t.Fatal(err)
	}
	var nv *devVault
	// The port was just freed; retry briefly should another bind race us.
	deadline := time.Now().Add(10 * time.Second)
	for {
		nv, err = launchVault(v.bin, v.dataDir, u.Host)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nv.stop)
	if nv.Addr != v.Addr || nv.RootToken != v.RootToken {
		t.Fatalf("restarted vault at %s with root token changed=%v, want %s and the same token", nv.Addr, nv.RootToken != v.RootToken, v.Addr)
	}
	return nv
}

func (v *devVault) write(t *testing.T, path string, data map[string]any) *vaultapi.Secret {
	t.Helper()
	s, err := v.root.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return s
}

func (v *devVault) kvPut(t *testing.T, path string, data map[string]any) {
	t.Helper()
	v.write(t, path, map[string]any{"data": data})
}

// nodeRole creates a policy letting the node read secret/data/<prefix>/*
// (with metadata) and leased paths under prefixes, and an AppRole role with
// it; it writes the role ID and a secret ID to files and returns a Config
// for that node.
func (v *devVault) nodeRole(t *testing.T, node string, roleOpts map[string]any, prefixes ...string) Config {
	t.Helper()
	var policy strings.Builder
	for _, p := range prefixes {
		fmt.Fprintf(&policy, "path %q { capabilities = [\"read\"] }\n", "secret/data/"+p+"/*")
		fmt.Fprintf(&policy, "path %q { capabilities = [\"read\"] }\n", "secret/metadata/"+p+"/*")
		fmt.Fprintf(&policy, "path %q { capabilities = [\"read\"] }\n", "leased/"+p+"/*")
		fmt.Fprintf(&policy, "path %q { capabilities = [\"read\"] }\n", "leased-short/"+p+"/*")
	}
	if err := v.root.Sys().PutPolicy(node, policy.String()); err != nil {
		t.Fatal(err)
	}
	role := map[string]any{"token_policies": node}
	for k, val := range roleOpts {
		role[k] = val
	}
	v.write(t, "auth/approle/role/"+node, role)
	rid, err := v.root.Logical().Read("auth/approle/role/" + node + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid := v.write(t, "auth/approle/role/"+node+"/secret-id", nil)
	dir := t.TempDir()
	roleFile, secretFile := filepath.Join(dir, "role-id"), filepath.Join(dir, "secret-id")
	if err := os.WriteFile(roleFile, []byte(rid.Data["role_id"].(string)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretFile, []byte(sid.Data["secret_id"].(string)), 0o600); err != nil {
		t.Fatal(err)
	}
	return Config{
		Address:        v.Addr,
		Auth:           AuthConfig{AppRole: &AppRoleAuth{RoleIDFile: roleFile, SecretIDFile: secretFile}},
		PollInterval:   200 * time.Millisecond,
		RequestTimeout: 3 * time.Second,
	}
}

// newManager returns a Manager for cfg logging to the test.
func newManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := New(cfg, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// run runs m until the test ends.
func run(t *testing.T, m *Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// eventually retries f until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitChange waits until m's Changes names ref and Get then returns
// values ok accepts. Changes of earlier reads may come first.
func waitChange(t *testing.T, m *Manager, ref api.SecretRef, timeout time.Duration, ok func(Values) bool) Values {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case k := <-m.Changes():
			if k != ref.Key() {
				continue
			}
			v, err := m.Get(context.Background(), ref, 0)
			if err != nil {
				t.Fatalf("Get %s after its change: %v", k, err)
			}
			if ok(v) {
				return v
			}
		case <-deadline:
			t.Fatalf("no change of %s within %v", ref.Key(), timeout)
		}
	}
}

// entryErr returns the last error recorded for key.
func entryErr(m *Manager, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[key]; ok {
		return e.err
	}
	return nil
}

func statusOf(m *Manager, name string) (st struct {
	Version int64
	Error   string
	Keys    []string
	Lease   time.Time
}) {
	for _, s := range m.Status() {
		if s.Name == name {
			st.Version, st.Error, st.Keys, st.Lease = s.Version, s.Error, s.Keys, s.LeaseExpires
		}
	}
	return st
}
