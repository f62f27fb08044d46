package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

// fakeLocator places pods by name: "<pod>" → pods[pod].
type fakeLocator struct{ pods map[string]string }

func (f *fakeLocator) PodNode(_ context.Context, ns, name string) (string, error) {
	if name == "pending" {
		return "", fmt.Errorf("%w: pod %s/%s is not placed on a node yet", errdefs.ErrInvalidArgument, ns, name)
	}
	node, ok := f.pods[name]
	if !ok {
		return "", fmt.Errorf("%w: pods %q not found", errdefs.ErrNotFound, name)
	}
	return node, nil
}

var _ PodLocator = (*fakeLocator)(nil)

// logsEnv is a running API server with `moor logs` wired to fakeLocator,
// and clients speaking HTTP/1.1 or HTTP/2 (as the real agent and CLI do)
// without an overall timeout: streams last as long as the test wants.
type logsEnv struct {
	*env
}

func newLogsEnv(t *testing.T, h2 bool, cfg LogsConfig) *logsEnv {
	t.Helper()
	if cfg.Locator == nil {
		cfg.Locator = &fakeLocator{pods: map[string]string{"web": "n1", "db": "n2"}}
	}
	return &logsEnv{startEnv(t, Config{MaxWait: 5 * time.Second, Logs: cfg}, h2, 0)}
}

func sessionsPath(node string) string {
	return strings.Replace(api.PathNodeSessions, "{name}", node, 1)
}

func sessionPath(node, id string) string {
	return strings.NewReplacer("{name}", node, "{id}", id).Replace(api.PathNodeSession)
}

// poll claims node's sessions as its agent would.
func (e *logsEnv) poll(c *http.Client, node string) []api.SessionRequest {
	e.t.Helper()
	r := e.do(c, "GET", sessionsPath(node)+"?wait=5s", "")
	if r.status != http.StatusOK {
		e.t.Fatalf("poll: %d %s", r.status, r.body)
	}
	var reqs []api.SessionRequest
	if err := json.Unmarshal([]byte(r.body), &reqs); err != nil {
		e.t.Fatalf("poll body %q: %v", r.body, err)
	}
	return reqs
}

// stream is a `moor logs` request in flight.
type stream struct {
	resp *http.Response
	err  error
	done chan struct{}
}

// startLogs sends GET /v1/logs?query and returns once the answer's
// headers arrived (in the background: call wait).
func (e *logsEnv) startLogs(ctx context.Context, query string) *stream {
	s := &stream{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		req, err := http.NewRequestWithContext(ctx, "GET", e.url+api.PathLogs+"?"+query, nil)
		if err != nil {
			s.err = err
			return
		}
		s.resp, s.err = e.admin.Do(req)
	}()
	return s
}

func (s *stream) wait(t *testing.T) *http.Response {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to the logs request within 10s")
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	t.Cleanup(func() { s.resp.Body.Close() })
	return s.resp
}

// answer posts body as node's stream for session id and returns the
// status, or -1 and the error when the request failed.
func (e *logsEnv) answer(ctx context.Context, c *http.Client, node, id string, body io.Reader, contentType string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", e.url+sessionPath(node, id), body)
	if err != nil {
		return -1, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.Do(req)
	if err != nil {
		return -1, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func forBoth(t *testing.T, f func(t *testing.T, h2 bool)) {
	for _, h2 := range []bool{false, true} {
		name := "HTTP1"
		if h2 {
			name = "HTTP2"
		}
		t.Run(name, func(t *testing.T) { f(t, h2) })
	}
}

// The node picks the request up, streams two lines with a pause between
// them, and the client reads the first before the second is sent.
func TestLogsStreaming(t *testing.T) {
	forBoth(t, func(t *testing.T, h2 bool) {
		e := newLogsEnv(t, h2, LogsConfig{})
		n1 := e.nodeClient("n1")
		cli := e.startLogs(context.Background(), "namespace=ops&pod=web&container=c&follow=true&tailLines=3&timestamps=true")

		reqs := e.poll(n1, "n1")
		if len(reqs) != 1 {
			t.Fatalf("node got %d requests", len(reqs))
		}
		got := reqs[0]
		three := int64(3)
		want := api.LogRequest{Namespace: "ops", Pod: "web", Container: "c", Follow: true, TailLines: &three, Timestamps: true}
		if got.Kind != api.SessionKindLogs || got.ID == "" || got.Pod != want.Pod || got.Namespace != want.Namespace ||
			got.Container != want.Container || !got.Follow || got.TailLines == nil || *got.TailLines != 3 || !got.Timestamps || got.Previous {
			t.Fatalf("session request %+v, want %+v", got, want)
		}

		pr, pw := io.Pipe()
		answered := make(chan int, 1)
		go func() {
			code, err := e.answer(context.Background(), n1, "n1", got.ID, pr, api.ContentTypeSessionStream)
			if err != nil {
				t.Errorf("answer: %v", err)
			}
			answered <- code
		}()
		pw.Write([]byte("first line\n"))
		resp := cli.wait(t)
		if h2 != (resp.ProtoMajor == 2) {
			t.Fatalf("protocol %s", resp.Proto)
		}
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		if err != nil || line != "first line\n" {
			t.Fatalf("first line %q, %v", line, err)
		}
		pw.Write([]byte("second line\n"))
		pw.Close()
		rest, err := io.ReadAll(br)
		if err != nil || string(rest) != "second line\n" {
			t.Fatalf("rest %q, %v", rest, err)
		}
		if code := <-answered; code != http.StatusNoContent {
			t.Fatalf("node's upload answered %d, want 204", code)
		}
	})
}

// The client going away ends the node's upload, even while the node is
// sending nothing (a quiet follow).
func TestLogsClientCancelEndsUpload(t *testing.T) {
	forBoth(t, func(t *testing.T, h2 bool) {
		e := newLogsEnv(t, h2, LogsConfig{})
		n1 := e.nodeClient("n1")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cli := e.startLogs(ctx, "pod=web&follow=true")
		reqs := e.poll(n1, "n1")
		if len(reqs) != 1 {
			t.Fatalf("node got %d requests", len(reqs))
		}
		pr, pw := io.Pipe()
		defer pw.Close()
		answered := make(chan error, 1)
		go func() {
			code, err := e.answer(context.Background(), n1, "n1", reqs[0].ID, pr, api.ContentTypeSessionStream)
			if err == nil {
				err = fmt.Errorf("answered %d", code)
				if code/100 == 2 {
					err = nil
				}
			}
			answered <- err
		}()
		pw.Write([]byte("hello\n"))
		resp := cli.wait(t)
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || line != "hello\n" {
			t.Fatalf("line %q, %v", line, err)
		}
		cancel() // the client goes away; the node keeps the stream open
		err = within(t, answered, "the node's upload still runs 5s after the client went away")
		if err == nil {
			t.Fatal("want the upload to fail")
		}
		t.Logf("upload ended: %v", err)
	})
}

// A node that breaks its upload off makes the client's read fail rather
// than end cleanly.
func TestLogsUploadBrokenOff(t *testing.T) {
	forBoth(t, func(t *testing.T, h2 bool) {
		e := newLogsEnv(t, h2, LogsConfig{})
		n1 := e.nodeClient("n1")
		cli := e.startLogs(context.Background(), "pod=web&follow=true")
		reqs := e.poll(n1, "n1")
		pr, pw := io.Pipe()
		uctx, ucancel := context.WithCancel(context.Background())
		defer ucancel()
		go e.answer(uctx, n1, "n1", reqs[0].ID, pr, api.ContentTypeSessionStream)
		pw.Write([]byte("partial\n"))
		resp := cli.wait(t)
		br := bufio.NewReader(resp.Body)
		if line, err := br.ReadString('\n'); err != nil || line != "partial\n" {
			t.Fatalf("line %q, %v", line, err)
		}
		ucancel() // the node's request dies mid-stream
		wantBrokenOff(t, func() error { _, err := io.ReadAll(br); return err })
	})
}

// wantBrokenOff fails t unless read, the client's read of the rest of a
// stream the node broke off, fails within 5s.
func wantBrokenOff(t *testing.T, read func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- read() }()
	if err := within(t, done, "the client still reads 5s after the node's upload broke off"); err == nil {
		t.Fatal("the client saw a clean end of a stream the node broke off")
	}
}

// within returns what ch yields, failing t with stuck if nothing arrives
// within 5s.
func within[T any](t *testing.T, ch <-chan T, stuck string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal(stuck)
		panic("unreachable")
	}
}

// An error the node answers with is relayed with its status.
func TestLogsErrorRelayed(t *testing.T) {
	e := newLogsEnv(t, false, LogsConfig{})
	n1 := e.nodeClient("n1")
	for _, tc := range []struct {
		answer     api.SessionError
		wantStatus int
		wantMsg    string
	}{
		{api.SessionError{Status: 404, Error: `container "x" not found in pod "web"`}, 404, `container "x" not found`},
		{api.SessionError{Status: 400, Error: `previous terminated container "c" in pod "web" not found`}, 400, "previous"},
		{api.SessionError{Status: 200, Error: "odd"}, http.StatusBadGateway, "odd"},
		{api.SessionError{Status: 500}, 500, `node "n1" could not serve`},
	} {
		cli := e.startLogs(context.Background(), "pod=web")
		reqs := e.poll(n1, "n1")
		b, _ := json.Marshal(tc.answer)
		if code, err := e.answer(context.Background(), n1, "n1", reqs[0].ID, bytes.NewReader(b), api.ContentTypeSessionError); err != nil || code != http.StatusNoContent {
			t.Fatalf("answer: %d %v", code, err)
		}
		resp := cli.wait(t)
		body, _ := io.ReadAll(resp.Body)
		var eb ErrorBody
		if resp.StatusCode != tc.wantStatus || json.Unmarshal(body, &eb) != nil || !strings.Contains(eb.Error, tc.wantMsg) {
			t.Errorf("%+v: got %d %s, want %d with %q", tc.answer, resp.StatusCode, body, tc.wantStatus, tc.wantMsg)
		}
	}
}

func TestLogsTimeouts(t *testing.T) {
	e := newLogsEnv(t, false, LogsConfig{PickupTimeout: 300 * time.Millisecond})
	n1 := e.nodeClient("n1")

	// No agent polls: 504 naming the node.
	r := e.do(e.admin, "GET", api.PathLogs+"?pod=web", "")
	wantError(t, r, http.StatusGatewayTimeout)
	if !strings.Contains(r.body, `node \"n1\" did not pick up the request`) || !strings.Contains(r.body, "is its agent running?") {
		t.Fatalf("body %s", r.body)
	}

	// The agent takes the request but never answers.
	cli := e.startLogs(context.Background(), "pod=web")
	if reqs := e.poll(n1, "n1"); len(reqs) != 1 {
		t.Fatalf("node got %d requests", len(reqs))
	}
	resp := cli.wait(t)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), "picked up the request but did not answer") {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}

	// A long-poll with nothing to do answers [] after its wait.
	start := time.Now()
	r = e.do(n1, "GET", sessionsPath("n1")+"?wait=100ms", "")
	if r.status != http.StatusOK || strings.TrimSpace(r.body) != "[]" || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("empty poll: %d %q after %v", r.status, r.body, time.Since(start))
	}
}

func TestLogsAuthorization(t *testing.T) {
	e := newLogsEnv(t, false, LogsConfig{PickupTimeout: 5 * time.Second})
	n1, n2 := e.nodeClient("n1"), e.nodeClient("n2")
	for _, tc := range []struct {
		name   string
		client *http.Client
		method string
		path   string
		want   int
	}{
		{"NodeReadsLogs", n1, "GET", api.PathLogs + "?pod=web", 403},
		{"AnonReadsLogs", e.anon, "GET", api.PathLogs + "?pod=web", 401},
		{"NodePollsOtherNode", n2, "GET", sessionsPath("n1"), 403},
		{"AdminPolls", e.admin, "GET", sessionsPath("n1"), 403},
		{"AnonPolls", e.anon, "GET", sessionsPath("n1"), 401},
		{"NodeAnswersUnknown", n1, "POST", sessionPath("n1", "nope"), 404},
		{"NodeAnswersForOther", n2, "POST", sessionPath("n1", "nope"), 403},
		{"AdminAnswers", e.admin, "POST", sessionPath("n1", "nope"), 403},
		{"MissingPod", e.admin, "GET", api.PathLogs + "?pod=ghost", 404},
		{"PendingPod", e.admin, "GET", api.PathLogs + "?pod=pending", 400},
		{"NoPod", e.admin, "GET", api.PathLogs + "?namespace=default", 400},
		{"BadTail", e.admin, "GET", api.PathLogs + "?pod=web&tailLines=-3", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.do(tc.client, tc.method, tc.path, "", "Content-Type", api.ContentTypeSessionStream), tc.want)
		})
	}

	// n2 learns n1's session id (it cannot from its own polls) and tries
	// to answer it: refused, and n1 still can.
	cli := e.startLogs(context.Background(), "pod=web")
	reqs := e.poll(n1, "n1")
	id := reqs[0].ID
	wantError(t, e.do(n2, "POST", sessionPath("n2", id), "evil\n", "Content-Type", api.ContentTypeSessionStream), http.StatusForbidden)
	if code, err := e.answer(context.Background(), n1, "n1", id, strings.NewReader("good\n"), api.ContentTypeSessionStream); err != nil || code != 204 {
		t.Fatalf("answer: %d %v", code, err)
	}
	// A second answer to the same session is refused.
	wantError(t, e.do(n1, "POST", sessionPath("n1", id), "again\n", "Content-Type", api.ContentTypeSessionStream), http.StatusNotFound)
	resp := cli.wait(t)
	if body, _ := io.ReadAll(resp.Body); string(body) != "good\n" {
		t.Fatalf("client got %q", body)
	}
	wantError(t, e.do(n1, "POST", sessionPath("n1", "x"), "", "Content-Type", "text/html"), http.StatusBadRequest)
}

func TestLogsPerNodeLimit(t *testing.T) {
	e := newLogsEnv(t, false, LogsConfig{MaxPerNode: 1, PickupTimeout: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	first := e.startLogs(ctx, "pod=web&follow=true")
	n1 := e.nodeClient("n1")
	if reqs := e.poll(n1, "n1"); len(reqs) != 1 {
		t.Fatalf("node got %d requests", len(reqs))
	}
	wantError(t, e.do(e.admin, "GET", api.PathLogs+"?pod=web", ""), http.StatusTooManyRequests)
	cancel()
	<-first.done
	// Another node is not limited by n1's streams, and n1 gets its slot back.
	second := e.startLogs(context.Background(), "pod=db")
	n2 := e.nodeClient("n2")
	reqs := e.poll(n2, "n2")
	if code, err := e.answer(context.Background(), n2, "n2", reqs[0].ID, strings.NewReader("db\n"), api.ContentTypeSessionStream); err != nil || code != 204 {
		t.Fatalf("answer: %d %v", code, err)
	}
	second.wait(t)
	var lastErr error
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		third := e.startLogs(context.Background(), "pod=web")
		reqs := e.poll(n1, "n1")
		if len(reqs) == 1 {
			e.answer(context.Background(), n1, "n1", reqs[0].ID, strings.NewReader("ok\n"), api.ContentTypeSessionStream)
			if resp := third.wait(t); resp.StatusCode == 200 {
				return
			}
		}
		lastErr = errors.New("n1's slot was not freed")
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal(lastErr)
}

func TestLogsNotImplementedWithoutLocator(t *testing.T) {
	fake := &fakeController{}
	h, err := New(Config{Hub: NewHub(), Joiner: fake, Status: fake, Admin: fake})
	if err != nil {
		t.Fatal(err)
	}
	req := asSubject(httptest.NewRequest("GET", api.PathLogs+"?pod=web", nil), api.GroupAdmins)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusNotImplemented {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	c := Config{Hub: NewHub(), Joiner: fake, Status: fake, Admin: fake, Logs: LogsConfig{MaxPerNode: -1}}
	if err := c.Validate(); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("negative MaxPerNode: %v", err)
	}
}
