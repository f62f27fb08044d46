package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/containerd/errdefs"
)

// Server timeouts. There is deliberately no ReadTimeout or WriteTimeout:
// long-polls outlast them, and net/http cancels a request whose
// connection read deadline passes. Handlers set per-request deadlines.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	shutdownTimeout   = 10 * time.Second
)

// Serve serves h over TLS on ln until ctx ends, then shuts down
// gracefully: it stops accepting, ends long-polls (their requests derive
// from ctx, so they answer 304 at once) and waits up to shutdownTimeout
// for in-flight requests. It returns nil after a clean shutdown.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, tlsConf *tls.Config, log *slog.Logger) error {
	if tlsConf == nil {
		return fmt.Errorf("httpapi: serve: %w: TLS configuration is required", errdefs.ErrInvalidArgument)
	}
	if log == nil {
		log = slog.Default().With("component", "httpapi")
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsConf.Clone(),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("httpapi: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("graceful shutdown timed out; closing connections", "err", err)
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("httpapi: serve on %s: %w", ln.Addr(), err)
	}
	return nil
}
