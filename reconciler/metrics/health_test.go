package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestHealthAndReady(t *testing.T) {
	gate := NewGate("first-fetch", "no fetch has completed yet")
	var storeErr error = errors.New("store is closed")
	store := Check{Name: "store", Func: func(context.Context) error { return storeErr }}
	mux := http.NewServeMux()
	Register(mux, New(), store, gate.Check())

	tests := []struct {
		name   string
		setup  func()
		path   string
		status int
		body   []string
	}{
		{"healthz", func() {}, "/healthz", 200, []string{"ok"}},
		{"nothing ready", func() {}, "/readyz", 503, []string{"[-]store failed: store is closed", "[-]first-fetch failed: no fetch has completed yet", "readyz check failed"}},
		{"store open", func() { storeErr = nil }, "/readyz", 503, []string{"[+]store ok", "[-]first-fetch failed"}},
		{"all ready", gate.Open, "/readyz", 200, []string{"[+]store ok", "[+]first-fetch ok", "ok"}},
		{"metrics", func() {}, "/metrics", 200, []string{"# TYPE moor_push_to_running_seconds histogram"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			status, body := get(t, mux, tt.path)
			if status != tt.status {
				t.Fatalf("%s: %d, want %d\n%s", tt.path, status, tt.status, body)
			}
			for _, want := range tt.body {
				if !strings.Contains(body, want) {
					t.Errorf("%s body lacks %q:\n%s", tt.path, want, body)
				}
			}
		})
	}
	if !gate.IsOpen() {
		t.Fatal("gate not open")
	}
}

func TestRegisterWithoutMetrics(t *testing.T) {
	mux := http.NewServeMux()
	Register(mux, nil)
	if status, _ := get(t, mux, "/metrics"); status != 404 {
		t.Fatalf("/metrics without metrics: %d", status)
	}
	if status, body := get(t, mux, "/readyz"); status != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("/readyz with no checks: %d %q", status, body)
	}
}
