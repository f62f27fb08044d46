package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"time"

	"github.com/containerd/errdefs"
)

// Results, as answered in Response.Result and counted by Recorder.
const (
	ResultTriggered    = "triggered"    // push to the tracked branch: fetch requested (202)
	ResultIgnored      = "ignored"      // other branch, tag, deletion or event (202)
	ResultDuplicate    = "duplicate"    // delivery id seen before (200)
	ResultPing         = "ping"         // (200)
	ResultUnauthorized = "unauthorized" // missing or wrong signature (401)
	ResultTooLarge     = "too_large"    // body over MaxBody (413)
	ResultTimeout      = "timeout"      // body not read within ReadTimeout (408)
	ResultBadRequest   = "bad_request"  // malformed payload (400)
	ResultNotFound     = "not_found"    // unknown or unconfigured provider (404)
	ResultBadMethod    = "bad_method"   // not POST (405)
)

// Response is the JSON body of every answer.
type Response struct {
	Result  string `json:"result"`
	Message string `json:"message"`
	Event   *Event `json:"event,omitempty"`
}

// spec is one provider's verifier and pure parser.
type spec struct {
	verify verifier
	parse  func(http.Header, []byte) (Event, error)
}

var specs = map[Provider]spec{
	GitHub:    {prefixedHMAC("X-Hub-Signature-256"), parseGitHub},
	GitLab:    {gitlabToken, parseGitLab},
	Gitea:     {bareHMAC("X-Gitea-Signature"), parseGitea},
	Forgejo:   {bareHMAC("X-Forgejo-Signature", "X-Gitea-Signature"), parseForgejo},
	Bitbucket: {prefixedHMAC("X-Hub-Signature"), parseBitbucket},
	Generic:   {prefixedHMAC(genericSignatureHeader), parseGeneric},
}

// Handler serves POST /hooks/{provider}. Mount it as
// mux.Handle("/hooks/", h) or mux.Handle("POST /hooks/{provider}", h):
// it takes the provider from the path's last segment.
type Handler struct {
	cfg   Config
	log   *slog.Logger
	dedup *dedup
}

// NewHandler validates cfg and returns the handler.
func NewHandler(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Handler{
		cfg:   cfg,
		log:   cfg.Log.With("component", "webhook"),
		dedup: newDedup(cfg.DedupSize, cfg.DedupTTL),
	}, nil
}

// ServeHTTP verifies, parses and answers one delivery. It never waits for
// the fetch.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := h.cfg.Now()
	name := r.PathValue("provider")
	if name == "" {
		name = path.Base(r.URL.Path)
	}
	p := Provider(name)
	sp, ok := specs[p]
	secret := h.cfg.Secrets[p]
	if !ok || secret == "" {
		label := string(p)
		if !ok {
			label = "unknown" // bound the metric's label values
		}
		h.answer(w, label, http.StatusNotFound, Response{Result: ResultNotFound,
			Message: fmt.Sprintf("no webhook receiver %q is configured; configured providers get a secret in the server's webhook secrets", name)})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.answer(w, name, http.StatusMethodNotAllowed, Response{Result: ResultBadMethod, Message: "webhooks are delivered with POST"})
		return
	}
	body, status, res, err := h.readBody(w, r)
	if err != nil {
		h.log.Warn("webhook body not read", "provider", p, "remote", r.RemoteAddr, "err", err)
		h.answer(w, name, status, Response{Result: res, Message: err.Error()})
		return
	}
	if err := sp.verify(r.Header, body, secret); err != nil {
		h.log.Warn("webhook rejected", "provider", p, "remote", r.RemoteAddr, "err", err)
		h.answer(w, name, http.StatusUnauthorized, Response{Result: ResultUnauthorized, Message: err.Error()})
		return
	}
	ev, err := parse(sp, r.Header, body)
	if err != nil {
		h.log.Warn("webhook payload rejected", "provider", p, "remote", r.RemoteAddr, "err", err)
		h.answer(w, name, http.StatusBadRequest, Response{Result: ResultBadRequest, Message: err.Error()})
		return
	}
	status, resp := h.decide(ev, arrived)
	h.log.Info("webhook", "provider", p, "event", ev.Name, "delivery", ev.Delivery, "result", resp.Result, "message", resp.Message)
	h.answer(w, name, status, resp)
}

// readBody reads the body within MaxBody and ReadTimeout. The deadline is
// set on the connection itself, so it holds on listeners without a
// ReadTimeout; recorders that cannot set one are read without it.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, string, error) {
	tooLarge := func() ([]byte, int, string, error) {
		w.Header().Set("Connection", "close")
		return nil, http.StatusRequestEntityTooLarge, ResultTooLarge,
			fmt.Errorf("%w: body is over the %d-byte limit", errdefs.ErrInvalidArgument, h.cfg.MaxBody)
	}
	if r.ContentLength > h.cfg.MaxBody {
		return tooLarge()
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(h.cfg.ReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	if err == nil {
		_ = rc.SetReadDeadline(time.Time{})
		return body, 0, "", nil
	}
	// Do not let net/http drain the rest of a body we gave up on.
	w.Header().Set("Connection", "close")
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return tooLarge()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, http.StatusRequestTimeout, ResultTimeout,
			fmt.Errorf("body not received within %s: %w", h.cfg.ReadTimeout, err)
	default:
		return nil, http.StatusBadRequest, ResultBadRequest, fmt.Errorf("read body: %w", err)
	}
}

// parse unwraps a form-encoded delivery (GitHub and Gitea can send
// payload=<json>) after verification, then runs the provider's parser.
func parse(sp spec, hdr http.Header, body []byte) (Event, error) {
	if mt, _, _ := mime.ParseMediaType(hdr.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return Event{}, fmt.Errorf("%w: form-encoded body: %v", errdefs.ErrInvalidArgument, err)
		}
		body = []byte(form.Get("payload"))
	}
	return sp.parse(hdr, body)
}

// decide turns a verified event into an answer and, for a push to the
// tracked branch, a fetch request.
func (h *Handler) decide(ev Event, arrived time.Time) (int, Response) {
	resp := Response{Event: &ev}
	if ev.Delivery != "" && h.dedup.seen(string(ev.Provider)+"/"+ev.Delivery, arrived) {
		resp.Result, resp.Message = ResultDuplicate, fmt.Sprintf("duplicate delivery %s; already processed", ev.Delivery)
		return http.StatusOK, resp
	}
	switch ev.Kind {
	case KindPing:
		resp.Result, resp.Message = ResultPing, "pong"
		return http.StatusOK, resp
	case KindOther:
		resp.Result, resp.Message = ResultIgnored, fmt.Sprintf("event %q is not a push; ignored", ev.Name)
		return http.StatusAccepted, resp
	}
	c, ok := ev.Branch(h.cfg.Branch)
	switch {
	case len(ev.Changes) == 0 && ev.Kind == KindPush:
		// A generic "fetch now".
	case !ok:
		resp.Result, resp.Message = ResultIgnored, fmt.Sprintf("push does not touch the tracked branch %q; ignored", h.cfg.Branch)
		return http.StatusAccepted, resp
	case c.Deleted:
		resp.Result, resp.Message = ResultIgnored, fmt.Sprintf("tracked branch %q was deleted; the deployed commit stays", h.cfg.Branch)
		return http.StatusAccepted, resp
	}
	reason := fmt.Sprintf("%s push to %s", ev.Provider, h.cfg.Branch)
	if ev.Pusher != "" {
		reason += " by " + ev.Pusher
	}
	h.cfg.Trigger.Submit(Cause{At: arrived, Reason: reason, Commit: c.After})
	resp.Result, resp.Message = ResultTriggered, fmt.Sprintf("fetch of %q requested", h.cfg.Branch)
	return http.StatusAccepted, resp
}

func (h *Handler) answer(w http.ResponseWriter, provider string, status int, resp Response) {
	if h.cfg.Metrics != nil {
		h.cfg.Metrics.WebhookRequest(provider, resp.Result)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp)
}
