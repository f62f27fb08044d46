package httpapi

import (
	"context"
	"fmt"
	"sync"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

// Hub holds each node's current published document and wakes the
// long-polls waiting for it to change. It is safe for concurrent use; the
// controller calls Set, HTTP handlers call Wait.
//
// Bodies are shared, not copied, on the way out: callers must treat what
// Get and Wait return as read-only.
type Hub struct {
	mu    sync.Mutex
	nodes map[string]*slot
}

// slot is one node's document. changed is closed, and replaced, on every
// change, so any number of waiters wake at once without polling.
type slot struct {
	body    []byte
	digest  string
	changed chan struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{nodes: map[string]*slot{}} }

// slotLocked returns node's slot, creating an empty one so that waiters
// can wait for a node's first document. h.mu must be held.
func (h *Hub) slotLocked(node string) *slot {
	s, ok := h.nodes[node]
	if !ok {
		s = &slot{changed: make(chan struct{})}
		h.nodes[node] = s
	}
	return s
}

// Set publishes body as node's document. digest defaults to
// api.Digest(body). Setting the digest the node already has changes
// nothing and wakes nobody.
func (h *Hub) Set(node string, body []byte, digest string) {
	if digest == "" {
		digest = api.Digest(body)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.slotLocked(node)
	if s.digest == digest {
		return
	}
	s.body, s.digest = append([]byte(nil), body...), digest
	close(s.changed)
	s.changed = make(chan struct{})
}

// Get returns node's current document; ok is false when none has been set.
func (h *Hub) Get(node string) (body []byte, digest string, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, found := h.nodes[node]
	if !found || s.digest == "" {
		return nil, "", false
	}
	return s.body, s.digest, true
}

// Wait returns node's document as soon as its digest differs from since
// (at once if it already does), with changed set. Otherwise it blocks
// until the document changes or ctx ends; then changed is false and body
// and digest are the current document, empty when the node has none yet.
// A node without any document is waited for like any other change. The
// error is non-nil only for an empty node name.
func (h *Hub) Wait(ctx context.Context, node, since string) (body []byte, digest string, changed bool, err error) {
	if node == "" {
		return nil, "", false, fmt.Errorf("wait for desired state: %w: node name is empty", errdefs.ErrInvalidArgument)
	}
	for {
		h.mu.Lock()
		s := h.slotLocked(node)
		body, digest, ch := s.body, s.digest, s.changed
		h.mu.Unlock()
		if digest != "" && digest != since {
			return body, digest, true, nil
		}
		select {
		case <-ch:
			// Changed; loop to read it (it may have changed back to since).
		case <-ctx.Done():
			return body, digest, false, nil
		}
	}
}
