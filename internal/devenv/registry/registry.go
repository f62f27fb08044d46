// Package registry runs a throwaway OCI distribution registry (Debian's
// docker-registry, distribution v2) as a child process on loopback, for
// `moor up` and for tests that need to pull images without the network.
//
// It owns the registry's config file, its htpasswd file (with Config.Users),
// its storage directory under Config.Dir and the lifetime of the child
// process. It does not build or push images (see imagebuild) and never
// touches the system-wide docker-registry service, its config in /etc or
// its port.
package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// DefaultBinary is where Debian's docker-registry package installs the server.
const DefaultBinary = "/usr/bin/docker-registry"

// ErrBinaryMissing is returned (wrapped) when the registry binary is not found.
var ErrBinaryMissing = errors.New("docker-registry binary not found")

// Config configures a registry. The zero value except Dir is usable.
type Config struct {
	// Dir holds config.yml, the storage root (Dir/data) and registry.log.
	// Required; created when missing.
	Dir string
	// Addr is the loopback listen address. "127.0.0.1:0" (the default)
	// picks a free port.
	Addr string
	// Binary is the docker-registry executable; default: docker-registry
	// from $PATH, then DefaultBinary.
	Binary string
	// Log receives lifecycle messages; default: discard.
	Log *slog.Logger
	// StartTimeout bounds the wait for GET /v2/ to answer; default 15s.
	StartTimeout time.Duration
	// Users, name → password, turns on HTTP basic authentication (the
	// registry's htpasswd backend) for every request, pulls included.
	// Debian's docker-registry accepts basic auth over plain HTTP, so the
	// registry stays on loopback HTTP. Nil: no authentication.
	Users map[string]string
}

// withDefaults returns a copy of c with defaults filled in.
func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if c.Binary == "" {
		if p, err := exec.LookPath("docker-registry"); err == nil {
			c.Binary = p
		} else {
			c.Binary = DefaultBinary
		}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 15 * time.Second
	}
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("registry: Config.Dir is required (it holds config.yml and the image storage)")
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("registry: Config.Addr %q: want host:port such as 127.0.0.1:5310: %w", c.Addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("registry: Config.Addr %q: the registry serves plain HTTP, so it must listen on a loopback IP such as 127.0.0.1", c.Addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("registry: Config.Addr %q: port must be a number 0-65535", c.Addr)
	}
	for user, pass := range c.Users {
		if user == "" || strings.ContainsAny(user, ":\n") {
			return fmt.Errorf("registry: Config.Users: user name %q must be non-empty without ':' or newlines", user)
		}
		if pass == "" {
			return fmt.Errorf("registry: Config.Users: user %q needs a password", user)
		}
	}
	return nil
}

// Registry is a running registry child process.
type Registry struct {
	addr string
	log  *slog.Logger
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // exit error, valid after done

	// user and password authenticate the readiness check; empty without
	// Config.Users.
	user, password string

	stopOnce sync.Once
	stopErr  error
}

// Start writes the registry's config, starts it and waits until
// GET http://Addr/v2/ answers 200. ctx bounds only the start; the process
// runs until Stop (and is killed if this process dies, via Pdeathsig).
func Start(ctx context.Context, cfg Config) (*Registry, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(cfg.Binary); err != nil {
		return nil, fmt.Errorf("registry: %w at %s (install the docker-registry package, or run hack/install-deps.sh): %w", ErrBinaryMissing, cfg.Binary, err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "data"), 0o755); err != nil {
		return nil, fmt.Errorf("registry: create storage dir: %w", err)
	}
	_, port, _ := net.SplitHostPort(cfg.Addr)
	attempts := 1
	if port == "0" {
		attempts = 3 // a port picked by us may be taken before the registry binds it
	}
	var lastErr error
	for i := 0; i < attempts; i++ {
		addr, err := resolveAddr(cfg.Addr)
		if err != nil {
			return nil, err
		}
		r, err := startOnce(ctx, cfg, addr)
		if err == nil {
			return r, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// resolveAddr replaces port 0 with a port that is free right now.
func resolveAddr(addr string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	if port != "0" {
		return addr, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("registry: find a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startOnce(ctx context.Context, cfg Config, addr string) (*Registry, error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("registry: random http secret: %w", err)
	}
	htpasswd := ""
	if len(cfg.Users) > 0 {
		htpasswd = filepath.Join(cfg.Dir, "htpasswd")
		b, err := renderHtpasswd(cfg.Users)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(htpasswd, b, 0o600); err != nil {
			return nil, fmt.Errorf("registry: write htpasswd: %w", err)
		}
	}
	confPath := filepath.Join(cfg.Dir, "config.yml")
	conf := renderConfig(filepath.Join(cfg.Dir, "data"), addr, hex.EncodeToString(secret), htpasswd)
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		return nil, fmt.Errorf("registry: write config: %w", err)
	}
	logPath := filepath.Join(cfg.Dir, "registry.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("registry: open log: %w", err)
	}
	defer logf.Close() // the child holds its own descriptor

	cmd := exec.Command(cfg.Binary, "serve", confPath)
	cmd.Dir = cfg.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// No proxies or other ambient settings: the registry only serves loopback.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + cfg.Dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("registry: start %s: %w", cfg.Binary, err)
	}
	r := &Registry{addr: addr, log: cfg.Log, cmd: cmd, done: make(chan struct{})}
	r.user, r.password = firstUser(cfg.Users)
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	cfg.Log.Debug("registry starting", "addr", addr, "pid", cmd.Process.Pid, "dir", cfg.Dir)

	wctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if err := r.waitReady(wctx); err != nil {
		_ = r.Stop()
		return nil, fmt.Errorf("registry: %s did not become ready on %s: %w (see %s)", cfg.Binary, addr, err, logPath)
	}
	cfg.Log.Info("registry ready", "addr", addr, "pid", cmd.Process.Pid)
	return r, nil
}

// renderConfig is the registry's config.yml: filesystem storage, plain HTTP
// on addr, deletes enabled, no health checks, notifications or reporting
// (nothing that could reach the network), and basic authentication against
// the htpasswd file when it is not empty.
func renderConfig(dataDir, addr, secret, htpasswd string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `version: 0.1
log:
  level: info
  accesslog:
    disabled: true
  fields:
    service: moor-registry
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
  headers:
    X-Content-Type-Options: [nosniff]
`, strconv.Quote(dataDir), strconv.Quote(addr), secret)
	if htpasswd != "" {
		fmt.Fprintf(&b, `auth:
  htpasswd:
    realm: moor-registry
    path: %s
`, strconv.Quote(htpasswd))
	}
	return b.Bytes()
}

// renderHtpasswd is an htpasswd file of users with bcrypt hashes (the only
// format the registry accepts), sorted by name. The registry checks the
// hash on every request, so the cost is bcrypt's minimum: this is a
// loopback development registry and the file is private to it.
func renderHtpasswd(users map[string]string) ([]byte, error) {
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, u := range names {
		h, err := bcrypt.GenerateFromPassword([]byte(users[u]), bcrypt.MinCost)
		if err != nil {
			return nil, fmt.Errorf("registry: hash the password of %q: %w", u, err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	return b.Bytes(), nil
}

// firstUser is the first user by name and its password, "" without users.
func firstUser(users map[string]string) (string, string) {
	var first string
	for u := range users {
		if first == "" || u < first {
			first = u
		}
	}
	return first, users[first]
}

// waitReady polls GET /v2/ until it answers 200, the process exits or ctx ends.
func (r *Registry) waitReady(ctx context.Context) error {
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: time.Second}
	defer client.CloseIdleConnections()
	url := "http://" + r.addr + "/v2/"
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if r.user != "" {
			req.SetBasicAuth(r.user, r.password)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-r.done:
			return fmt.Errorf("process exited early: %v", r.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Addr is the registry's listen address, "127.0.0.1:PORT".
func (r *Registry) Addr() string { return r.addr }

// Done is closed when the registry process has exited.
func (r *Registry) Done() <-chan struct{} { return r.done }

// Stop terminates the registry (SIGTERM, then SIGKILL after 5s) and waits
// for it to exit. It is idempotent and safe for concurrent use.
func (r *Registry) Stop() error {
	r.stopOnce.Do(func() {
		select {
		case <-r.done:
			return // already exited
		default:
		}
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			r.log.Warn("registry ignored SIGTERM; killing", "pid", r.cmd.Process.Pid)
			_ = r.cmd.Process.Kill()
			<-r.done
		}
		r.log.Debug("registry stopped", "addr", r.addr)
	})
	return r.stopErr
}
