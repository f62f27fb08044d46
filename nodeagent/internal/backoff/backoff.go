// Package backoff is the node agent's retry timing, shared by the agent
// and its session loop (nodeagent/remote): exponential delays, jitter and
// a sleep that ends with its context. It does no I/O and must not import
// the rest of the node agent.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff: Base doubling per consecutive
// failure up to Max.
type Policy struct {
	Base, Max time.Duration
}

// Delay is the wait before attempt n+1 after n consecutive failures
// (n≥0): Base, 2·Base, 4·Base, ... capped at Max.
func (p Policy) Delay(n int) time.Duration {
	d := p.Base
	for i := 0; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// Jitter spreads retries: a random duration in [d/2, d).
func Jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

// Sleep waits d or until ctx ends; it reports whether the wait completed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
