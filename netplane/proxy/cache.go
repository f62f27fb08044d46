package proxy

import (
	"errors"
	"slices"
)

// Cache remembers the services of the table a backend last synced, each
// with the value V the backend rendered from it (its rules), so that a sync
// finds what changed by comparing every service with a private copy, which
// costs far less than hashing, validating or rendering it. Only the changed
// services are then sorted, validated and rendered: a sync costs one
// comparison per service plus real work per change.
//
// A backend calls Diff with the new table, renders each Change's New into
// its Val, applies the result and, once the kernel has it, calls Commit.
// Cache is pure and not safe for concurrent use.
type Cache[V any] struct {
	entries []cacheEntry[V] // sorted by (namespace, name)
	// nodePorts maps every NodePort of the cached services to its owner.
	nodePorts map[nodePortKey]string
	from      []int // scratch for Diff: see Delta.from
}

type cacheEntry[V any] struct {
	svc Service // private, sorted deep copy
	val V
}

// Change is one service that differs between the cache and the table.
type Change[V any] struct {
	// Key is the service's namespace/name.
	Key string
	// Old is the value rendered for the cached version; HasOld is false
	// for a service the cache does not have.
	Old    V
	HasOld bool
	// New is the service in the table, sorted and valid; nil when the
	// service was removed.
	New *Service
	// Val is what the backend rendered from New. Set it before Commit.
	Val V

	entry int // index of the cached entry when HasOld
}

// Delta is what Diff found: the changes, in key order, and how to build the
// next cache from the table.
type Delta[V any] struct {
	Changes []Change[V]

	t       *Table
	entries []cacheEntry[V] // the cache's entries at Diff time
	// from[i] for table service i is the index of its unchanged cache
	// entry, or -1-k when it is Changes[k].
	from    []int
	inPlace bool // no service added or removed
}

// Diff sorts t's service list in place, compares every service with the
// cache and returns the changes. Changed and added services are sorted in
// place and validated like Table.Validate would (duplicate services and
// NodePorts are checked against the whole table); unchanged ones are known
// to be sorted and valid. The cache itself is not modified.
func (c *Cache[V]) Diff(t *Table, npMin, npMax uint16) (*Delta[V], error) {
	sortIfNeeded(t.Services, compareServices)
	d := &Delta[V]{t: t, entries: c.entries, inPlace: len(t.Services) == len(c.entries)}
	if cap(c.from) < len(t.Services) {
		c.from = make([]int, len(t.Services))
	}
	d.from = c.from[:len(t.Services)]
	var errs []error
	removed := func(j int) {
		e := &c.entries[j]
		d.Changes = append(d.Changes, Change[V]{Key: e.svc.Key(), Old: e.val, HasOld: true, entry: j})
		d.inPlace = false
	}
	j := 0
	for i := range t.Services {
		s := &t.Services[i]
		if i > 0 && compareServices(t.Services[i-1], *s) == 0 {
			errs = append(errs, invalid(s, "listed twice; merge the two entries"))
			d.inPlace = false
		}
		for j < len(c.entries) && compareServices(c.entries[j].svc, *s) < 0 {
			removed(j)
			j++
		}
		ch := Change[V]{New: s}
		if j < len(c.entries) && compareServices(c.entries[j].svc, *s) == 0 {
			e := &c.entries[j]
			if equalService(s, &e.svc) {
				d.from[i] = j
				j++
				continue
			}
			s.sort()
			if equalService(s, &e.svc) {
				d.from[i] = j
				j++
				continue
			}
			ch.Old, ch.HasOld, ch.entry = e.val, true, j
			j++
		} else {
			s.sort()
			d.inPlace = false
		}
		errs = append(errs, validateService(s, npMin, npMax)...)
		ch.Key = s.Key()
		d.from[i] = -1 - len(d.Changes)
		d.Changes = append(d.Changes, ch)
	}
	for ; j < len(c.entries); j++ {
		removed(j)
	}
	errs = append(errs, c.checkNodePorts(d.Changes)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d, nil
}

// checkNodePorts finds NodePorts the changed services claim twice, or that
// an unchanged service already holds.
func (c *Cache[V]) checkNodePorts(changes []Change[V]) []error {
	var errs []error
	var changed map[string]bool
	claimed := map[nodePortKey]string{}
	for _, ch := range changes {
		if ch.New == nil {
			continue
		}
		for _, p := range ch.New.Ports {
			if p.NodePort == 0 {
				continue
			}
			if changed == nil {
				changed = make(map[string]bool, len(changes))
				for _, ch := range changes {
					changed[ch.Key] = true
				}
			}
			nk := nodePortKey{p.Protocol, p.NodePort}
			if other, ok := claimed[nk]; ok {
				errs = append(errs, nodePortTaken(ch.New, nk, other))
			} else if other, ok := c.nodePorts[nk]; ok && !changed[other] {
				errs = append(errs, nodePortTaken(ch.New, nk, other))
			}
			claimed[nk] = ch.Key
		}
	}
	return errs
}

// Values returns the value of every service of the table, in table order:
// cached for unchanged services, Val for changed ones.
func (d *Delta[V]) Values() []V {
	out := make([]V, len(d.t.Services))
	for i, f := range d.from {
		if f >= 0 {
			out[i] = d.entries[f].val
		} else {
			out[i] = d.Changes[-1-f].Val
		}
	}
	return out
}

// Commit makes the cache hold the table of d (with the changes' Val). It
// must be the Delta of the latest Diff, and the table must not have been
// modified since.
func (c *Cache[V]) Commit(d *Delta[V]) {
	if c.nodePorts == nil {
		c.nodePorts = map[nodePortKey]string{}
	}
	for _, ch := range d.Changes {
		if ch.HasOld {
			for _, p := range c.entries[ch.entry].svc.Ports {
				if nk := (nodePortKey{p.Protocol, p.NodePort}); p.NodePort != 0 && c.nodePorts[nk] == ch.Key {
					delete(c.nodePorts, nk)
				}
			}
		}
	}
	for _, ch := range d.Changes {
		if ch.New != nil {
			for _, p := range ch.New.Ports {
				if p.NodePort != 0 {
					c.nodePorts[nodePortKey{p.Protocol, p.NodePort}] = ch.Key
				}
			}
		}
	}
	if d.inPlace {
		for _, ch := range d.Changes {
			c.entries[ch.entry] = cacheEntry[V]{svc: copyService(ch.New), val: ch.Val}
		}
		return
	}
	next := make([]cacheEntry[V], len(d.t.Services))
	for i, f := range d.from {
		if f >= 0 {
			next[i] = c.entries[f]
		} else {
			ch := &d.Changes[-1-f]
			next[i] = cacheEntry[V]{svc: copyService(ch.New), val: ch.Val}
		}
	}
	c.entries = next
}

// Len returns the number of cached services.
func (c *Cache[V]) Len() int { return len(c.entries) }

// Reset empties the cache.
func (c *Cache[V]) Reset() { *c = Cache[V]{} }

// equalService reports whether a and b program the same rules; it does
// not sort either.
func equalService(a, b *Service) bool {
	if a.Namespace != b.Namespace || a.Name != b.Name || a.ClusterIP != b.ClusterIP ||
		a.SessionAffinity != b.SessionAffinity || a.AffinityTimeout != b.AffinityTimeout ||
		len(a.Ports) != len(b.Ports) {
		return false
	}
	for i := range a.Ports {
		p, q := &a.Ports[i], &b.Ports[i]
		if p.Name != q.Name || p.Protocol != q.Protocol || p.Port != q.Port || p.NodePort != q.NodePort ||
			!slices.Equal(p.Endpoints, q.Endpoints) {
			return false
		}
	}
	return true
}

// copyService returns a deep copy of s sharing no memory with it.
func copyService(s *Service) Service {
	out := *s
	n := 0
	for _, p := range s.Ports {
		n += len(p.Endpoints)
	}
	eps := make([]Endpoint, 0, n)
	out.Ports = make([]Port, len(s.Ports))
	for i, p := range s.Ports {
		start := len(eps)
		eps = append(eps, p.Endpoints...)
		p.Endpoints = eps[start:len(eps):len(eps)]
		out.Ports[i] = p
	}
	return out
}
