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
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/controller"
	"github.com/moor-dev/moor/reconciler/httpapi"
	"github.com/moor-dev/moor/reconciler/pki"
	"github.com/moor-dev/moor/reconciler/planner"
	"github.com/moor-dev/moor/reconciler/source"
	"github.com/moor-dev/moor/reconciler/store"
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
	Log     *slog.Logger
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
	handler   *httpapi.Handler
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
	if err := s.init(ctx); err != nil {
		ln.Close()
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
	hub := httpapi.NewHub()
	ctrl, err := controller.New(controller.Config{
		Source: src, Store: st, Publisher: hub, Signer: auth,
		Log: s.cfg.Log, PollInterval: s.cfg.PollInterval, Network: s.cfg.Network,
	})
	if err != nil {
		return err
	}
	if err := ctrl.Restore(ctx); err != nil {
		return fmt.Errorf("server: restore: %w", err)
	}
	s.ctrl = ctrl
	h, err := httpapi.New(httpapi.Config{Hub: hub, Joiner: ctrl, Status: ctrl, Admin: ctrl,
		Log: s.cfg.Log.With("component", "httpapi")})
	if err != nil {
		return err
	}
	s.handler = h
	return nil
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
	errc := make(chan error, 2)
	go func() { errc <- httpapi.Serve(ctx, s.ln, s.handler, s.authority.ServerTLSConfig(), s.cfg.Log) }()
	go func() { errc <- s.ctrl.Run(ctx) }()
	var first error
	for i := 0; i < 2; i++ {
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
