package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

// This file serves `moor exec` (api.PathExec) over the session hub: the
// client's request becomes an exec session of the pod's node; the node's
// agent reads the client's stdin from api.PathNodeSessionStdin, which
// copies the client's request body, and uploads the command's exec
// stream, which the client's handler relays. Both copies run while the
// command runs, so the client must stream its body while it reads the
// answer: HTTP/2, or an HTTP/1.1 connection put in full-duplex mode.
// Exec shares LogsConfig (locator, pickup timeout, limits) with logs.

// execRoutes are `moor exec` (admin) and the node's read of its stdin.
func (h *Handler) execRoutes(hub *sessionHub) []struct {
	pattern string
	fn      handlerFunc
} {
	return []struct {
		pattern string
		fn      handlerFunc
	}{
		{"POST " + api.PathExec, h.admin(h.exec(hub))},
		{"GET " + api.PathNodeSessionStdin, h.node(h.sessionStdin(hub))},
	}
}

// exec serves api.PathExec: it finds the pod's node, queues an exec
// session for it and relays the node's exec stream.
func (h *Handler) exec(hub *sessionHub) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		loc := h.cfg.Logs.Locator
		if loc == nil {
			return fmt.Errorf("%w: this server does not serve exec", errdefs.ErrNotImplemented)
		}
		req, err := api.ParseExecRequest(r.URL.Query())
		if err != nil {
			return fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
		}
		node, err := loc.PodNode(r.Context(), req.Namespace, req.Pod)
		if err != nil {
			return err
		}
		var in *stdinRelay
		if req.Stdin {
			rc := http.NewResponseController(w)
			// HTTP/1.1 must be told that the body is read while the
			// answer is written; HTTP/2 always may (ErrNotSupported).
			_ = rc.EnableFullDuplex()
			in = &stdinRelay{body: r.Body, stop: func() { _ = rc.SetReadDeadline(time.Now()) }, done: make(chan struct{})}
		}
		s, err := hub.openExec(node, req, in)
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
		h.relayExec(w, r, up, node)
		return nil
	}
}

// relayExec copies a node's exec stream to the client, flushing as data
// arrives, until the stream ends or the client goes away. A stream the
// node broke off aborts the response, so the client sees an error rather
// than a clean end. (As relay does for logs, with the exec stream's
// Content-Type.)
func (h *Handler) relayExec(w http.ResponseWriter, r *http.Request, up *upload, node string) {
	defer context.AfterFunc(r.Context(), up.stop)()
	hdr := w.Header()
	hdr.Set("Content-Type", api.ContentTypeExecStream)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, err := up.body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return // the client went away
			}
			if ferr := rc.Flush(); ferr != nil {
				return
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			up.drained = true
			return
		case r.Context().Err() != nil:
			return // the client went away; up.stop broke the read
		default:
			h.log.Warn("exec stream from node broke off", "node", node, "path", r.URL.Path, "err", err)
			panic(http.ErrAbortHandler)
		}
	}
}

// sessionStdin serves api.PathNodeSessionStdin: it copies the client's
// stdin of one of the node's exec sessions to the node as it arrives. Its
// clean end is the end of stdin; a client stream that broke off (or the
// session's end) aborts the answer, so the node does not take it for
// the end of stdin.
func (h *Handler) sessionStdin(hub *sessionHub) func(w http.ResponseWriter, r *http.Request, name string) error {
	return func(w http.ResponseWriter, r *http.Request, name string) error {
		rc := http.NewResponseController(w)
		in, err := hub.takeStdin(name, r.PathValue("id"), func() { _ = rc.SetWriteDeadline(time.Now()) })
		if err != nil {
			return err
		}
		defer close(in.done)
		hdr := w.Header()
		hdr.Set("Content-Type", "application/octet-stream")
		hdr.Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		buf := make([]byte, 32<<10)
		for {
			n, err := in.body.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return nil // the node went away, or the session ended
				}
				if ferr := rc.Flush(); ferr != nil {
					return nil
				}
			}
			switch {
			case err == nil:
			case errors.Is(err, io.EOF):
				return nil
			default:
				h.log.Debug("exec stdin from client ended", "node", name, "err", err)
				panic(http.ErrAbortHandler)
			}
		}
	}
}
