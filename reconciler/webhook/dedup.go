package webhook

import (
	"container/list"
	"sync"
	"time"
)

// dedup remembers recent delivery ids: at most size of them, each for at
// most ttl. The oldest is forgotten first. Safe for concurrent use.
type dedup struct {
	mu    sync.Mutex
	size  int
	ttl   time.Duration
	order *list.List               // front = newest; values are dedupEntry
	index map[string]*list.Element // key → element
}

type dedupEntry struct {
	key  string
	seen time.Time
}

func newDedup(size int, ttl time.Duration) *dedup {
	return &dedup{size: size, ttl: ttl, order: list.New(), index: make(map[string]*list.Element)}
}

// seen records key at now and reports whether it was already recorded
// within the ttl. An empty key is never a duplicate.
func (d *dedup) seen(key string, now time.Time) bool {
	if key == "" {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(now)
	if _, ok := d.index[key]; ok {
		return true
	}
	d.index[key] = d.order.PushFront(dedupEntry{key: key, seen: now})
	for d.order.Len() > d.size {
		d.remove(d.order.Back())
	}
	return false
}

// expire drops entries older than the ttl, oldest first.
func (d *dedup) expire(now time.Time) {
	for e := d.order.Back(); e != nil; e = d.order.Back() {
		if now.Sub(e.Value.(dedupEntry).seen) < d.ttl {
			return
		}
		d.remove(e)
	}
}

func (d *dedup) remove(e *list.Element) {
	delete(d.index, e.Value.(dedupEntry).key)
	d.order.Remove(e)
}

func (d *dedup) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.order.Len()
}
