package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

func (s *fakeServer) serveStdin(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	in, ok := s.stdin[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		http.Error(w, `{"error":"session not found"}`, http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	buf := make([]byte, 1024)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			w.Write(buf[:n])
			rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

// execs plays commands in pod "web": "out" prints to both streams and
// exits 3, "cat" copies stdin, "true" exits 0 without reading stdin,
// "hang" prints a line and runs until its context ends, "broken" fails
// as a container that stopped meanwhile.
type execs struct {
	started, ended chan struct{} // closed when a hang started, when its context ended

	mu    sync.Mutex
	stdin []bool // whether each run got a stdin
}

func newExecs() *execs { return &execs{started: make(chan struct{}), ended: make(chan struct{})} }

var _ ExecSource = (*execs)(nil)

func (e *execs) PrepareExec(_ context.Context, req api.ExecRequest) (ExecFunc, error) {
	if req.Pod != "web" {
		return nil, errdefs.ErrNotFound.WithMessage(fmt.Sprintf("pods %q not found on node %q", req.Pod, node))
	}
	return func(ctx context.Context, stdio Stdio) (int, error) {
		e.mu.Lock()
		e.stdin = append(e.stdin, stdio.Stdin != nil)
		e.mu.Unlock()
		switch req.Command[0] {
		case "out":
			io.WriteString(stdio.Stdout, "out\n")
			io.WriteString(stdio.Stderr, "err\n")
			return 3, nil
		case "cat":
			if _, err := io.Copy(stdio.Stdout, stdio.Stdin); err != nil {
				return -1, err
			}
			return 0, nil
		case "true":
			return 0, nil
		case "hang":
			io.WriteString(stdio.Stdout, "started\n")
			close(e.started)
			<-ctx.Done()
			close(e.ended)
			return -1, fmt.Errorf("exec hang: %w", ctx.Err())
		case "broken":
			io.WriteString(stdio.Stdout, "partial")
			return -1, errdefs.ErrFailedPrecondition.WithMessage(`container "web" in pod "web" is not running any more`)
		}
		return 127, nil
	}, nil
}

func execRequest(id string, stdin bool, cmd ...string) api.SessionRequest {
	return api.SessionRequest{ID: id, Kind: api.SessionKindExec,
		Exec: &api.ExecRequest{Namespace: "default", Pod: "web", Command: cmd, Stdin: stdin}}
}

func startExecLoop(t *testing.T, s *fakeServer, ex ExecSource) {
	t.Helper()
	runLoop(t, Config{Client: s.srv.Client(), Server: s.srv.URL, Node: node, Logs: newSource(), Exec: ex})
}

// demux decodes an exec stream answer.
func demux(t *testing.T, a answer) (stdout, stderr string, code int, err error) {
	t.Helper()
	if a.contentType != api.ContentTypeSessionStream {
		t.Fatalf("answer %s: Content-Type %q, want %q", a.id, a.contentType, api.ContentTypeSessionStream)
	}
	var o, e bytes.Buffer
	code, err = api.DemuxExecStream(strings.NewReader(a.body), &o, &e)
	return o.String(), e.String(), code, err
}

func TestExecSessions(t *testing.T) {
	s := newFakeServer(t)
	ex := newExecs()
	startExecLoop(t, s, ex)
	s.mu.Lock()
	s.stdin["s2"] = strings.NewReader("hello\n")
	s.mu.Unlock()
	s.queue <- execRequest("s1", false, "out")
	s.queue <- execRequest("s2", true, "cat")
	s.queue <- execRequest("s3", false, "broken")
	s.queue <- api.SessionRequest{ID: "s4", Kind: api.SessionKindExec,
		Exec: &api.ExecRequest{Namespace: "default", Pod: "ghost", Command: []string{"ls"}}}
	s.queue <- execRequest("s5", true, "cat") // its stdin cannot be read
	s.queue <- api.SessionRequest{ID: "s6", Kind: api.SessionKindExec}
	got := map[string]answer{}
	for range 6 {
		a := s.next(t)
		got[a.id] = a
	}
	if out, errOut, code, err := demux(t, got["s1"]); out != "out\n" || errOut != "err\n" || code != 3 || err != nil {
		t.Errorf("s1: stdout %q, stderr %q, code %d, %v", out, errOut, code, err)
	}
	if out, _, code, err := demux(t, got["s2"]); out != "hello\n" || code != 0 || err != nil {
		t.Errorf("s2 (cat with stdin): stdout %q, code %d, %v", out, code, err)
	}
	// Failing after it started: the stream ends with an error frame.
	out, _, _, err := demux(t, got["s3"])
	if se, ok := err.(*api.ExecStreamError); out != "partial" || !ok || se.Status != http.StatusBadRequest || !strings.Contains(se.Message, "not running any more") {
		t.Errorf("s3: stdout %q, %#v", out, err)
	}
	for id, want := range map[string]api.SessionError{
		"s4": {Status: 404, Error: `pods "ghost" not found on node "n1"`},
		"s5": {Status: 502, Error: `node "n1" could not read the client's stdin: server answered 404 Not Found: session not found`},
		"s6": {Status: 400, Error: "the exec session carries no exec request; is the server newer than this agent?"},
	} {
		a := got[id]
		var e api.SessionError
		if a.contentType != api.ContentTypeSessionError || json.Unmarshal([]byte(a.body), &e) != nil || e != want {
			t.Errorf("%s: %+v, want %+v", id, a, want)
		}
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if strings.Count(fmt.Sprint(ex.stdin), "true") != 1 {
		t.Errorf("runs got stdin %v, want only the cat of s2", ex.stdin)
	}
}

// A command that ends without reading all of its stdin ends the session;
// the stdin read is closed.
func TestExecEndsWithStdinOpen(t *testing.T) {
	s := newFakeServer(t)
	startExecLoop(t, s, newExecs())
	pr, pw := io.Pipe()
	defer pw.Close()
	s.mu.Lock()
	s.stdin["s1"] = pr
	s.mu.Unlock()
	s.queue <- execRequest("s1", true, "true")
	if _, _, code, err := demux(t, s.next(t)); code != 0 || err != nil {
		t.Fatalf("code %d, %v", code, err)
	}
}

// The server stops reading (the client went away): the command's
// context ends, so it is killed.
func TestExecClientGoneKills(t *testing.T) {
	s := newFakeServer(t)
	s.cut = true
	ex := newExecs()
	startExecLoop(t, s, ex)
	s.queue <- execRequest("s1", false, "hang")
	if a := s.next(t); !strings.Contains(a.body, "started") {
		t.Fatalf("first chunk %q", a.body)
	}
	select {
	case <-ex.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the command still runs 5s after the server stopped reading")
	}
}

// Stopping the loop kills the commands it runs.
func TestRunEndsExecs(t *testing.T) {
	s := newFakeServer(t)
	ex := newExecs()
	pr, pw := io.Pipe()
	defer pw.Close()
	s.mu.Lock()
	s.stdin["s1"] = pr
	s.mu.Unlock()
	stop := runLoop(t, Config{Client: s.srv.Client(), Server: s.srv.URL, Node: node, Logs: newSource(), Exec: ex})
	s.queue <- execRequest("s1", true, "hang")
	select {
	case <-ex.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the command did not start within 10s")
	}
	stop()
	select {
	case <-ex.ended:
	default:
		t.Fatal("Run returned while a command still ran")
	}
}
