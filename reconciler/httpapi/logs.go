package httpapi

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

// PodLocator finds the node a pod is placed on. Errors carry their class:
// errdefs.ErrNotFound for an unknown pod, errdefs.ErrInvalidArgument for
// one not placed on any node yet.
type PodLocator interface {
	PodNode(ctx context.Context, namespace, name string) (string, error)
}

// LogsConfig configures `moor logs` (api.PathLogs) and the node sessions
// that carry it (api.PathNodeSessions, api.PathNodeSession).
type LogsConfig struct {
	// Locator finds a pod's node. Nil: Config.Admin when it implements
	// PodLocator; else the endpoints answer 501 Not Implemented.
	Locator PodLocator
	// PickupTimeout is how long a request waits for the node's answer
	// (default DefaultPickupTimeout).
	PickupTimeout time.Duration
	// MaxPerNode caps the sessions open per node (default
	// DefaultMaxPerNode), MaxSessions those open in all (default
	// DefaultMaxSessions).
	MaxPerNode, MaxSessions int
}

// validate checks c and fills in defaults; admin is the fallback locator.
func (c *LogsConfig) validate(admin Admin) error {
	if c.PickupTimeout < 0 || c.MaxPerNode < 0 || c.MaxSessions < 0 {
		return fmt.Errorf("httpapi: %w: Logs.PickupTimeout (%v), MaxPerNode (%d) and MaxSessions (%d) must not be negative",
			errdefs.ErrInvalidArgument, c.PickupTimeout, c.MaxPerNode, c.MaxSessions)
	}
	if c.PickupTimeout == 0 {
		c.PickupTimeout = DefaultPickupTimeout
	}
	if c.MaxPerNode == 0 {
		c.MaxPerNode = DefaultMaxPerNode
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if l, ok := admin.(PodLocator); ok && c.Locator == nil {
		c.Locator = l
	}
	return nil
}

// logRoutes are `moor logs` (admin) and the node side of the sessions
// of hub.
func (h *Handler) logRoutes(hub *sessionHub) []route {
	return []route{
		{"GET " + api.PathLogs, h.admin(h.logs(hub))},
		{"GET " + api.PathNodeSessions, h.node(h.claimSessions(hub))},
		{"POST " + api.PathNodeSession, h.node(h.answerSession(hub))},
	}
}

// logs serves api.PathLogs: it finds the pod's node, queues a logs
// session for it and relays the node's answer, the log as plain text.
func (h *Handler) logs(hub *sessionHub) handlerFunc {
	return h.serveSession(hub, sessionEndpoint{
		name:        "logs",
		stream:      "log stream",
		contentType: "text/plain; charset=utf-8",
		parse: func(q url.Values) (sessionCall, error) {
			req, err := api.ParseLogRequest(q)
			if err != nil {
				return sessionCall{}, err
			}
			return sessionCall{namespace: req.Namespace, pod: req.Pod,
				req: api.SessionRequest{Kind: api.SessionKindLogs, LogRequest: req}}, nil
		},
	})
}

// claimSessions is the agent's long-poll for sessions: it answers with
// the node's pending sessions as soon as there are any, or [] after the
// wait.
func (h *Handler) claimSessions(hub *sessionHub) func(w http.ResponseWriter, r *http.Request, name string) error {
	return func(w http.ResponseWriter, r *http.Request, name string) error {
		wait, err := parseWait(r.URL.Query().Get("wait"), h.cfg.MaxWait)
		if err != nil {
			return err
		}
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + bodyReadTimeout))
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		defer cancel()
		reqs := hub.claim(ctx, name)
		if reqs == nil {
			reqs = []api.SessionRequest{}
		}
		w.Header().Set("Cache-Control", "no-cache")
		return writeJSON(w, http.StatusOK, reqs)
	}
}

// answerSession takes a node's answer to one of its sessions: a
// api.SessionError, or a stream that the client's handler reads from
// this request's body while this handler waits.
func (h *Handler) answerSession(hub *sessionHub) func(w http.ResponseWriter, r *http.Request, name string) error {
	return func(w http.ResponseWriter, r *http.Request, name string) error {
		id := r.PathValue("id")
		ct := r.Header.Get("Content-Type")
		if ct != "" {
			var err error
			if ct, _, err = mime.ParseMediaType(ct); err != nil {
				return fmt.Errorf("%w: session answer: Content-Type %q: %w", errdefs.ErrInvalidArgument, r.Header.Get("Content-Type"), err)
			}
		}
		rc := http.NewResponseController(w)
		up := &upload{finished: make(chan struct{}), stop: func() { _ = rc.SetReadDeadline(time.Now()) }}
		switch ct {
		case api.ContentTypeSessionError:
			var e api.SessionError
			body, done := h.body(w, r)
			err := decodeJSON(body, &e)
			done()
			if err != nil {
				return fmt.Errorf("session answer: %w", err)
			}
			if e.Error == "" {
				e.Error = fmt.Sprintf("node %q could not serve the request", name)
			}
			up.errBody, up.drained = &e, true
		case api.ContentTypeSessionStream, "":
			up.body = r.Body
		default:
			return fmt.Errorf("%w: session answer: Content-Type %q: want %s (the stream) or %s (an error)",
				errdefs.ErrInvalidArgument, ct, api.ContentTypeSessionStream, api.ContentTypeSessionError)
		}
		if err := hub.attach(name, id, up); err != nil {
			return err
		}
		<-up.finished
		if !up.drained {
			// Normal for follows: the client stopped reading. 410 tells the
			// node to stop sending; its stream was cut off already.
			return writeJSON(w, http.StatusGone, ErrorBody{Error: "the client went away before the stream ended"})
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
