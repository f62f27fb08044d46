package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moor-dev/moor/reconciler/webhook"
)

var _ webhook.Recorder = (*Metrics)(nil)

func TestMetricsExposition(t *testing.T) {
	m := New()
	m.ObserveSync(SyncChanged, 1500*time.Millisecond)
	m.ObserveSync(SyncUnchanged, 20*time.Millisecond)
	m.WebhookRequest("github", webhook.ResultTriggered)
	m.WebhookRequest("github", webhook.ResultTriggered)
	m.WebhookRequest("gitlab", webhook.ResultUnauthorized)
	m.ObservePushToRunning(3 * time.Second)
	m.CommitState(CommitPublished)
	m.CommitState(CommitRunning)

	text := scrape(t, m)
	for _, want := range []string{
		`moor_sync_duration_seconds_count{result="changed"} 1`,
		`moor_sync_duration_seconds_sum{result="changed"} 1.5`,
		`moor_webhook_requests_total{provider="github",result="triggered"} 2`,
		`moor_webhook_requests_total{provider="gitlab",result="unauthorized"} 1`,
		`moor_push_to_running_seconds_count 1`,
		`moor_push_to_running_seconds_bucket{le="4"} 1`,
		`moor_commits_total{state="published"} 1`,
		`go_goroutines `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestMetricsSeparateRegistries(t *testing.T) {
	a, b := New(), New() // would panic on a shared registry
	a.CommitState(CommitRejected)
	const series = `moor_commits_total{state="rejected"} 1`
	if !strings.Contains(scrape(t, a), series) || strings.Contains(scrape(t, b), series) {
		t.Fatal("registries share state")
	}
}

// scrape fetches /metrics over HTTP.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return string(body)
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.ObserveSync(SyncError, time.Second)
	m.WebhookRequest("github", "ping")
	m.ObservePushToRunning(time.Second)
	m.CommitState(CommitRunning)
	if m.Registry() != nil {
		t.Fatal("nil metrics has a registry")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("nil metrics handler: %d", rec.Code)
	}
}
