package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/spf13/cobra"
)

// `moor dashboard` serves a read-only web view of the cluster on a
// loopback address, as `kubectl proxy` does: the local process holds the
// admin client certificate and asks the server's admin API, so the browser
// needs no certificate and the server gains no new endpoint.

// Defaults of `moor dashboard`.
const (
	defaultDashboardListen  = "127.0.0.1:8001"
	defaultDashboardRefresh = 2 * time.Second
	// defaultDashboardTimeout bounds the server requests of one page when
	// --request-timeout is unset.
	defaultDashboardTimeout = 10 * time.Second
	// dashboardShutdown is how long open requests get to finish on Ctrl-C.
	dashboardShutdown = 5 * time.Second
)

// dashboardConfig is a parsed `moor dashboard` invocation.
type dashboardConfig struct {
	// Listen is the loopback host:port to serve on.
	Listen string
	// Refresh is how often the pages reload themselves; 0 never.
	Refresh time.Duration
	// Timeout bounds the server requests behind one page.
	Timeout time.Duration
}

// Validate checks that the dashboard listens on loopback only and that
// the refresh period is one a page can express.
func (c *dashboardConfig) Validate() error {
	if err := checkLoopbackListen(c.Listen); err != nil {
		return err
	}
	if c.Refresh != 0 && c.Refresh < time.Second {
		return fmt.Errorf("--refresh %s: want 0 (no auto-refresh) or at least 1s", c.Refresh)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("request timeout must be positive, got %s", c.Timeout)
	}
	return nil
}

// checkLoopbackListen accepts "localhost:PORT" and loopback IP literals
// only: the dashboard acts with the admin certificate, so anyone who can
// reach it is an admin.
func checkLoopbackListen(listen string) error {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT, e.g. %s: %w", listen, defaultDashboardListen, err)
	}
	if port == "" {
		return fmt.Errorf("--listen %q: no port; want e.g. %s", listen, defaultDashboardListen)
	}
	if !loopbackHost(host) {
		return fmt.Errorf("--listen %q: the dashboard serves with the admin certificate, so it listens on loopback only "+
			"(127.0.0.1, [::1] or localhost); to view it from another machine use an SSH tunnel: ssh -L 8001:127.0.0.1:8001 HOST", listen)
	}
	return nil
}

// loopbackHost reports whether host is "localhost" or a loopback IP
// literal. An empty host (all interfaces) is not.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// dashboardTarget names the cluster the dashboard shows, for its header.
type dashboardTarget struct {
	Context string
	Server  string
}

// NewDashboardCommand returns `moor dashboard`.
func NewDashboardCommand(s Streams) *cobra.Command {
	return newDashboardCommand(s, connectDashboard)
}

// connectDashboard builds the admin client of the selected context.
func connectDashboard(o Options) (viewReader, dashboardTarget, error) {
	rc, err := LoadContext(o)
	if err != nil {
		return nil, dashboardTarget{}, err
	}
	c, err := NewClient(rc)
	if err != nil {
		return nil, dashboardTarget{}, err
	}
	return c, dashboardTarget{Context: rc.Name, Server: rc.Cluster.Server}, nil
}

func newDashboardCommand(s Streams, connect func(Options) (viewReader, dashboardTarget, error)) *cobra.Command {
	cfg := dashboardConfig{}
	cmd := &cobra.Command{
		Use:   "dashboard [--listen 127.0.0.1:8001] [--refresh 2s]",
		Short: "Serve a read-only web dashboard of the cluster on localhost",
		Long: "Serve a read-only web dashboard on a loopback address, like kubectl proxy: what runs where, " +
			"which commit each node has reached, deployments, services, jobs, secrets (never values) and commits. " +
			"The dashboard asks the server with the context's admin certificate, so the browser needs none; " +
			"for that reason it listens on loopback only.",
		Example:      "  moor dashboard\n  moor dashboard --listen 127.0.0.1:9000 --refresh 5s\n  moor dashboard --refresh 0   # no auto-refresh",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := optionsFrom(cmd)
			if err != nil {
				return err
			}
			cfg.Timeout = timeoutOr(o.Timeout, defaultDashboardTimeout)
			if err := cfg.Validate(); err != nil {
				return err
			}
			r, target, err := connect(o)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(s.ErrOut, nil)).With("component", "dashboard")
			return runDashboard(cmd.Context(), cfg, r, target, s, log)
		},
	}
	cmd.Flags().StringVar(&cfg.Listen, "listen", defaultDashboardListen, "loopback address to serve on (HOST:PORT; port 0 picks one)")
	cmd.Flags().DurationVar(&cfg.Refresh, "refresh", defaultDashboardRefresh, "how often the pages reload themselves (0: never)")
	return cmd
}

// runDashboard serves until ctx ends, then lets open requests finish.
func runDashboard(ctx context.Context, cfg dashboardConfig, r viewReader, target dashboardTarget, s Streams, log *slog.Logger) error {
	h, err := newDashboardHandler(dashboardHandlerConfig{Reader: r, Target: target, Refresh: cfg.Refresh,
		Timeout: cfg.Timeout, Now: time.Now, Log: log})
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("dashboard: listen on %s: %w", cfg.Listen, err)
	}
	// "localhost" could resolve to something else; check what we bound.
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err != nil || !ap.Addr().Unmap().IsLoopback() {
		_ = ln.Close()
		return fmt.Errorf("dashboard: --listen %s bound %s, which is not a loopback address; pass 127.0.0.1:PORT", cfg.Listen, ln.Addr())
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	fmt.Fprintf(s.Out, "Serving the dashboard of context %q (%s) on http://%s/ ; press Ctrl-C to stop\n", target.Context, target.Server, ln.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("dashboard: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dashboardShutdown)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("dashboard: shut down: %w", err)
	}
	return nil
}
