package backoff

import (
	"context"
	"testing"
	"time"
)

func TestPolicyDelay(t *testing.T) {
	p := Policy{Base: 10 * time.Second, Max: 5 * time.Minute}
	for n, want := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute} {
		if got := p.Delay(n); got != want {
			t.Errorf("Delay(%d) = %v, want %v", n, got, want)
		}
	}
	if got := p.Delay(1000); got != 5*time.Minute {
		t.Errorf("Delay(1000) = %v, want the cap", got)
	}
}

func TestJitter(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 2, time.Second} {
		for range 100 {
			got := Jitter(d)
			if d <= 1 && got != d || d > 1 && (got < d/2 || got >= d) {
				t.Fatalf("Jitter(%v) = %v, want in [%v, %v)", d, got, d/2, d)
			}
		}
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep without cancel reported an interrupted wait")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep with an ended context reported a completed wait")
	}
}
