package metrics

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// checkTimeout bounds each readiness check.
const checkTimeout = 2 * time.Second

// Check is one named readiness condition. Func returns nil when ready, or
// an error saying what is missing.
type Check struct {
	Name string
	Func func(context.Context) error
}

// Healthz answers 200 "ok" while the process serves HTTP.
func Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintln(w, "ok")
	})
}

// Readyz runs every check (each within 2s) and answers 200 when all pass,
// else 503. The body lists each check, Kubernetes style:
//
//	[+]store ok
//	[-]first-fetch failed: no fetch has completed yet
//	readyz check failed
func Readyz(checks ...Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		failed := false
		for _, c := range checks {
			ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
			err := c.Func(ctx)
			cancel()
			if err != nil {
				failed = true
				fmt.Fprintf(&b, "[-]%s failed: %v\n", c.Name, err)
			} else {
				fmt.Fprintf(&b, "[+]%s ok\n", c.Name)
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if failed {
			w.WriteHeader(http.StatusServiceUnavailable)
			b.WriteString("readyz check failed\n")
		} else {
			b.WriteString("ok\n")
		}
		fmt.Fprint(w, b.String())
	})
}

// Gate is a readiness condition that starts closed and opens once, e.g.
// "the first fetch has completed". Safe for concurrent use.
type Gate struct {
	name, waiting string
	open          atomic.Bool
}

// NewGate returns a closed gate; waiting says what it waits for.
func NewGate(name, waiting string) *Gate { return &Gate{name: name, waiting: waiting} }

// Open marks the condition met. Later calls do nothing.
func (g *Gate) Open() { g.open.Store(true) }

// IsOpen reports whether Open was called.
func (g *Gate) IsOpen() bool { return g.open.Load() }

// Check returns the gate as a readiness check.
func (g *Gate) Check() Check {
	return Check{Name: g.name, Func: func(context.Context) error {
		if g.open.Load() {
			return nil
		}
		return fmt.Errorf("%s", g.waiting)
	}}
}

// Register mounts GET /metrics (when m is not nil), GET /healthz and
// GET /readyz on mux. Authorisation, if any, is the caller's: wrap mux.
func Register(mux *http.ServeMux, m *Metrics, checks ...Check) {
	if m != nil {
		mux.Handle("GET /metrics", m.Handler())
	}
	mux.Handle("GET /healthz", Healthz())
	mux.Handle("GET /readyz", Readyz(checks...))
}
