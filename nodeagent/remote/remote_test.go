package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

const node = "n1"

// answer is one POST the fake server received.
type answer struct {
	id, contentType, body string
}

// fakeServer serves the two session endpoints for node n1, as the moor
// server does: it hands out queued requests on polls and collects the
// answers. With cut set, it reads the first chunk of a stream and then
// stops reading, as the server does when its client went away.
type fakeServer struct {
	t       *testing.T
	srv     *httptest.Server
	queue   chan api.SessionRequest
	answers chan answer
	cut     bool
	// stdin is what the stdin endpoint answers per session id; a session
	// missing here answers 404.
	stdin map[string]io.Reader

	mu        sync.Mutex
	polls     int
	failPolls int // the first failPolls polls answer 500
}

func newFakeServer(t *testing.T) *fakeServer {
	s := &fakeServer{t: t, queue: make(chan api.SessionRequest, 16), answers: make(chan answer, 16), stdin: map[string]io.Reader{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+strings.Replace(api.PathNodeSessions, "{name}", node, 1), s.poll)
	mux.HandleFunc("POST "+strings.Replace(api.PathNodeSession, "{name}", node, 1), s.answer)
	mux.HandleFunc("GET "+strings.Replace(api.PathNodeSessionStdin, "{name}", node, 1), s.serveStdin)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *fakeServer) poll(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.polls++
	fail := s.polls <= s.failPolls
	s.mu.Unlock()
	if fail {
		http.Error(w, `{"error":"store is closed"}`, http.StatusInternalServerError)
		return
	}
	wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
	reqs := []api.SessionRequest{}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case req := <-s.queue:
		reqs = append(reqs, req)
		for more := true; more; {
			select {
			case req := <-s.queue:
				reqs = append(reqs, req)
			default:
				more = false
			}
		}
	case <-t.C:
	case <-r.Context().Done():
		return
	}
	json.NewEncoder(w).Encode(reqs)
}

func (s *fakeServer) answer(w http.ResponseWriter, r *http.Request) {
	a := answer{id: r.PathValue("id"), contentType: r.Header.Get("Content-Type")}
	if s.cut && a.contentType == api.ContentTypeSessionStream {
		buf := make([]byte, 64)
		n, _ := r.Body.Read(buf)
		a.body = string(buf[:n])
		s.answers <- a
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		http.Error(w, `{"error":"the client went away"}`, http.StatusGone)
		return
	}
	b, _ := io.ReadAll(r.Body)
	a.body = string(b)
	s.answers <- a
	w.WriteHeader(http.StatusNoContent)
}

func (s *fakeServer) next(t *testing.T) answer {
	t.Helper()
	select {
	case a := <-s.answers:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no answer within 10s")
	}
	return answer{}
}

// source serves fixed logs per pod: "quiet" streams one line, then blocks
// until its context ends (a followed container printing nothing more).
type source struct {
	ended    chan struct{} // closed when a quiet stream's context ended
	reading  chan struct{} // closed when a quiet stream returned its line
	blocking chan struct{} // closed by the test to release "slow" opens

	mu   sync.Mutex
	ctxs []context.Context // of every OpenLogs
}

func newSource() *source {
	return &source{ended: make(chan struct{}), reading: make(chan struct{}), blocking: make(chan struct{})}
}

func (s *source) OpenLogs(ctx context.Context, req api.LogRequest) (io.ReadCloser, error) {
	s.mu.Lock()
	s.ctxs = append(s.ctxs, ctx)
	s.mu.Unlock()
	switch req.Pod {
	case "web":
		return io.NopCloser(strings.NewReader("line 1\nline 2\n")), nil
	case "quiet":
		return &quietStream{ctx: ctx, first: "hello\n", ended: s.ended, reading: s.reading}, nil
	case "slow":
		select {
		case <-s.blocking:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return io.NopCloser(strings.NewReader("slow\n")), nil
	}
	return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("pod %q not found on node %q", req.Pod, node))
}

var _ LogSource = (*source)(nil)

type quietStream struct {
	ctx            context.Context
	first          string
	ended, reading chan struct{}
	once, once2    sync.Once
}

func (q *quietStream) Read(p []byte) (int, error) {
	if q.first != "" {
		n := copy(p, q.first)
		q.first = q.first[n:]
		q.once2.Do(func() { close(q.reading) })
		return n, nil
	}
	<-q.ctx.Done()
	q.once.Do(func() { close(q.ended) })
	return 0, q.ctx.Err()
}

func (q *quietStream) Close() error { return nil }

func startLoop(t *testing.T, s *fakeServer, src LogSource, maxSessions int) (stop func()) {
	t.Helper()
	return runLoop(t, Config{Client: s.srv.Client(), Server: s.srv.URL, Node: node, Logs: src, MaxSessions: maxSessions})
}

// runLoop runs a loop with cfg and fast test timings until the test ends.
func runLoop(t *testing.T, cfg Config) (stop func()) {
	t.Helper()
	cfg.PollWait, cfg.RetryBase, cfg.RetryMax = 2*time.Second, 10*time.Millisecond, 50*time.Millisecond
	cfg.Log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10s of cancellation")
		}
	}
	t.Cleanup(stop)
	return stop
}

func logsRequest(id, pod string) api.SessionRequest {
	return api.SessionRequest{ID: id, Kind: api.SessionKindLogs, LogRequest: api.LogRequest{Namespace: "default", Pod: pod}}
}

func TestServesSessions(t *testing.T) {
	s := newFakeServer(t)
	startLoop(t, s, newSource(), 0)
	s.queue <- logsRequest("s1", "web")
	s.queue <- logsRequest("s2", "ghost")
	s.queue <- api.SessionRequest{ID: "s3", Kind: "exec"}
	got := map[string]answer{}
	for range 3 {
		a := s.next(t)
		got[a.id] = a
	}
	if a := got["s1"]; a.contentType != api.ContentTypeSessionStream || a.body != "line 1\nline 2\n" {
		t.Errorf("s1: %+v", a)
	}
	for id, want := range map[string]api.SessionError{
		"s2": {Status: 404, Error: `pod "ghost" not found on node "n1"`},
		"s3": {Status: 501, Error: `the agent of node "n1" does not serve "exec" sessions; upgrade it`},
	} {
		a := got[id]
		var e api.SessionError
		if a.contentType != api.ContentTypeSessionError || json.Unmarshal([]byte(a.body), &e) != nil || e != want {
			t.Errorf("%s: %+v, want %+v", id, a, want)
		}
	}
}

// The server stops reading (its client went away): the stream's context
// ends, so the agent stops tailing.
func TestClientGoneEndsStream(t *testing.T) {
	s := newFakeServer(t)
	s.cut = true
	src := newSource()
	startLoop(t, s, src, 0)
	s.queue <- logsRequest("s1", "quiet")
	if a := s.next(t); a.body != "hello\n" {
		t.Fatalf("first chunk %q", a.body)
	}
	select {
	case <-src.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream still runs 5s after the server stopped reading")
	}
}

// Stopping the loop ends the sessions it serves.
func TestRunEndsSessions(t *testing.T) {
	s := newFakeServer(t)
	src := newSource()
	stop := startLoop(t, s, src, 0)
	s.queue <- logsRequest("s1", "quiet")
	select {
	case <-src.reading:
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not start streaming")
	}
	stop()
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(src.ctxs) != 1 || src.ctxs[0].Err() == nil {
		t.Fatal("Run returned while a session's stream was still open")
	}
}

func TestRetriesFailedPolls(t *testing.T) {
	s := newFakeServer(t)
	s.failPolls = 3
	startLoop(t, s, newSource(), 0)
	s.queue <- logsRequest("s1", "web")
	if a := s.next(t); a.id != "s1" || a.body != "line 1\nline 2\n" {
		t.Fatalf("after failed polls: %+v", a)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.polls < 4 {
		t.Fatalf("%d polls, want at least 4", s.polls)
	}
}

func TestSessionLimit(t *testing.T) {
	s := newFakeServer(t)
	src := newSource()
	startLoop(t, s, src, 1)
	s.queue <- logsRequest("s1", "slow")
	s.queue <- logsRequest("s2", "web")
	a := s.next(t)
	var e api.SessionError
	if a.id != "s2" || json.Unmarshal([]byte(a.body), &e) != nil || e.Status != http.StatusTooManyRequests {
		t.Fatalf("second session: %+v", a)
	}
	close(src.blocking)
	if a := s.next(t); a.id != "s1" || a.body != "slow\n" {
		t.Fatalf("first session: %+v", a)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Client: http.DefaultClient, Server: "https://moor:7443/", Node: node, Logs: newSource()}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if good.Server != "https://moor:7443" || good.PollWait != DefaultPollWait || good.MaxSessions != DefaultMaxSessions {
		t.Fatalf("defaults: %+v", good)
	}
	for _, bad := range []Config{
		{Server: "https://moor:7443", Node: node, Logs: newSource()},
		{Client: http.DefaultClient, Server: "moor:7443", Node: node, Logs: newSource()},
		{Client: http.DefaultClient, Server: "https://moor:7443", Logs: newSource()},
		{Client: http.DefaultClient, Server: "https://moor:7443", Node: node},
		{Client: http.DefaultClient, Server: "https://moor:7443", Node: node, Logs: newSource(), PollWait: -1},
	} {
		if err := bad.Validate(); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{errdefs.ErrNotFound, 404},
		{fmt.Errorf("x: %w", errdefs.ErrInvalidArgument), 400},
		{errdefs.ErrFailedPrecondition, 400},
		{errdefs.ErrUnavailable, 503},
		{fmt.Errorf("disk on fire"), 500},
	} {
		if got := statusOf(tc.err); got != tc.want {
			t.Errorf("%v: %d, want %d", tc.err, got, tc.want)
		}
	}
}
