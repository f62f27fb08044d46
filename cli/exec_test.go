package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/moor-dev/moor/api"
)

// fakeExec serves the logs fixtures' pods and plays commands: "ok"
// prints the request to stdout and a line to stderr, "fail" exits 3,
// "cat" copies stdin, "refused" fails on the node, "interrupt" is
// interrupted.
type fakeExec struct {
	*fakeLogs
}

var _ execClient = fakeExec{}

func (f fakeExec) Exec(_ context.Context, req api.ExecRequest, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	switch req.Command[0] {
	case "ok":
		fmt.Fprintf(stdout, "exec in %s/%s container=%s stdin=%t command=%q\n", req.Namespace, req.Pod, req.Container, req.Stdin, req.Command)
		fmt.Fprintln(stderr, "a line on stderr")
		return 0, nil
	case "fail":
		fmt.Fprintln(stdout, "partial")
		return 3, nil
	case "cat":
		if stdin == nil {
			return 1, errors.New("no stdin")
		}
		_, err := io.Copy(stdout, stdin)
		return 0, err
	case "refused":
		return -1, &APIError{StatusCode: 400, Message: `container "nope" is not valid for pod "api-0": choose one of [api proxy]`}
	case "interrupt":
		return -1, context.Canceled
	}
	return 127, nil
}

func fakeExecCommand(f *fakeLogs) func(Streams) *cobra.Command {
	return func(s Streams) *cobra.Command {
		return newExecCommand(s, func(o Options) (execClient, string, error) {
			return fakeExec{f}, effectiveNamespace(o, ""), nil
		})
	}
}

func TestExecGolden(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		wantCode int
	}{
		{"pod", []string{"exec", "web-7d9f-aaaaa", "--", "ok", "-x", "--flag"}, 0},
		{"namespace-container", []string{"exec", "-n", "ops", "pod/tool", "-c", "other", "--", "ok"}, 0},
		{"deployment", []string{"exec", "deploy/web", "--", "ok"}, 0},
		{"job", []string{"exec", "job/migrate", "--", "ok"}, 0},
		{"first-container", []string{"exec", "api-0", "--", "ok"}, 0},
		{"default-container", []string{"exec", "cache-0", "--", "ok"}, 0},
		{"exit-code", []string{"exec", "web-7d9f-aaaaa", "--", "fail"}, 3},
		{"node-refuses", []string{"exec", "api-0", "-c", "nope", "--", "refused"}, 1},
		{"interrupted", []string{"exec", "web-7d9f-aaaaa", "--", "interrupt"}, exitInterrupted},
		{"tty", []string{"exec", "-it", "web-7d9f-aaaaa", "--", "sh"}, 1},
		{"no-dash", []string{"exec", "web-7d9f-aaaaa", "ls"}, 1},
		{"no-command", []string{"exec", "web-7d9f-aaaaa", "--"}, 1},
		{"no-target", []string{"exec", "--", "ls"}, 1},
		{"two-targets", []string{"exec", "a", "b", "--", "ls"}, 1},
		{"wrong-type", []string{"exec", "svc/web", "--", "ls"}, 1},
		{"pod-not-found", []string{"exec", "nope", "--", "ls"}, 1},
		{"deployment-without-pods", []string{"exec", "deployment/idle", "--", "ls"}, 1},
		{"all-namespaces", []string{"exec", "-A", "web-7d9f-aaaaa", "--", "ls"}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runRoot(t, fakeExecCommand(logsFixtures()), tc.args...)
			if code := ExitCode(err); code != tc.wantCode {
				t.Fatalf("exit code %d (%v), want %d\n%s", code, err, tc.wantCode, got)
			}
			checkGolden(t, "exec-"+tc.name, []byte(got))
		})
	}
}

// -i passes the command's stdin; without it the command gets none.
func TestExecStdinFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"exec", "-i", "web-7d9f-aaaaa", "--", "cat"}, "hello\n"},
		{[]string{"exec", "web-7d9f-aaaaa", "--", "ok"}, "stdin=false"},
		{[]string{"exec", "-i", "web-7d9f-aaaaa", "--", "ok"}, "stdin=true"},
	} {
		var out, errOut bytes.Buffer
		root := &cobra.Command{Use: "moor", SilenceUsage: true}
		AddConfigFlags(root)
		root.AddCommand(fakeExecCommand(logsFixtures())(Streams{In: strings.NewReader("hello\n"), Out: &out, ErrOut: &errOut}))
		root.SetArgs(tc.args)
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, errOut.String())
		}
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("%v: stdout %q, want it to contain %q", tc.args, out.String(), tc.want)
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("x"), 1},
		{&ExitError{Code: 42}, 42},
		{fmt.Errorf("wrapped: %w", &ExitError{Code: 7}), 7},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a poller.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startH2Server serves h over TLS with HTTP/2, requiring the test CA's
// client certificate, as the moor server does.
func startH2Server(t *testing.T, p *testPKI, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.serverCert}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// execServer answers api.PathExec as the moor server relays a node: pod
// "cat" echoes each chunk of the request body as a stdout frame as it
// arrives (full duplex), "out" writes both streams and exits 3, "gone"
// fails with an error frame, "cut" breaks off, "ghost" is not found and
// "wait" answers nothing until the client goes away.
func execServer(t *testing.T, waiting, gone chan<- struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			t.Errorf("moor exec spoke %s, want HTTP/2", r.Proto)
		}
		req, err := api.ParseExecRequest(r.URL.Query())
		if err != nil || r.Method != http.MethodPost {
			t.Errorf("%s %s: %v", r.Method, r.URL, err)
		}
		if req.Pod == "ghost" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"pods \"ghost\" not found"}`)
			return
		}
		w.Header().Set("Content-Type", api.ContentTypeExecStream)
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		rc.Flush()
		sw := api.NewExecStreamWriter(w)
		switch req.Pod {
		case "cat":
			buf := make([]byte, 1024)
			for {
				n, err := r.Body.Read(buf)
				sw.Stdout().Write(buf[:n])
				rc.Flush()
				if err != nil {
					break
				}
			}
			sw.Exit(0)
		case "out":
			io.WriteString(sw.Stdout(), "out\n")
			io.WriteString(sw.Stderr(), "err\n")
			sw.Exit(3)
		case "gone":
			sw.Fail(api.SessionError{Status: 400, Error: `container "main" in pod "gone" is not running any more`})
		case "cut":
			io.WriteString(sw.Stdout(), "partial")
			rc.Flush()
			panic(http.ErrAbortHandler)
		case "wait":
			close(waiting)
			<-r.Context().Done()
			close(gone)
		}
	}
}

// Client.Exec streams stdin while it reads the output (HTTP/2), keeps
// stdout and stderr apart and returns the exit code; failures become
// errors.
func TestClientExec(t *testing.T) {
	p := newTestPKI(t)
	waiting, gone := make(chan struct{}), make(chan struct{})
	srv := startH2Server(t, p, execServer(t, waiting, gone))
	c, err := NewClient(p.context(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Full duplex: the first line comes back before the second is sent.
	pr, pw := io.Pipe()
	var out syncBuffer
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := c.Exec(ctx, api.ExecRequest{Namespace: "default", Pod: "cat", Command: []string{"cat"}, Stdin: true}, pr, &out, io.Discard)
		done <- result{code, err}
	}()
	io.WriteString(pw, "one\n")
	deadline := time.Now().Add(10 * time.Second)
	for out.String() != "one\n" {
		if time.Now().After(deadline) {
			t.Fatalf("the first line did not come back within 10s: %q", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	io.WriteString(pw, "two\n")
	pw.Close()
	if r := <-done; r.err != nil || r.code != 0 || out.String() != "one\ntwo\n" {
		t.Fatalf("cat: %d %q %v", r.code, out.String(), r.err)
	}

	var o, e bytes.Buffer
	if code, err := c.Exec(ctx, api.ExecRequest{Namespace: "default", Pod: "out", Command: []string{"x"}}, nil, &o, &e); code != 3 || err != nil ||
		o.String() != "out\n" || e.String() != "err\n" {
		t.Fatalf("out: %d %q %q %v", code, o.String(), e.String(), err)
	}
	var ae *APIError
	if _, err := c.Exec(ctx, api.ExecRequest{Namespace: "default", Pod: "gone", Command: []string{"x"}}, nil, io.Discard, io.Discard); !errors.As(err, &ae) ||
		ae.StatusCode != 400 || !strings.Contains(ae.Message, "not running any more") {
		t.Fatalf("error frame: %v", err)
	}
	if _, err := c.Exec(ctx, api.ExecRequest{Namespace: "default", Pod: "ghost", Command: []string{"x"}}, nil, io.Discard, io.Discard); !errors.As(err, &ae) ||
		ae.StatusCode != 404 {
		t.Fatalf("error answer: %v", err)
	}
	if _, err := c.Exec(ctx, api.ExecRequest{Namespace: "default", Pod: "cut", Command: []string{"x"}}, nil, io.Discard, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "broke off") {
		t.Fatalf("cut-off stream: %v", err)
	}

	// Cancelling ends the request on the server although the stdin read
	// (a terminal's, here a pipe nobody writes) is still pending.
	cctx, cancel := context.WithCancel(ctx)
	idle, idleW := io.Pipe()
	defer idleW.Close()
	go func() {
		_, err := c.Exec(cctx, api.ExecRequest{Namespace: "default", Pod: "wait", Command: []string{"x"}, Stdin: true}, idle, io.Discard, io.Discard)
		done <- result{-1, err}
	}()
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the server within 10s")
	}
	cancel()
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the server's request still runs 10s after the client cancelled")
	}
	if r := <-done; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled exec: %v", r.err)
	}
}
