package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Suggested label values for moor_sync_duration_seconds{result}.
const (
	SyncChanged   = "changed"   // the branch moved and the new commit was published
	SyncUnchanged = "unchanged" // the remote head equals the last commit seen
	SyncRejected  = "rejected"  // the new commit failed validation
	SyncError     = "error"     // fetch or publish failed
)

// Suggested label values for moor_commits_total{state}.
const (
	CommitPublished = "published"
	CommitRejected  = "rejected"
	CommitRunning   = "running" // every pod of the commit runs
)

// Metrics holds the reconciler's metrics in a private registry.
type Metrics struct {
	reg             *prometheus.Registry
	syncDuration    *prometheus.HistogramVec
	webhookRequests *prometheus.CounterVec
	pushToRunning   prometheus.Histogram
	commits         *prometheus.CounterVec
}

// New returns the metrics, registered with a new registry together with
// the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		syncDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "moor_sync_duration_seconds",
			Help:    "Time of one sync (fetch, validate, plan, publish) by result.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16), // 5ms .. ~164s
		}, []string{"result"}),
		webhookRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moor_webhook_requests_total",
			Help: "Webhook deliveries by provider and result (triggered, ignored, duplicate, ping, unauthorized, too_large, timeout, bad_request, not_found, bad_method).",
		}, []string{"provider", "result"}),
		pushToRunning: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "moor_push_to_running_seconds",
			Help:    "Time from a push's webhook (or the fetch that found the commit) to all of the commit's pods running.",
			Buckets: prometheus.ExponentialBuckets(0.25, 2, 13), // 250ms .. ~17min
		}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moor_commits_total",
			Help: "Commits that reached a state (published, rejected, running).",
		}, []string{"state"}),
	}
	m.reg.MustRegister(
		m.syncDuration, m.webhookRequests, m.pushToRunning, m.commits,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry returns the registry, for components that add their own
// collectors.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveSync records one sync's duration under a result (Sync*).
func (m *Metrics) ObserveSync(result string, d time.Duration) {
	if m == nil {
		return
	}
	m.syncDuration.WithLabelValues(result).Observe(d.Seconds())
}

// WebhookRequest counts one webhook delivery. It implements
// webhook.Recorder.
func (m *Metrics) WebhookRequest(provider, result string) {
	if m == nil {
		return
	}
	m.webhookRequests.WithLabelValues(provider, result).Inc()
}

// ObservePushToRunning records the time from a push to its commit running.
func (m *Metrics) ObservePushToRunning(d time.Duration) {
	if m == nil {
		return
	}
	m.pushToRunning.Observe(d.Seconds())
}

// CommitState counts a commit reaching a state (Commit*).
func (m *Metrics) CommitState(state string) {
	if m == nil {
		return
	}
	m.commits.WithLabelValues(state).Inc()
}
