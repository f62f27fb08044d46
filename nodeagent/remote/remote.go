// Package remote is the node agent's end of the reverse tunnel through
// which the server reaches the node for `moor logs` and `moor exec`. The
// server cannot dial nodes (they may sit behind NAT), so the agent
// long-polls api.PathNodeSessions over its own outbound mTLS connection
// and answers each session it picks up by uploading to
// api.PathNodeSession: the log stream or exec stream, or an
// api.SessionError; an exec session reads the client's stdin from
// api.PathNodeSessionStdin. The server pipes the upload to the client
// that asked; a client that goes away ends the upload, which cancels the
// context the stream was opened with (and so kills an exec's command).
//
// It owns only the loop and its HTTP requests. What a session returns
// comes from the LogSource and ExecSource the agent provides; the package
// must not import the reconciler, the rest of the node agent or any
// runtime.
package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/nodeagent/internal/backoff"
)

// LogSource opens container logs on this node.
type LogSource interface {
	// OpenLogs checks req against the node's pods and opens the log.
	// Errors carry their class (errdefs: not found, invalid argument, ...),
	// which becomes the HTTP status the client sees. The stream's Read
	// blocks while a followed container runs, returns io.EOF at the end
	// and fails once ctx ends; Close releases it.
	OpenLogs(ctx context.Context, req api.LogRequest) (io.ReadCloser, error)
}

// Defaults of Config.
const (
	DefaultPollWait    = 30 * time.Second
	DefaultMaxSessions = 8
	DefaultRetryBase   = 500 * time.Millisecond
	DefaultRetryMax    = 30 * time.Second
)

// requestTimeout bounds polls beyond their wait, and error answers.
const requestTimeout = 30 * time.Second

// maxPollBytes bounds the body of a poll's answer.
const maxPollBytes = 1 << 20

// Config configures a Loop.
type Config struct {
	// Client talks to the server as the node (mTLS). It must have no
	// overall Timeout: streams last as long as their client reads.
	Client *http.Client
	// Server is the server's base URL, https://host:port.
	Server string
	// Node is the node's name, as in its certificate.
	Node string
	// Logs serves the logs sessions.
	Logs LogSource
	// Exec serves the exec sessions; nil answers them 501 Not
	// Implemented.
	Exec ExecSource
	// Log receives the loop's logs; component=remote is added. Nil
	// discards them.
	Log *slog.Logger
	// PollWait is the long-poll's wait (default DefaultPollWait).
	PollWait time.Duration
	// MaxSessions caps the sessions served at once (default
	// DefaultMaxSessions); more are answered 429 at once.
	MaxSessions int
	// RetryBase doubles per consecutive failed poll up to RetryMax
	// (defaults DefaultRetryBase, DefaultRetryMax), with jitter.
	RetryBase, RetryMax time.Duration
}

// Validate checks the configuration and fills in defaults.
func (c *Config) Validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("remote: Client is required"))
	}
	if u, err := url.Parse(c.Server); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		errs = append(errs, fmt.Errorf("remote: server %q must be a URL like https://host:port", c.Server))
	}
	if c.Node == "" {
		errs = append(errs, errors.New("remote: Node is required"))
	}
	if c.Logs == nil {
		errs = append(errs, errors.New("remote: Logs is required"))
	}
	if c.PollWait < 0 || c.MaxSessions < 0 || c.RetryBase < 0 || c.RetryMax < 0 {
		errs = append(errs, errors.New("remote: PollWait, MaxSessions, RetryBase and RetryMax must not be negative; use 0 for the default"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", errdefs.ErrInvalidArgument, err)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.PollWait, DefaultPollWait)
	def(&c.RetryBase, DefaultRetryBase)
	def(&c.RetryMax, DefaultRetryMax)
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.RetryMax < c.RetryBase {
		c.RetryMax = c.RetryBase
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	c.Server = strings.TrimRight(c.Server, "/")
	return nil
}

// Loop picks up and serves the node's sessions. Create it with New.
type Loop struct {
	cfg   Config
	log   *slog.Logger
	slots chan struct{} // one per session being served
}

// New returns a loop for cfg.
func New(cfg Config) (*Loop, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Loop{cfg: cfg, log: cfg.Log.With("component", "remote"), slots: make(chan struct{}, cfg.MaxSessions)}, nil
}

// Run polls for sessions and serves each in its own goroutine until ctx
// ends; failed polls are retried with jittered exponential backoff. It
// returns once every session it started has ended, which ctx's end
// hastens.
func (l *Loop) Run(ctx context.Context) {
	var sessions sync.WaitGroup
	defer sessions.Wait()
	failures := 0
	for ctx.Err() == nil {
		start := time.Now()
		reqs, err := l.poll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d := backoff.Jitter(backoff.Policy{Base: l.cfg.RetryBase, Max: l.cfg.RetryMax}.Delay(failures))
			failures++
			l.log.Warn("poll for sessions; will retry", "err", err, "retry_in", d.Round(time.Millisecond))
			if !backoff.Sleep(ctx, d) {
				return
			}
			continue
		}
		failures = 0
		for _, req := range reqs {
			select {
			case l.slots <- struct{}{}:
				sessions.Go(func() {
					defer func() { <-l.slots }()
					l.serve(ctx, req)
				})
			default:
				sessions.Go(func() {
					l.answerError(ctx, req.ID, http.StatusTooManyRequests,
						fmt.Sprintf("node %q already serves %d sessions, its limit; end some and retry", l.cfg.Node, l.cfg.MaxSessions))
				})
			}
		}
		// A server answering long before the wait is over must not turn
		// this loop into a busy one.
		if len(reqs) == 0 {
			if rest := l.cfg.PollWait/2 - time.Since(start); rest > 0 && !backoff.Sleep(ctx, rest) {
				return
			}
		}
	}
}

// poll long-polls the node's pending sessions.
func (l *Loop) poll(ctx context.Context) ([]api.SessionRequest, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.PollWait+requestTimeout)
	defer cancel()
	u := l.cfg.Server + l.path(api.PathNodeSessions, "") + "?" + url.Values{"wait": {l.cfg.PollWait.String()}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("poll sessions: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := l.cfg.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("poll sessions: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("poll sessions: %w", statusError(resp))
	}
	var reqs []api.SessionRequest
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxPollBytes)).Decode(&reqs); err != nil {
		return nil, fmt.Errorf("poll sessions: decode answer: %w", err)
	}
	return reqs, nil
}

// serve answers one session with its kind's stream, or an error.
func (l *Loop) serve(ctx context.Context, req api.SessionRequest) {
	switch {
	case req.Kind == api.SessionKindExec && l.cfg.Exec != nil:
		l.serveExec(ctx, req)
	case req.Kind == api.SessionKindLogs:
		l.serveLogs(ctx, req)
	default:
		l.answerError(ctx, req.ID, http.StatusNotImplemented,
			fmt.Sprintf("the agent of node %q does not serve %q sessions; upgrade it", l.cfg.Node, req.Kind))
	}
}

// serveLogs answers a logs session: the stream the source opens, or the
// error it fails with.
func (l *Loop) serveLogs(ctx context.Context, req api.SessionRequest) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream once its upload is over
	log := l.log.With("session", req.ID, "kind", req.Kind, "namespace", req.Namespace, "pod", req.Pod, "container", req.Container)
	rc, err := l.cfg.Logs.OpenLogs(ctx, req.LogRequest)
	if err != nil {
		log.Info("cannot serve logs", "err", err)
		l.answerError(ctx, req.ID, statusOf(err), err.Error())
		return
	}
	defer func() {
		cancel() // a Read the HTTP client may still be in returns
		rc.Close()
	}()
	log.Debug("streaming logs", "follow", req.Follow)
	// Only rc's Reader: rc is closed here, not by the HTTP client.
	switch err := l.upload(ctx, req.ID, struct{ io.Reader }{rc}); {
	case err == nil:
		log.Debug("logs streamed")
	case errors.Is(err, errClientGone):
		log.Debug("the client stopped reading the logs")
	case ctx.Err() == nil:
		log.Warn("stream logs", "err", err)
	}
}

// errClientGone is upload's error when the server stopped reading the
// stream because its client went away.
var errClientGone = errors.New("the client went away")

// upload posts body as the stream that answers session id, until it ends
// or the server stops reading it. It returns nil once the server took the
// whole stream, errClientGone when the client went away first, else why
// the upload failed (ctx's end among the causes).
func (l *Loop) upload(ctx context.Context, id string, body io.Reader) error {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, l.cfg.Server+l.path(api.PathNodeSession, id), body)
	if err != nil {
		return err
	}
	hreq.ContentLength = -1 // streamed, chunked
	// As every session stream; the session's kind says what it carries.
	hreq.Header.Set("Content-Type", api.ContentTypeSessionStream)
	resp, err := l.cfg.Client.Do(hreq)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusOK:
		return nil
	case http.StatusGone:
		return errClientGone
	}
	return statusError(resp)
}

// answerError answers session id with an api.SessionError.
func (l *Loop) answerError(ctx context.Context, id string, status int, msg string) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	b, err := json.Marshal(api.SessionError{Status: status, Error: msg})
	if err != nil {
		l.log.Error("answer session", "session", id, "err", err)
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.cfg.Server+l.path(api.PathNodeSession, id), bytes.NewReader(b))
	if err != nil {
		l.log.Error("answer session", "session", id, "err", err)
		return
	}
	req.Header.Set("Content-Type", api.ContentTypeSessionError)
	resp, err := l.cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("answer session", "session", id, "err", err)
		}
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		l.log.Warn("answer session", "session", id, "err", statusError(resp))
	}
}

// path fills the node name and session id into an api path.
func (l *Loop) path(p, id string) string {
	return strings.NewReplacer("{name}", url.PathEscape(l.cfg.Node), "{id}", url.PathEscape(id)).Replace(p)
}

// statusOf is the HTTP status of an error's class.
func statusOf(err error) int {
	switch {
	case errdefs.IsInvalidArgument(err), errdefs.IsFailedPrecondition(err), errdefs.IsOutOfRange(err):
		return http.StatusBadRequest
	case errdefs.IsNotFound(err):
		return http.StatusNotFound
	case errdefs.IsPermissionDenied(err):
		return http.StatusForbidden
	case errdefs.IsResourceExhausted(err):
		return http.StatusTooManyRequests
	case errdefs.IsNotImplemented(err):
		return http.StatusNotImplemented
	case errdefs.IsUnavailable(err):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// statusError reads the start of an error answer.
func statusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if msg == "" {
		return fmt.Errorf("server answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return fmt.Errorf("server answered %d %s: %s", resp.StatusCode, http.StatusText(resp.StatusCode), msg)
}
