package webhook

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Cause says why a fetch runs. When requests coalesce, At and Reason are
// those of the earliest pending request, Commit is the newest commit named
// by any of them, and Requests counts them.
type Cause struct {
	At       time.Time // when the (earliest) request arrived
	Reason   string    // e.g. "github push to main by alice"
	Commit   string    // the pushed commit, if the request named one
	Requests int       // requests folded into this run (≥ 1)
}

// merge folds a later request into a pending cause.
func (c Cause) merge(n Cause) Cause {
	if n.At.Before(c.At) {
		c.At, c.Reason = n.At, n.Reason
	}
	if n.Commit != "" {
		c.Commit = n.Commit
	}
	c.Requests += n.Requests
	return c
}

// Trigger coalesces fetch requests: whatever the request rate, at most one
// fetch runs and at most one is queued behind it. Requests never block.
//
// Either call Run, which calls the function given to NewTrigger, or drive
// it from an existing loop: select on Ready() and call Take().
type Trigger struct {
	fn      func(context.Context, Cause) error
	log     *slog.Logger
	now     func() time.Time
	ready   chan struct{} // capacity 1: "a cause is pending"
	running atomic.Bool

	mu      sync.Mutex
	pending *Cause
}

// NewTrigger returns a trigger that runs fn for each coalesced batch of
// requests. fn may be nil when the caller uses Ready and Take instead of
// Run. log may be nil.
func NewTrigger(fn func(context.Context, Cause) error, log *slog.Logger) *Trigger {
	if log == nil {
		log = slog.Default().With("component", "webhook")
	}
	return &Trigger{fn: fn, log: log, now: time.Now, ready: make(chan struct{}, 1)}
}

// Request asks for a fetch now.
func (t *Trigger) Request(reason string) {
	t.Submit(Cause{Reason: reason})
}

// Submit asks for a fetch with a cause. A zero At means now; Requests is
// counted as one. It never blocks: if a fetch is already queued, the cause
// is folded into it.
func (t *Trigger) Submit(c Cause) {
	if c.At.IsZero() {
		c.At = t.now()
	}
	c.Requests = 1
	t.mu.Lock()
	if t.pending == nil {
		t.pending = &c
	} else {
		merged := t.pending.merge(c)
		t.pending = &merged
	}
	t.mu.Unlock()
	select {
	case t.ready <- struct{}{}:
	default: // already signalled
	}
}

// Ready is signalled when a request is pending. After receiving from it,
// call Take.
func (t *Trigger) Ready() <-chan struct{} { return t.ready }

// Take removes and returns the pending cause, if any.
func (t *Trigger) Take() (Cause, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending == nil {
		return Cause{}, false
	}
	c := *t.pending
	t.pending = nil
	return c, true
}

// Run calls fn once per batch of pending requests, one call at a time,
// until ctx ends; then it returns nil. Requests arriving while fn runs are
// folded into the next call. fn's errors are logged; the next request or
// poll retries. Run may be called only once.
func (t *Trigger) Run(ctx context.Context) error {
	if t.fn == nil {
		return errors.New("webhook: trigger has no function to run; use Ready and Take")
	}
	if !t.running.CompareAndSwap(false, true) {
		return errors.New("webhook: trigger is already running")
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.ready:
		}
		c, ok := t.Take()
		if !ok {
			continue
		}
		start := t.now()
		if err := t.fn(ctx, c); err != nil && ctx.Err() == nil {
			t.log.Warn("triggered fetch failed; the next push or poll retries", "reason", c.Reason, "requests", c.Requests, "err", err)
			continue
		}
		t.log.Debug("triggered fetch done", "reason", c.Reason, "requests", c.Requests, "waited", start.Sub(c.At), "took", t.now().Sub(start))
	}
}
