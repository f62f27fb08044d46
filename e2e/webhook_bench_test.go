package e2e

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"testing"
	"time"
)

// Figures for issue 4: a changed Deployment's pods running after a push,
// announced by a webhook or found by polling. Run as root:
//
//	go test ./e2e -run '^$' -bench 'WebhookToRunning|PollToRunning' -benchtime 20x
//
// BenchmarkWebhookToRunning times a signed GitHub push webhook → both pods
// of the changed Deployment running (image cached; the server polls
// hourly, so only the webhook can find the commit). BenchmarkPollToRunning
// times the same change from `git push` returning, with no webhook and
// the server polling every 2s (jittered by up to a fifth).

func BenchmarkWebhookToRunning(b *testing.B) {
	benchPushToRunning(b, true)
}

func BenchmarkPollToRunning(b *testing.B) {
	benchPushToRunning(b, false)
}

// pollInterval is BenchmarkPollToRunning's server poll interval.
const pollInterval = 2 * time.Second

func benchPushToRunning(b *testing.B, webhook bool) {
	e := newEnv(b)
	img := e.image("1")
	head := e.push("v0", map[string]string{"web.yaml": deployment(img, "echo 0; exec sleep 3600", 2)})
	if webhook {
		e.startServerWith(webhookSecret, time.Hour)
	} else {
		e.startServerWith("", pollInterval)
	}
	e.startAgent("node-a")
	e.mustCLI("sync")
	e.waitReplaced(nil, 2, 60*time.Second)
	c := e.httpsClient()

	var samples []time.Duration
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		b.StopTimer()
		// The replaced pods may linger in their grace period; start from
		// a node running only the current two.
		e.eventually(60*time.Second, "old pods gone", func() error {
			if n := len(e.containers()); n != 2 {
				return fmt.Errorf("%d containers", n)
			}
			return nil
		})
		before := running(e.containers())
		if !webhook {
			// Each iteration lasts about as long as a poll period; without
			// this, pushes would land at the same phase of the poll cycle
			// every time instead of anywhere in it, as real pushes do.
			time.Sleep(rand.N(pollInterval * 6 / 5))
		}
		prev := head
		head = e.push(fmt.Sprintf("v%d", i), map[string]string{"web.yaml": deployment(img, fmt.Sprintf("echo %d; exec sleep 3600", i), 2)})
		b.StartTimer()
		start := time.Now()
		if webhook {
			if code := e.postGitHubPush(c, webhookSecret, prev, head); code != http.StatusAccepted {
				b.Fatalf("webhook for %s: HTTP %d, want 202", head, code)
			}
		}
		e.waitReplaced(before, 2, 60*time.Second)
		samples = append(samples, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, samples)
	b.Logf("samples (ms): %v", millis(samples))
	// The server's own figures (from webhook arrival, or from the fetch
	// when polling) for comparison.
	if out, err := e.cli("get", "commits"); err == nil {
		b.Logf("moor get commits:\n%s", out)
	}
}

func millis(ds []time.Duration) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.Milliseconds()
	}
	return out
}

// reportPercentiles reports the nearest-rank p50 and p99 of samples.
func reportPercentiles(b *testing.B, samples []time.Duration) {
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(samples)))) - 1
		return float64(samples[max(i, 0)].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
