package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

// This file is the session hub: the server side of the reverse tunnel
// that carries `moor logs` and `moor exec` to node agents. The server
// cannot dial a node, so a client's request becomes a session the node's
// agent picks up on its long-poll (claim) and answers by uploading to the
// server (attach); the client's handler then reads that upload and
// relays it. An exec session with stdin also hands the client's request
// body to the node's stdin read (takeStdin). The hub bounds how many
// sessions are open, per node and in all, and forgets a session as soon
// as its client's handler returns.

// Defaults of LogsConfig.
const (
	DefaultPickupTimeout = 10 * time.Second
	DefaultMaxPerNode    = 8
	DefaultMaxSessions   = 256
)

// sessionHub pairs client requests with node uploads. It is safe for
// concurrent use.
type sessionHub struct {
	pickup      time.Duration
	maxPerNode  int
	maxSessions int

	mu    sync.Mutex
	byID  map[string]*session
	nodes map[string]*nodeSessions
}

// nodeSessions is one node's queue. wake is closed, and replaced, when a
// session is queued, so that every long-poll of the node wakes at once.
type nodeSessions struct {
	open    int // sessions of the node not yet closed, pending or attached
	pending []*session
	wake    chan struct{}
}

// session is one client request waiting for, or relaying, a node's answer.
// The fields below req are guarded by sessionHub.mu.
type session struct {
	id, node string
	req      api.SessionRequest

	claimed  bool          // a long-poll of the node handed it out
	closed   bool          // the client's handler is done with it
	up       *upload       // the node's answer, once attached
	attached chan struct{} // closed when up is set
	stdin    *stdinRelay   // an exec's stdin; nil when it has none
}

// stdinRelay is the client's stdin of an exec session: the body of the
// client's request, which the node's stdin handler copies to the node
// while the client's handler relays the output. Its fields below done
// are guarded by sessionHub.mu.
type stdinRelay struct {
	body io.Reader
	// stop makes a pending or later read of body fail at once (the
	// client stream's read deadline); it must be safe to call from any
	// goroutine.
	stop func()
	// done is closed by the node's handler once it no longer reads body.
	done chan struct{}

	taken     bool   // a node's handler reads it
	stopWrite func() // stops that handler's writes to the node
}

// upload is a node's answer to a session: an error, or a stream the
// client's handler reads. The node's handler blocks until finished is
// closed, since the stream is its request body.
type upload struct {
	errBody *api.SessionError // nil: body is the stream
	body    io.Reader
	// stop makes a pending or later read of body fail at once (it sets
	// the node connection's read deadline); it must be safe to call from
	// any goroutine.
	stop func()
	// drained is set by the client's handler when it read body to its
	// end, before it closes finished.
	drained  bool
	finished chan struct{}
	once     sync.Once
}

// finish tells the node's handler that the client side is done with the
// upload. A stream not read to its end is stopped, so that the node's
// request ends instead of waiting to be drained.
func (u *upload) finish() {
	u.once.Do(func() {
		if !u.drained && u.stop != nil {
			u.stop()
		}
		close(u.finished)
	})
}

func newSessionHub(c LogsConfig) *sessionHub {
	return &sessionHub{pickup: c.PickupTimeout, maxPerNode: c.MaxPerNode, maxSessions: c.MaxSessions,
		byID: map[string]*session{}, nodes: map[string]*nodeSessions{}}
}

// nodeLocked returns node's queue, creating it. h.mu must be held.
func (h *sessionHub) nodeLocked(node string) *nodeSessions {
	ns, ok := h.nodes[node]
	if !ok {
		ns = &nodeSessions{wake: make(chan struct{})}
		h.nodes[node] = ns
	}
	return ns
}

// open queues req, given a fresh ID, for node, with the client's stdin
// of an exec session when in is not nil. It fails with
// errdefs.ErrResourceExhausted when the node or the server has too many
// sessions open. The caller must close the session.
func (h *sessionHub) open(node string, req api.SessionRequest, in *stdinRelay) (*session, error) {
	id, err := newSessionID()
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ns := h.nodeLocked(node)
	switch {
	case ns.open >= h.maxPerNode:
		return nil, fmt.Errorf("%w: node %q already serves %d sessions, its limit; end some (moor logs -f, moor exec) and retry",
			errdefs.ErrResourceExhausted, node, ns.open)
	case len(h.byID) >= h.maxSessions:
		return nil, fmt.Errorf("%w: the server already relays %d sessions, its limit; end some (moor logs -f, moor exec) and retry",
			errdefs.ErrResourceExhausted, len(h.byID))
	}
	req.ID = id
	s := &session{id: id, node: node, attached: make(chan struct{}), req: req, stdin: in}
	h.byID[id] = s
	ns.open++
	ns.pending = append(ns.pending, s)
	close(ns.wake)
	ns.wake = make(chan struct{})
	return s, nil
}

// close forgets s; an upload still attached is finished (and stopped if
// not drained), and a stdin relay a node's handler took is stopped and
// waited for, so that nothing reads the client's body once close
// returns. Closing twice is harmless.
func (h *sessionHub) close(s *session) {
	h.mu.Lock()
	if s.closed {
		h.mu.Unlock()
		return
	}
	s.closed = true
	delete(h.byID, s.id)
	ns := h.nodeLocked(s.node)
	ns.open--
	ns.pending = slices.DeleteFunc(ns.pending, func(p *session) bool { return p == s })
	up := s.up
	var in *stdinRelay
	if s.stdin != nil && s.stdin.taken {
		in = s.stdin
	}
	h.mu.Unlock()
	if up != nil {
		up.finish()
	}
	if in != nil {
		in.stop()
		in.stopWrite()
		<-in.done
	}
}

// takeStdin hands the client's stdin of session id to node's stdin
// handler, which must close the relay's done once it stops reading;
// stopWrite must stop that handler's writes at once. Errors:
// errdefs.ErrNotFound (no such session, or it ended),
// errdefs.ErrPermissionDenied (it is another node's),
// errdefs.ErrInvalidArgument (it has no stdin), errdefs.ErrAlreadyExists
// (it was taken before).
func (h *sessionHub) takeStdin(node, id string, stopWrite func()) (*stdinRelay, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.byID[id]
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: session %q not found: it ended (its client went away or gave up waiting) or never existed", errdefs.ErrNotFound, id)
	case s.node != node:
		return nil, fmt.Errorf("%w: session %q is not for node %q; a node reads only its own sessions' stdin", errdefs.ErrPermissionDenied, id, node)
	case s.stdin == nil:
		return nil, fmt.Errorf("%w: session %q has no stdin: its client did not ask for one (moor exec -i)", errdefs.ErrInvalidArgument, id)
	case s.stdin.taken:
		return nil, fmt.Errorf("%w: the stdin of session %q is read already", errdefs.ErrAlreadyExists, id)
	}
	s.stdin.taken = true
	s.stdin.stopWrite = stopWrite
	return s.stdin, nil
}

// claim returns node's pending sessions, which are then no longer
// pending, as soon as there are any, or nil when ctx ends first.
func (h *sessionHub) claim(ctx context.Context, node string) []api.SessionRequest {
	for {
		h.mu.Lock()
		ns := h.nodeLocked(node)
		if len(ns.pending) > 0 {
			out := make([]api.SessionRequest, 0, len(ns.pending))
			for _, s := range ns.pending {
				s.claimed = true
				out = append(out, s.req)
			}
			ns.pending = nil
			h.mu.Unlock()
			return out
		}
		wake := ns.wake
		h.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil
		}
	}
}

// attach hands node's answer to session id. Errors: errdefs.ErrNotFound
// (no such session, or it ended), errdefs.ErrPermissionDenied (it is
// another node's), errdefs.ErrAlreadyExists (it was answered before).
func (h *sessionHub) attach(node, id string, up *upload) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.byID[id]
	switch {
	case !ok:
		return fmt.Errorf("%w: session %q not found: it ended (its client went away or gave up waiting) or never existed", errdefs.ErrNotFound, id)
	case s.node != node:
		return fmt.Errorf("%w: session %q is not for node %q; a node answers only its own sessions", errdefs.ErrPermissionDenied, id, node)
	case s.up != nil:
		return fmt.Errorf("%w: session %q was answered already", errdefs.ErrAlreadyExists, id)
	}
	s.up = up
	close(s.attached)
	return nil
}

// await waits up to the pickup timeout for the node's answer to s. The
// error is of class deadline exceeded and says whether the node took
// the request at all, or ctx's error when the client went away.
func (h *sessionHub) await(ctx context.Context, s *session) (*upload, error) {
	t := time.NewTimer(h.pickup)
	defer t.Stop()
	select {
	case <-s.attached:
		h.mu.Lock()
		defer h.mu.Unlock()
		return s.up, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("the client went away: %w", ctx.Err())
	case <-t.C:
	}
	h.mu.Lock()
	claimed := s.claimed
	h.mu.Unlock()
	if claimed {
		return nil, timeoutError(fmt.Sprintf("node %q picked up the request but did not answer within %s", s.node, h.pickup))
	}
	return nil, timeoutError(fmt.Sprintf("node %q did not pick up the request within %s: is its agent running?", s.node, h.pickup))
}

// timeoutError is a message of class deadline exceeded
// (errdefs.IsDeadlineExceeded), which becomes 504 Gateway Timeout.
type timeoutError string

func (e timeoutError) Error() string { return string(e) }

// DeadlineExceeded marks the class.
func (timeoutError) DeadlineExceeded() {}

// newSessionID returns 128 random bits in hex.
func newSessionID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	return hex.EncodeToString(b), nil
}
