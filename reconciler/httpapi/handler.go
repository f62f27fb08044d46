// Package httpapi is the reconciler's HTTPS API: the join handshake, the
// long-poll nodes read their desired state from, status reports and the
// admin views the CLI reads. It owns request parsing, authorisation by
// client-certificate subject, the mapping of error classes to HTTP statuses
// and the Hub of published documents.
//
// It must not touch Git, the state store or the planner: everything it
// answers comes through the small interfaces below, which the controller
// implements.
package httpapi

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

// Joiner admits a node: it checks the join secret, signs the node's
// certificate request and registers the node.
type Joiner interface {
	Join(ctx context.Context, req api.JoinRequest) (api.JoinResponse, error)
}

// StatusSink takes a node's status report. The handler has already checked
// that the report names the node that sent it.
type StatusSink interface {
	ReportStatus(ctx context.Context, s api.NodeStatus) error
}

// Admin answers the CLI.
type Admin interface {
	Sync(ctx context.Context) (api.SyncResponse, error)
	Pods(ctx context.Context) ([]api.PodView, error)
	Deployments(ctx context.Context) ([]api.DeploymentView, error)
	Nodes(ctx context.Context) ([]api.NodeView, error)
	Commits(ctx context.Context) ([]api.CommitView, error)
	Services(ctx context.Context) ([]api.ServiceView, error)
}

// Defaults of Config.
const (
	DefaultMaxWait = 30 * time.Second
	DefaultMaxBody = 1 << 20
)

// bodyReadTimeout bounds how long a client may take to send a request body.
const bodyReadTimeout = 30 * time.Second

// Config configures a Handler.
type Config struct {
	Hub    *Hub
	Joiner Joiner
	Status StatusSink
	Admin  Admin
	// Log receives request errors; callers add the component attribute.
	Log *slog.Logger
	// MaxWait caps a long-poll's wait parameter (default DefaultMaxWait).
	MaxWait time.Duration
	// MaxBody caps request bodies in bytes (default DefaultMaxBody).
	MaxBody int64
	// Batch serves Jobs and CronJobs; without it those endpoints answer
	// 501 Not Implemented.
	Batch BatchAdmin
	// Logs configures `moor logs` and the node sessions carrying it.
	Logs LogsConfig
}

// Validate checks the configuration and fills in defaults.
func (c *Config) Validate() error {
	var missing []string
	if c.Hub == nil {
		missing = append(missing, "Hub")
	}
	if c.Joiner == nil {
		missing = append(missing, "Joiner")
	}
	if c.Status == nil {
		missing = append(missing, "Status")
	}
	if c.Admin == nil {
		missing = append(missing, "Admin")
	}
	if len(missing) > 0 {
		return fmt.Errorf("httpapi: %w: config needs %v", errdefs.ErrInvalidArgument, missing)
	}
	if c.MaxWait < 0 || c.MaxBody < 0 {
		return fmt.Errorf("httpapi: %w: MaxWait (%v) and MaxBody (%d) must not be negative", errdefs.ErrInvalidArgument, c.MaxWait, c.MaxBody)
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.Log == nil {
		c.Log = slog.Default().With("component", "httpapi")
	}
	return c.Logs.validate(c.Admin)
}

// Handler serves the API. Create it with New.
type Handler struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
}

var _ http.Handler = (*Handler)(nil)

// route is one endpoint: a ServeMux pattern and its handler.
type route struct {
	pattern string
	fn      handlerFunc
}

// New returns a handler for cfg.
func New(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, log: cfg.Log, mux: http.NewServeMux()}
	routes := []route{
		{"POST " + api.PathJoin, h.join},
		{"GET " + api.PathDesired, h.node(h.desired)},
		{"PUT " + api.PathNodeStatus, h.node(h.status)},
		{"POST " + api.PathSync, h.admin(h.sync)},
		{"GET " + api.PathPods, h.admin(list(cfg.Admin.Pods))},
		{"GET " + api.PathDeployments, h.admin(list(cfg.Admin.Deployments))},
		{"GET " + api.PathNodes, h.admin(list(cfg.Admin.Nodes))},
		{"GET " + api.PathCommits, h.admin(list(cfg.Admin.Commits))},
		{"GET " + api.PathServices, h.admin(list(cfg.Admin.Services))},
	}
	hub := newSessionHub(cfg.Logs)
	for _, r := range slices.Concat(routes, h.batchRoutes(), h.logRoutes(hub), h.execRoutes(hub), h.secretRoutes()) {
		h.mux.Handle(r.pattern, h.serve(r.fn))
	}
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// handlerFunc is an endpoint; a returned error becomes the response.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (h *Handler) serve(fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			h.writeError(w, r, err)
		}
	})
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := httpStatus(err)
	attrs := []any{"method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", status, "err", err}
	if status >= 500 {
		h.log.Error("request failed", attrs...)
	} else {
		h.log.Info("request rejected", attrs...)
	}
	if werr := writeJSON(w, status, ErrorBody{Error: err.Error()}); werr != nil {
		h.log.Debug("write error response", "err", werr)
	}
}

// node wraps an endpoint under /v1/nodes/{name}/ that only node {name} may call.
func (h *Handler) node(fn func(w http.ResponseWriter, r *http.Request, name string) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		cert, err := clientCert(r)
		if err != nil {
			return err
		}
		if !slices.Contains(cert.Subject.Organization, api.GroupNodes) || cert.Subject.CommonName != api.NodeCNPrefix+name {
			return fmt.Errorf("%w: client certificate %q may not act for node %q; a node reads and reports only its own state",
				errdefs.ErrPermissionDenied, cert.Subject.String(), name)
		}
		return fn(w, r, name)
	}
}

// admin wraps an endpoint only admin certificates may call.
func (h *Handler) admin(fn handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		cert, err := clientCert(r)
		if err != nil {
			return err
		}
		if !slices.Contains(cert.Subject.Organization, api.GroupAdmins) {
			return fmt.Errorf("%w: client certificate %q is not in group %s; use the admin config the server wrote to its data dir",
				errdefs.ErrPermissionDenied, cert.Subject.String(), api.GroupAdmins)
		}
		return fn(w, r)
	}
}

// clientCert returns the request's client certificate, verified against the
// CA by the TLS layer.
func clientCert(r *http.Request) (*x509.Certificate, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, fmt.Errorf("%w: this endpoint needs a client certificate signed by the server's CA", errdefs.ErrUnauthenticated)
	}
	return r.TLS.VerifiedChains[0][0], nil
}

// body returns r's body capped at MaxBody, with a deadline bounding a slow
// sender. done lifts the deadline, so that it cannot cancel the request
// while the handler works; call it once the body is read.
func (h *Handler) body(w http.ResponseWriter, r *http.Request) (body io.Reader, done func()) {
	rc := http.NewResponseController(w)
	done = func() {}
	if err := rc.SetReadDeadline(time.Now().Add(bodyReadTimeout)); err == nil {
		done = func() { _ = rc.SetReadDeadline(time.Time{}) }
	}
	return http.MaxBytesReader(w, r.Body, h.cfg.MaxBody), done
}

func (h *Handler) join(w http.ResponseWriter, r *http.Request) error {
	var req api.JoinRequest
	body, done := h.body(w, r)
	err := decodeJSON(body, &req)
	done()
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	resp, err := h.cfg.Joiner.Join(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request, name string) error {
	body, done := h.body(w, r)
	s, err := decodeStatus(body)
	done()
	if err != nil {
		return err
	}
	if s.Node != name {
		return fmt.Errorf("%w: status names node %q but was sent by node %q", errdefs.ErrPermissionDenied, s.Node, name)
	}
	if err := h.cfg.Status.ReportStatus(r.Context(), s); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) sync(w http.ResponseWriter, r *http.Request) error {
	resp, err := h.cfg.Admin.Sync(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

// list serves a view as a JSON array ([] rather than null when empty).
func list[T any](fn func(context.Context) ([]T, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := fn(r.Context())
		if err != nil {
			return err
		}
		if v == nil {
			v = []T{}
		}
		return writeJSON(w, http.StatusOK, v)
	}
}
