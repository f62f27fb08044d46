package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

func stdinPath(node, id string) string {
	return strings.NewReplacer("{name}", node, "{id}", id).Replace(api.PathNodeSessionStdin)
}

// startExec sends POST /v1/exec?query with body (nil: none) and returns
// once the answer's headers arrived (in the background: call wait).
func (e *logsEnv) startExec(ctx context.Context, query string, body io.Reader) *stream {
	s := &stream{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		req, err := http.NewRequestWithContext(ctx, "POST", e.url+api.PathExec+"?"+query, body)
		if err != nil {
			s.err = err
			return
		}
		s.resp, s.err = e.admin.Do(req)
	}()
	return s
}

// openStdin reads session id's stdin as node's agent does.
func (e *logsEnv) openStdin(ctx context.Context, c *http.Client, node, id string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", e.url+stdinPath(node, id), nil)
	if err != nil {
		return nil, err
	}
	return c.Do(req)
}

// pollExec claims node's one session and checks it is an exec session.
func (e *logsEnv) pollExec(c *http.Client, node string) (string, api.ExecRequest) {
	e.t.Helper()
	reqs := e.poll(c, node)
	if len(reqs) != 1 || reqs[0].Kind != api.SessionKindExec || reqs[0].Exec == nil {
		e.t.Fatalf("node %s got %+v, want one exec session", node, reqs)
	}
	return reqs[0].ID, *reqs[0].Exec
}

// readFull reads exactly n bytes of r within 10s.
func readFull(t *testing.T, r io.Reader, n int) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		b := make([]byte, n)
		k, _ := io.ReadFull(r, b)
		got <- string(b[:k])
	}()
	select {
	case s := <-got:
		return s
	case <-time.After(10 * time.Second):
		t.Fatalf("no %d bytes within 10s", n)
	}
	return ""
}

// The whole flow, full duplex: the node reads the client's stdin as it
// is typed and the client reads the output while its stdin is still
// open; stdout and stderr arrive apart, then the exit code.
func TestExecStreaming(t *testing.T) {
	forBoth(t, func(t *testing.T, h2 bool) {
		e := newLogsEnv(t, h2, LogsConfig{})
		n1 := e.nodeClient("n1")
		stdinR, stdinW := io.Pipe()
		defer stdinW.Close()
		cli := e.startExec(context.Background(), "namespace=ops&pod=web&container=c&command=cat&command=-n&stdin=true", stdinR)

		id, req := e.pollExec(n1, "n1")
		want := api.ExecRequest{Namespace: "ops", Pod: "web", Container: "c", Command: []string{"cat", "-n"}, Stdin: true}
		if req.Namespace != want.Namespace || req.Pod != want.Pod || req.Container != want.Container ||
			strings.Join(req.Command, " ") != "cat -n" || !req.Stdin {
			t.Fatalf("exec request %+v, want %+v", req, want)
		}
		in, err := e.openStdin(context.Background(), n1, "n1", id)
		if err != nil || in.StatusCode != http.StatusOK {
			t.Fatalf("open stdin: %v %v", in, err)
		}
		defer in.Body.Close()
		// A second read of the stdin is refused.
		wantError(t, e.do(n1, "GET", stdinPath("n1", id), ""), http.StatusConflict)

		outR, outW := io.Pipe()
		sw := api.NewExecStreamWriter(outW)
		answered := make(chan int, 1)
		go func() {
			code, err := e.answer(context.Background(), n1, "n1", id, outR, api.ContentTypeSessionStream)
			if err != nil {
				t.Errorf("answer: %v", err)
			}
			answered <- code
		}()
		io.WriteString(sw.Stdout(), "ready\n")
		resp := cli.wait(t)
		if h2 != (resp.ProtoMajor == 2) {
			t.Fatalf("protocol %s", resp.Proto)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != api.ContentTypeExecStream {
			t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		fr := api.NewExecStreamReader(resp.Body)
		if f, err := fr.Next(); err != nil || f.Kind != api.ExecFrameStdout || string(f.Payload) != "ready\n" {
			t.Fatalf("first frame %v %q, %v", f.Kind, f.Payload, err)
		}

		// Stdin travels while the output stream is open, in both
		// directions at once.
		go io.WriteString(stdinW, "hello\n")
		if got := readFull(t, in.Body, 6); got != "hello\n" {
			t.Fatalf("node read stdin %q", got)
		}
		io.WriteString(sw.Stdout(), "     1\thello\n")
		if f, err := fr.Next(); err != nil || f.Kind != api.ExecFrameStdout || string(f.Payload) != "     1\thello\n" {
			t.Fatalf("echo frame %v %q, %v", f.Kind, f.Payload, err)
		}
		// The end of the client's stdin is a clean end of the node's read.
		stdinW.Close()
		if rest, err := io.ReadAll(in.Body); err != nil || len(rest) != 0 {
			t.Fatalf("stdin after its end: %q, %v", rest, err)
		}

		io.WriteString(sw.Stderr(), "bye\n")
		sw.Exit(3)
		outW.Close()
		var stdout, stderr bytes.Buffer
		code, err := api.DemuxExecStream(resp.Body, &stdout, &stderr)
		if err != nil || code != 3 || stdout.Len() != 0 || stderr.String() != "bye\n" {
			t.Fatalf("rest of the stream: code %d, stdout %q, stderr %q, %v", code, stdout.String(), stderr.String(), err)
		}
		if code := <-answered; code != http.StatusNoContent {
			t.Fatalf("node's upload answered %d, want 204", code)
		}
	})
}

// Without -i there is no stdin to read, and the command ends on its own.
func TestExecWithoutStdin(t *testing.T) {
	e := newLogsEnv(t, true, LogsConfig{})
	n1 := e.nodeClient("n1")
	cli := e.startExec(context.Background(), "pod=web&command=date", nil)
	id, req := e.pollExec(n1, "n1")
	if req.Stdin || req.Namespace != "default" {
		t.Fatalf("exec request %+v", req)
	}
	wantError(t, e.do(n1, "GET", stdinPath("n1", id), ""), http.StatusBadRequest)
	var b bytes.Buffer
	sw := api.NewExecStreamWriter(&b)
	io.WriteString(sw.Stdout(), "Mon\n")
	sw.Exit(0)
	if code, err := e.answer(context.Background(), n1, "n1", id, &b, api.ContentTypeSessionStream); err != nil || code != 204 {
		t.Fatalf("answer: %d %v", code, err)
	}
	resp := cli.wait(t)
	var out bytes.Buffer
	if code, err := api.DemuxExecStream(resp.Body, &out, io.Discard); err != nil || code != 0 || out.String() != "Mon\n" {
		t.Fatalf("exec: %d %q %v", code, out.String(), err)
	}
}

// The client going away (Ctrl-C) ends the node's upload and breaks the
// node's stdin read off rather than ending it cleanly.
func TestExecClientCancel(t *testing.T) {
	forBoth(t, func(t *testing.T, h2 bool) {
		e := newLogsEnv(t, h2, LogsConfig{})
		n1 := e.nodeClient("n1")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stdinR, stdinW := io.Pipe()
		defer stdinW.Close()
		cli := e.startExec(ctx, "pod=web&command=sh&stdin=true", stdinR)
		id, _ := e.pollExec(n1, "n1")
		in, err := e.openStdin(context.Background(), n1, "n1", id)
		if err != nil || in.StatusCode != http.StatusOK {
			t.Fatalf("open stdin: %v %v", in, err)
		}
		defer in.Body.Close()
		outR, outW := io.Pipe()
		defer outW.Close()
		answered := make(chan error, 1)
		go func() {
			code, err := e.answer(context.Background(), n1, "n1", id, outR, api.ContentTypeSessionStream)
			if err == nil {
				err = errors.New("answered " + http.StatusText(code))
			}
			answered <- err
		}()
		sw := api.NewExecStreamWriter(outW)
		io.WriteString(sw.Stdout(), "$ ")
		resp := cli.wait(t)
		if f, err := api.NewExecStreamReader(resp.Body).Next(); err != nil || string(f.Payload) != "$ " {
			t.Fatalf("first frame %q, %v", f.Payload, err)
		}
		stdinRead := make(chan error, 1)
		go func() { _, err := io.ReadAll(in.Body); stdinRead <- err }()
		// A client's body read does not see the cancellation (HTTP/2
		// sends the reset once it returns): moor exec's stdin reader
		// ends with the context, as this one does.
		context.AfterFunc(ctx, func() { stdinR.CloseWithError(ctx.Err()) })
		cancel()
		t.Logf("upload ended: %v", within(t, answered, "the node's upload still runs 5s after the client went away"))
		if err := within(t, stdinRead, "the node's stdin read still runs 5s after the client went away"); err == nil {
			t.Fatal("the node saw a clean end of stdin after the client went away")
		}
	})
}

// The command ending while the client's stdin is still open ends the
// client's request and the node's stdin read.
func TestExecEndsWithStdinOpen(t *testing.T) {
	forBoth(t, func(t *testing.T, h2 bool) {
		e := newLogsEnv(t, h2, LogsConfig{})
		n1 := e.nodeClient("n1")
		stdinR, stdinW := io.Pipe()
		defer stdinW.Close()
		cli := e.startExec(context.Background(), "pod=web&command=true&stdin=true", stdinR)
		id, _ := e.pollExec(n1, "n1")
		in, err := e.openStdin(context.Background(), n1, "n1", id)
		if err != nil || in.StatusCode != http.StatusOK {
			t.Fatalf("open stdin: %v %v", in, err)
		}
		defer in.Body.Close()
		stdinRead := make(chan error, 1)
		go func() { _, err := io.ReadAll(in.Body); stdinRead <- err }()
		var b bytes.Buffer
		api.NewExecStreamWriter(&b).Exit(0)
		if code, err := e.answer(context.Background(), n1, "n1", id, &b, api.ContentTypeSessionStream); err != nil || code != 204 {
			t.Fatalf("answer: %d %v", code, err)
		}
		resp := cli.wait(t)
		if code, err := api.DemuxExecStream(resp.Body, io.Discard, io.Discard); err != nil || code != 0 {
			t.Fatalf("exec: %d %v", code, err)
		}
		within(t, stdinRead, "the node's stdin read still runs 5s after the command ended")
	})
}

// A node answering with an error before the command ran: the client gets
// its status; a node's output stream that breaks off fails the client's
// read.
func TestExecErrors(t *testing.T) {
	e := newLogsEnv(t, true, LogsConfig{})
	n1 := e.nodeClient("n1")
	cli := e.startExec(context.Background(), "pod=web&container=nope&command=ls", nil)
	id, _ := e.pollExec(n1, "n1")
	b, _ := json.Marshal(api.SessionError{Status: 400, Error: `container "nope" is not valid for pod "web": choose one of [web]`})
	if code, err := e.answer(context.Background(), n1, "n1", id, bytes.NewReader(b), api.ContentTypeSessionError); err != nil || code != 204 {
		t.Fatalf("answer: %d %v", code, err)
	}
	resp := cli.wait(t)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(body), `container \"nope\" is not valid`) {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}

	cli = e.startExec(context.Background(), "pod=web&command=ls", nil)
	id, _ = e.pollExec(n1, "n1")
	outR, outW := io.Pipe()
	uctx, ucancel := context.WithCancel(context.Background())
	defer ucancel()
	go e.answer(uctx, n1, "n1", id, outR, api.ContentTypeSessionStream)
	io.WriteString(api.NewExecStreamWriter(outW).Stdout(), "partial")
	resp = cli.wait(t)
	br := bufio.NewReader(resp.Body)
	if f, err := api.NewExecStreamReader(br).Next(); err != nil || string(f.Payload) != "partial" {
		t.Fatalf("first frame %q, %v", f.Payload, err)
	}
	ucancel()
	wantBrokenOff(t, func() error { _, err := api.DemuxExecStream(br, io.Discard, io.Discard); return err })
}

func TestExecTimeoutAndAuthorization(t *testing.T) {
	e := newLogsEnv(t, true, LogsConfig{PickupTimeout: 300 * time.Millisecond})
	n1, n2 := e.nodeClient("n1"), e.nodeClient("n2")

	// No agent polls: 504 naming the node.
	r := e.do(e.admin, "POST", api.PathExec+"?pod=web&command=ls", "")
	wantError(t, r, http.StatusGatewayTimeout)
	if !strings.Contains(r.body, `node \"n1\" did not pick up the request`) {
		t.Fatalf("body %s", r.body)
	}

	for _, tc := range []struct {
		name   string
		client *http.Client
		method string
		path   string
		want   int
	}{
		{"NodeExecs", n1, "POST", api.PathExec + "?pod=web&command=ls", 403},
		{"AnonExecs", e.anon, "POST", api.PathExec + "?pod=web&command=ls", 401},
		{"MissingPod", e.admin, "POST", api.PathExec + "?pod=ghost&command=ls", 404},
		{"PendingPod", e.admin, "POST", api.PathExec + "?pod=pending&command=ls", 400},
		{"NoCommand", e.admin, "POST", api.PathExec + "?pod=web", 400},
		{"StdinUnknown", n1, "GET", stdinPath("n1", "nope"), 404},
		{"StdinOfOtherNode", n2, "GET", stdinPath("n1", "nope"), 403},
		{"AdminReadsStdin", e.admin, "GET", stdinPath("n1", "nope"), 403},
		{"AnonReadsStdin", e.anon, "GET", stdinPath("n1", "nope"), 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.do(tc.client, tc.method, tc.path, ""), tc.want)
		})
	}

	// n2 learns n1's session id and tries to read its stdin and answer it:
	// refused, and n1 still can.
	e2 := newLogsEnv(t, true, LogsConfig{PickupTimeout: 5 * time.Second})
	n1, n2 = e2.nodeClient("n1"), e2.nodeClient("n2")
	cli := e2.startExec(context.Background(), "pod=web&command=cat&stdin=true", strings.NewReader("secret\n"))
	id, _ := e2.pollExec(n1, "n1")
	wantError(t, e2.do(n2, "GET", stdinPath("n2", id), ""), http.StatusForbidden)
	wantError(t, e2.do(n2, "POST", sessionPath("n2", id), "evil", "Content-Type", api.ContentTypeSessionStream), http.StatusForbidden)
	in, err := e2.openStdin(context.Background(), n1, "n1", id)
	if err != nil || in.StatusCode != http.StatusOK {
		t.Fatalf("open stdin: %v %v", in, err)
	}
	defer in.Body.Close()
	if got := readFull(t, in.Body, 7); got != "secret\n" {
		t.Fatalf("n1 read stdin %q", got)
	}
	var b bytes.Buffer
	sw := api.NewExecStreamWriter(&b)
	io.WriteString(sw.Stdout(), "secret\n")
	sw.Exit(0)
	if code, err := e2.answer(context.Background(), n1, "n1", id, &b, api.ContentTypeSessionStream); err != nil || code != 204 {
		t.Fatalf("answer: %d %v", code, err)
	}
	var out bytes.Buffer
	if code, err := api.DemuxExecStream(cli.wait(t).Body, &out, io.Discard); err != nil || code != 0 || out.String() != "secret\n" {
		t.Fatalf("exec: %d %q %v", code, out.String(), err)
	}
}

// The hub hands an exec session's stdin out once, to its own node, and
// close waits for the handler reading it.
func TestSessionHubStdin(t *testing.T) {
	h := testHub(time.Second, 0, 0)
	stopped := make(chan struct{})
	in := &stdinRelay{body: strings.NewReader("x"), stop: func() { close(stopped) }, done: make(chan struct{})}
	s, err := h.open("n1", api.SessionRequest{Kind: api.SessionKindExec, Exec: &api.ExecRequest{Pod: "web", Command: []string{"cat"}, Stdin: true}}, in)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := h.open("n1", api.SessionRequest{Kind: api.SessionKindExec, Exec: &api.ExecRequest{Pod: "web", Command: []string{"ls"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close(plain)
	got := h.claim(context.Background(), "n1")
	if len(got) != 2 || got[0].Kind != api.SessionKindExec || got[0].Exec == nil || got[0].Exec.Command[0] != "cat" || got[0].ID != s.id {
		t.Fatalf("claimed %+v", got)
	}
	for _, tc := range []struct {
		node, id string
		class    func(error) bool
	}{
		{"n2", s.id, errdefs.IsPermissionDenied},
		{"n1", "nope", errdefs.IsNotFound},
		{"n1", plain.id, errdefs.IsInvalidArgument},
	} {
		if _, err := h.takeStdin(tc.node, tc.id, func() {}); !tc.class(err) {
			t.Errorf("takeStdin(%s, %s): %v", tc.node, tc.id, err)
		}
	}
	writeStopped := make(chan struct{})
	got1, err := h.takeStdin("n1", s.id, func() { close(writeStopped) })
	if err != nil || got1 != in {
		t.Fatalf("takeStdin: %v %v", got1, err)
	}
	if _, err := h.takeStdin("n1", s.id, func() {}); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("second takeStdin: %v", err)
	}
	closed := make(chan struct{})
	go func() { h.close(s); close(closed) }()
	<-stopped
	<-writeStopped
	select {
	case <-closed:
		t.Fatal("close returned while the stdin handler still read")
	case <-time.After(20 * time.Millisecond):
	}
	close(in.done)
	<-closed
	if _, err := h.takeStdin("n1", s.id, func() {}); !errdefs.IsNotFound(err) {
		t.Fatalf("takeStdin after close: %v", err)
	}
}
