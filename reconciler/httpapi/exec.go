package httpapi

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

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
func (h *Handler) execRoutes(hub *sessionHub) []route {
	return []route{
		{"POST " + api.PathExec, h.admin(h.exec(hub))},
		{"GET " + api.PathNodeSessionStdin, h.node(h.sessionStdin(hub))},
	}
}

// exec serves api.PathExec: it finds the pod's node, queues an exec
// session for it, with the request body as the command's stdin when
// asked, and relays the node's exec stream.
func (h *Handler) exec(hub *sessionHub) handlerFunc {
	return h.serveSession(hub, sessionEndpoint{
		name:        "exec",
		stream:      "exec stream",
		contentType: api.ContentTypeExecStream,
		parse: func(q url.Values) (sessionCall, error) {
			req, err := api.ParseExecRequest(q)
			if err != nil {
				return sessionCall{}, err
			}
			return sessionCall{namespace: req.Namespace, pod: req.Pod, stdin: req.Stdin,
				req: api.SessionRequest{Kind: api.SessionKindExec, Exec: &req}}, nil
		},
	})
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
		// nil: the node went away, or the session ended.
		if err := flushCopy(w, rc, in.body); err != nil && !errors.Is(err, io.EOF) {
			h.log.Debug("exec stdin from client ended", "node", name, "err", err)
			panic(http.ErrAbortHandler)
		}
		return nil
	}
}
