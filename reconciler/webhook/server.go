package webhook

import (
	"log/slog"
	"net/http"
	"time"
)

// Timeouts of the plain listener. Webhook deliveries are small and quick,
// so every phase is bounded (unlike the HTTPS API, whose long-polls rule
// out a ReadTimeout or WriteTimeout).
const (
	PlainReadHeaderTimeout = 5 * time.Second
	PlainReadTimeout       = 15 * time.Second
	PlainWriteTimeout      = 15 * time.Second
	PlainIdleTimeout       = 60 * time.Second
	PlainMaxHeaderBytes    = 32 << 10
)

// NewPlainServer returns an *http.Server for the optional plain-HTTP
// listener behind a reverse proxy that terminates TLS. Give it a handler
// serving only /hooks/ (and perhaps /healthz), never the API. The caller
// runs Serve and Shutdown.
func NewPlainServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.Default()
	}
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: PlainReadHeaderTimeout,
		ReadTimeout:       PlainReadTimeout,
		WriteTimeout:      PlainWriteTimeout,
		IdleTimeout:       PlainIdleTimeout,
		MaxHeaderBytes:    PlainMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.With("component", "webhook").Handler(), slog.LevelWarn),
	}
}
