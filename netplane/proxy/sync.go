package proxy

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"time"
)

// Applier is what a backend does inside Syncer.Sync; V is its rendering of
// one service.
type Applier[V any] interface {
	// Intact is the canary checked before a partial sync: false when rules
	// of earlier syncs were removed from outside, which makes the sync full.
	// An error ends the sync.
	Intact(ctx context.Context) (bool, error)
	// Partial applies only d's changes.
	Partial(ctx context.Context, d *Delta[V]) error
	// Full rewrites all of the backend's rules from d.Values().
	Full(ctx context.Context, d *Delta[V]) error
}

// Syncer is the sync flow the backends share. It keeps the Cache of the
// table last synced and chooses between a partial and a full sync: full for
// the first sync, after a failed one, after the resync period and when the
// canary fails; a failed partial sync is retried as a full one unless ctx
// is done. Syncer is not safe for concurrent use.
type Syncer[V any] struct {
	// Render renders one changed service, sorted and valid.
	Render func(*Service) V
	// Log receives the flow's warnings.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	cache    Cache[V]
	needFull bool // set until a sync is known to have landed
	lastFull time.Time
}

// Sync diffs t against the cache (sorting t in place), renders the changed
// services, applies them with a and, once the kernel has them, commits t
// to the cache.
func (s *Syncer[V]) Sync(ctx context.Context, t *Table, cfg Config, a Applier[V]) error {
	d, err := s.cache.Diff(t, cfg.NodePortMin, cfg.NodePortMax)
	if err != nil {
		return err
	}
	for i := range d.Changes {
		if ch := &d.Changes[i]; ch.New != nil {
			ch.Val = s.Render(ch.New)
		}
	}
	full := s.needFull || s.lastFull.IsZero() || s.now().Sub(s.lastFull) >= cfg.ResyncPeriod // the first sync is full
	if !full {
		ok, err := a.Intact(ctx)
		if err != nil {
			return err
		}
		full = !ok
	}
	if !full {
		s.needFull = true
		err := a.Partial(ctx, d)
		if err == nil {
			s.needFull = false
			s.cache.Commit(d)
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		s.Log.Warn("partial sync failed; resyncing fully", "err", err)
	}
	s.needFull = true
	if err := a.Full(ctx, d); err != nil {
		return err
	}
	s.needFull, s.lastFull = false, s.now()
	s.cache.Commit(d)
	return nil
}

// Reset makes the next sync full, after the backend removed its rules.
func (s *Syncer[V]) Reset() { s.needFull = true }

func (s *Syncer[V]) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Refs counts, per address, the synced services whose rules use it, such as
// the backends' hairpin endpoints, which stay in a shared set while one
// service uses them.
type Refs map[netip.Addr]int

// Add counts every address of each of lists once more.
func (r Refs) Add(lists ...[]netip.Addr) {
	for _, l := range lists {
		for _, a := range l {
			r[a]++
		}
	}
}

// Move returns the counts after the changes of d, where addrs gives the
// addresses of a rendered value (nil for none), and the addresses no longer
// used and newly used, sorted. r is not modified.
func Move[V any](r Refs, d *Delta[V], addrs func(V) []netip.Addr) (next Refs, gone, came []netip.Addr) {
	next = maps.Clone(r)
	if next == nil {
		next = Refs{}
	}
	touched := map[netip.Addr]bool{}
	for _, ch := range d.Changes {
		for _, a := range addrs(ch.Old) {
			next[a]--
			touched[a] = true
		}
		for _, a := range addrs(ch.Val) {
			next[a]++
			touched[a] = true
		}
	}
	for _, a := range slices.SortedFunc(maps.Keys(touched), netip.Addr.Compare) {
		before, after := r[a] > 0, next[a] > 0
		if !after {
			delete(next, a)
		}
		switch {
		case before && !after:
			gone = append(gone, a)
		case !before && after:
			came = append(came, a)
		}
	}
	return next, gone, came
}

// Sorted returns the addresses with a positive count, sorted.
func (r Refs) Sorted() []netip.Addr {
	out := make([]netip.Addr, 0, len(r))
	for a, n := range r {
		if n > 0 {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
