// Package server assembles the reconciler from its parts: the PKI, the
// state store, the Git source, the controller and the HTTPS API. It owns
// the data directory's layout and the process lifetime of the reconciler;
// the logic lives in the packages it wires.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/controller"
	"github.com/moor-dev/moor/reconciler/httpapi"
	"github.com/moor-dev/moor/reconciler/metrics"
	"github.com/moor-dev/moor/reconciler/pki"
	"github.com/moor-dev/moor/reconciler/planner"
	"github.com/moor-dev/moor/reconciler/source"
	"github.com/moor-dev/moor/reconciler/store"
	"github.com/moor-dev/moor/reconciler/webhook"
)

// Config configures a reconciler.
type Config struct {
	Source  source.Config // Dir defaults to <DataDir>/git
	DataDir string
	// Listen is the HTTPS address (default ":7443").
	Listen string
	// AdvertiseURL is the URL written to admin.conf (default
	// https://127.0.0.1:<port>).
	AdvertiseURL string
	// Hosts are extra names and IPs for the serving certificate.
	Hosts        []string
	PollInterval time.Duration
	// Network is the cluster network: pod CIDR, node CIDR size, service
	// CIDR and node port range (zero fields take their defaults).
	Network planner.NetworkConfig
	// WebhookSecretsFile holds per-provider webhook secrets (YAML or
	// JSON); MOOR_WEBHOOK_<PROVIDER>_SECRET variables override it. With
	// no secrets at all, /hooks/ is not served.
	WebhookSecretsFile string
	// WebhookListen optionally serves /hooks/ and health endpoints over
	// plain HTTP too, for a TLS-terminating reverse proxy.
	WebhookListen string
	// AllowPlainSecrets (--allow-plain-secrets) accepts Secrets with data
	// or stringData and sends their values to the nodes. For development
	// only: the values sit in Git and in the reconciler's state. Without
	// it such Secrets are rejected and must name a Vault path.
	AllowPlainSecrets bool
	Log               *slog.Logger
}

// Validate checks the configuration and fills in defaults.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("server: --data-dir is required")
	}
	if c.Listen == "" {
		c.Listen = ":7443"
	}
	if c.Source.Dir == "" {
		c.Source.Dir = filepath.Join(c.DataDir, "git")
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if err := c.Network.Validate(); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return c.Source.Validate()
}

// Paths of the files a server keeps in its data directory.
func TokenPath(dataDir string) string       { return filepath.Join(dataDir, "token") }
func AdminConfigPath(dataDir string) string { return filepath.Join(dataDir, "admin.conf") }

// Server is a running reconciler.
type Server struct {
	cfg       Config
	ctrl      *controller.Controller
	ln        net.Listener
	url       string
	store     *store.Store
	closeOnce sync.Once
	authority *pki.Authority
	hooks     http.Handler // nil without webhook secrets
	trigger   *webhook.Trigger
	ready     *metrics.Gate
	plainLn   net.Listener // WebhookListen, when set
	handler   http.Handler
}

// Start prepares the data directory, restores state and listens. Run
// serves until ctx ends.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: data dir: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("server: listen on %s: %w", cfg.Listen, err)
	}
	s := &Server{cfg: cfg, ln: ln}
	if cfg.WebhookListen != "" {
		if s.plainLn, err = net.Listen("tcp", cfg.WebhookListen); err != nil {
			ln.Close()
			return nil, fmt.Errorf("server: listen on %s: %w", cfg.WebhookListen, err)
		}
	}
	if err := s.init(ctx); err != nil {
		ln.Close()
		if s.plainLn != nil {
			s.plainLn.Close()
		}
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *Server) init(ctx context.Context) error {
	port := s.ln.Addr().(*net.TCPAddr).Port
	s.url = s.cfg.AdvertiseURL
	if s.url == "" {
		s.url = fmt.Sprintf("https://127.0.0.1:%d", port)
	}
	hosts := append([]string(nil), s.cfg.Hosts...)
	if u, err := url.Parse(s.url); err == nil && u.Hostname() != "" {
		hosts = append(hosts, u.Hostname())
	}
	auth, err := pki.LoadOrCreate(filepath.Join(s.cfg.DataDir, "pki"), hosts)
	if err != nil {
		return fmt.Errorf("server: pki: %w", err)
	}
	s.authority = auth
	if err := writeFile(TokenPath(s.cfg.DataDir), []byte(auth.Token().String()+"\n")); err != nil {
		return err
	}
	cert, key := auth.AdminPEM()
	conf, err := api.NewAdminConfig(s.url, auth.CAPEM(), cert, key).Marshal()
	if err != nil {
		return err
	}
	if err := writeFile(AdminConfigPath(s.cfg.DataDir), conf); err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(s.cfg.DataDir, "state.db"))
	if err != nil {
		return fmt.Errorf("server: state store: %w", err)
	}
	s.store = st
	src, err := source.New(s.cfg.Source, s.cfg.Log.With("component", "source"))
	if err != nil {
		return fmt.Errorf("server: git source: %w", err)
	}
	if s.cfg.AllowPlainSecrets {
		s.cfg.Log.Warn("plain Secrets are allowed: their values sit in Git and in the server's state; use this for development only",
			"component", "server", "flag", "--allow-plain-secrets")
	}
	hub := httpapi.NewHub()
	m := metrics.New()
	s.ready = metrics.NewGate("first-sync", "no sync of the branch has succeeded yet")
	ctrl, err := controller.New(controller.Config{
		Source: src, Store: st, Publisher: hub, Signer: auth,
		Log: s.cfg.Log, PollInterval: s.cfg.PollInterval, Network: s.cfg.Network, Metrics: m,
		AllowPlainSecrets: s.cfg.AllowPlainSecrets,
		OnSync: func(res api.SyncResponse, err error, took time.Duration) {
			m.ObserveSync(syncResult(res, err), took)
			if err == nil {
				s.ready.Open()
			}
		},
	})
	if err != nil {
		return err
	}
	if err := ctrl.Restore(ctx); err != nil {
		return fmt.Errorf("server: restore: %w", err)
	}
	s.ctrl = ctrl
	h, err := httpapi.New(httpapi.Config{Hub: hub, Joiner: ctrl, Status: ctrl, Admin: ctrl, Batch: ctrl,
		Log: s.cfg.Log.With("component", "httpapi")})
	if err != nil {
		return err
	}
	s.handler, s.trigger, err = s.edge(h, ctrl, m)
	return err
}

// URL is the server's advertised HTTPS URL.
func (s *Server) URL() string { return s.url }

// Token is the join token agents use.
func (s *Server) Token() string { return s.authority.Token().String() }

// Run serves the API and polls Git until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	defer s.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.cfg.Log.Info("moor server listening", "url", s.url, "admin-config", AdminConfigPath(s.cfg.DataDir))
	errc := make(chan error, 4)
	n := 3
	go func() { errc <- httpapi.Serve(ctx, s.ln, s.handler, s.authority.ServerTLSConfig(), s.cfg.Log) }()
	go func() { errc <- s.ctrl.Run(ctx) }()
	go func() { errc <- s.trigger.Run(ctx) }()
	if s.plainLn != nil {
		n++
		go func() { errc <- s.servePlain(ctx) }()
	}
	var first error
	for i := 0; i < n; i++ {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel() // one half failed: stop the other
		}
	}
	return first
}

func (s *Server) close() {
	s.closeOnce.Do(func() {
		if s.store != nil {
			s.store.Close()
		}
	})
}

func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("server: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("server: write %s: %w", path, err)
	}
	return nil
}
