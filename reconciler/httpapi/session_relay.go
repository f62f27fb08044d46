package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

// This file is the client's side of a node session, shared by the
// endpoints a session carries (`moor logs`, `moor exec`): parse the
// request, find the pod's node, queue a session for it, wait for the
// node's answer and relay it.

// sessionEndpoint is what differs between the client endpoints of the
// session hub.
type sessionEndpoint struct {
	// name is what the endpoint serves, as in "this server does not
	// serve logs".
	name string
	// stream names the relayed stream in the server's log, as in "log
	// stream from node broke off".
	stream string
	// contentType is the relayed stream's Content-Type.
	contentType string
	// parse reads the client's query. Its errors are the client's
	// (errdefs.ErrInvalidArgument is added).
	parse func(url.Values) (sessionCall, error)
}

// sessionCall is one client request that a node session carries.
type sessionCall struct {
	namespace, pod string // the pod, whose node serves the request
	req            api.SessionRequest
	// stdin: the client's request body is streamed to the node (an
	// exec's stdin) while the answer is relayed.
	stdin bool
}

// serveSession serves a client endpoint of the session hub: it finds the
// pod's node, queues a session for it, waits for the node to answer and
// relays the answer.
func (h *Handler) serveSession(hub *sessionHub, e sessionEndpoint) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		loc := h.cfg.Logs.Locator
		if loc == nil {
			return fmt.Errorf("%w: this server does not serve %s", errdefs.ErrNotImplemented, e.name)
		}
		call, err := e.parse(r.URL.Query())
		if err != nil {
			return fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
		}
		node, err := loc.PodNode(r.Context(), call.namespace, call.pod)
		if err != nil {
			return err
		}
		var in *stdinRelay
		if call.stdin {
			rc := http.NewResponseController(w)
			// HTTP/1.1 must be told that the body is read while the
			// answer is written; HTTP/2 always may (ErrNotSupported).
			_ = rc.EnableFullDuplex()
			in = &stdinRelay{body: r.Body, stop: func() { _ = rc.SetReadDeadline(time.Now()) }, done: make(chan struct{})}
		}
		s, err := hub.open(node, call.req, in)
		if err != nil {
			return err
		}
		defer hub.close(s)
		up, err := hub.await(r.Context(), s)
		if err != nil {
			return err
		}
		if up.errBody != nil {
			return writeJSON(w, relayStatus(up.errBody.Status), ErrorBody{Error: up.errBody.Error})
		}
		h.relay(w, r, up, node, e)
		return nil
	}
}

// relayStatus is the status a node's error answer gives the client: its
// own when it is an error status, else 502 Bad Gateway.
func relayStatus(s int) int {
	if s >= 400 && s <= 599 {
		return s
	}
	return http.StatusBadGateway
}

// relay copies a node's stream to the client as e's content type,
// flushing as data arrives, until the stream ends or the client goes
// away. A stream the node broke off aborts the response, so the client
// sees an error rather than a clean end.
func (h *Handler) relay(w http.ResponseWriter, r *http.Request, up *upload, node string, e sessionEndpoint) {
	defer context.AfterFunc(r.Context(), up.stop)()
	hdr := w.Header()
	hdr.Set("Content-Type", e.contentType)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	err := flushCopy(w, http.NewResponseController(w), up.body)
	switch {
	case err == nil:
		// The client went away.
	case errors.Is(err, io.EOF):
		up.drained = true
	case r.Context().Err() != nil:
		// The client went away; up.stop broke the read.
	default:
		h.log.Warn(e.stream+" from node broke off", "node", node, "path", r.URL.Path, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// flushCopy flushes w's header, then copies src to w, flushing after
// every write, until reading src or writing w fails. It returns the read
// error (io.EOF at src's clean end), or nil when writing failed: the
// other side went away.
func flushCopy(w io.Writer, rc *http.ResponseController, src io.Reader) error {
	_ = rc.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil
			}
			if ferr := rc.Flush(); ferr != nil {
				return nil
			}
		}
		if err != nil {
			return err
		}
	}
}
