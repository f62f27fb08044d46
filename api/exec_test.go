package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestExecRequestQueryRoundTrip(t *testing.T) {
	for _, r := range []ExecRequest{
		{Namespace: "default", Pod: "web-1", Command: []string{"ls"}},
		{Namespace: "ops", Pod: "p", Container: "side", Command: []string{"sh", "-c", "echo a && echo b; exit 3", ""}, Stdin: true},
	} {
		got, err := ParseExecRequest(r.Query())
		if err != nil {
			t.Fatalf("%v: %v", r.Query(), err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip of %+v gave %+v", r, got)
		}
	}
}

func TestParseExecRequest(t *testing.T) {
	for _, tc := range []struct {
		query   string
		want    ExecRequest
		wantErr string
	}{
		{query: "pod=web&command=date", want: ExecRequest{Namespace: "default", Pod: "web", Command: []string{"date"}}},
		{query: "pod=web&command=cat&stdin=1", want: ExecRequest{Namespace: "default", Pod: "web", Command: []string{"cat"}, Stdin: true}},
		{query: "command=date", wantErr: "pod query parameter is required"},
		{query: "pod=web", wantErr: "command query parameter is required"},
		{query: "pod=web&command=", wantErr: "command query parameter is required"},
		{query: "pod=web&command=cat&stdin=yes", wantErr: `stdin="yes"`},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseExecRequest(q)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want one containing %q", tc.query, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, %v; want %+v", tc.query, got, err, tc.want)
		}
	}
}

// An exec session's request travels under "exec"; logs sessions keep
// their flat shape.
func TestExecSessionRequestJSON(t *testing.T) {
	in := SessionRequest{ID: "abc", Kind: SessionKindExec,
		Exec: &ExecRequest{Namespace: "default", Pod: "web", Command: []string{"cat"}, Stdin: true}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"abc","kind":"exec","namespace":"","pod":"","exec":{"namespace":"default","pod":"web","command":["cat"],"stdin":true}}`
	if string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
	var out SessionRequest
	if err := json.Unmarshal(b, &out); err != nil || !reflect.DeepEqual(out, in) {
		t.Fatalf("decoded %+v, %v", out, err)
	}
}

// The wire bytes of a stream are fixed: header kind, big-endian length,
// payload.
func TestExecStreamBytes(t *testing.T) {
	var b bytes.Buffer
	w := NewExecStreamWriter(&b)
	io.WriteString(w.Stdout(), "out\n")
	io.WriteString(w.Stderr(), "e")
	if _, err := w.Stdout().Write(nil); err != nil { // no empty frames
		t.Fatal(err)
	}
	if err := w.Exit(3); err != nil {
		t.Fatal(err)
	}
	want := "\x01\x00\x00\x00\x04out\n" + "\x02\x00\x00\x00\x01e" + "\x03\x00\x00\x00\x0e" + `{"exitCode":3}`
	if b.String() != want {
		t.Fatalf("stream %q\nwant   %q", b.String(), want)
	}
	if _, err := io.WriteString(w.Stdout(), "late"); !errors.Is(err, ErrExecStreamEnded) {
		t.Fatalf("write after the end: %v", err)
	}
	if err := w.Exit(0); !errors.Is(err, ErrExecStreamEnded) {
		t.Fatalf("second exit: %v", err)
	}
}

func TestDemuxExecStream(t *testing.T) {
	big := strings.Repeat("x", MaxExecFramePayload*2+7)
	for _, tc := range []struct {
		name       string
		write      func(w *ExecStreamWriter)
		raw        string // appended after write's frames
		out, errs  string
		code       int
		wantErr    string
		wantStatus int
	}{
		{name: "exit", write: func(w *ExecStreamWriter) {
			io.WriteString(w.Stdout(), "a")
			io.WriteString(w.Stderr(), "b")
			io.WriteString(w.Stdout(), "c")
			w.Exit(0)
		}, out: "ac", errs: "b", code: 0},
		{name: "split", write: func(w *ExecStreamWriter) {
			io.WriteString(w.Stdout(), big)
			w.Exit(137)
		}, out: big, code: 137},
		{name: "error frame", write: func(w *ExecStreamWriter) {
			io.WriteString(w.Stdout(), "partial")
			w.Fail(SessionError{Status: 400, Error: "container main stopped"})
		}, out: "partial", wantErr: "container main stopped", wantStatus: 400},
		{name: "unknown kinds are skipped", raw: "\x09\x00\x00\x00\x02hi" + "\x03\x00\x00\x00\x0e" + `{"exitCode":1}`, code: 1},
		{name: "cut between frames", write: func(w *ExecStreamWriter) { io.WriteString(w.Stdout(), "x") },
			out: "x", wantErr: "ended before the command's exit status"},
		{name: "cut in a header", raw: "\x01\x00\x00", wantErr: "ended before the command's exit status"},
		{name: "cut in a payload", raw: "\x01\x00\x00\x00\x05abc", wantErr: "ended before the command's exit status"},
		{name: "too long", raw: "\x01\x7f\x00\x00\x00", wantErr: "more than the limit"},
		{name: "bad exit", raw: "\x03\x00\x00\x00\x01{", wantErr: "exit frame"},
		{name: "bad error", raw: "\x04\x00\x00\x00\x01{", wantErr: "error frame"},
		{name: "empty error", raw: "\x04\x00\x00\x00\x0e" + `{"status":502}`, wantErr: "the command failed on the node", wantStatus: 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if tc.write != nil {
				tc.write(NewExecStreamWriter(&b))
			}
			b.WriteString(tc.raw)
			var out, errs bytes.Buffer
			code, err := DemuxExecStream(&b, &out, &errs)
			if out.String() != tc.out || errs.String() != tc.errs {
				t.Errorf("stdout %d bytes, stderr %q; want %d bytes, %q", out.Len(), errs.String(), len(tc.out), tc.errs)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				var se *ExecStreamError
				if errors.As(err, &se) != (tc.wantStatus != 0) || (se != nil && se.Status != tc.wantStatus) {
					t.Fatalf("error %#v, want an *ExecStreamError with status %d: %t", err, tc.wantStatus, tc.wantStatus != 0)
				}
				return
			}
			if err != nil || code != tc.code {
				t.Fatalf("exit code %d, %v; want %d", code, err, tc.code)
			}
		})
	}
}

// A huge error message still fits one frame.
func TestExecStreamFailTruncates(t *testing.T) {
	var b bytes.Buffer
	if err := NewExecStreamWriter(&b).Fail(SessionError{Status: 500, Error: strings.Repeat("<", 3*MaxExecFramePayload)}); err != nil {
		t.Fatal(err)
	}
	_, err := DemuxExecStream(&b, io.Discard, io.Discard)
	var se *ExecStreamError
	if !errors.As(err, &se) || se.Status != 500 || !strings.HasSuffix(se.Message, "...") {
		t.Fatalf("%v", err)
	}
}

// Concurrent writers never interleave inside a frame.
func TestExecStreamWriterConcurrent(t *testing.T) {
	pr, pw := io.Pipe()
	w := NewExecStreamWriter(pw)
	var wg sync.WaitGroup
	for _, o := range []io.Writer{w.Stdout(), w.Stderr()} {
		wg.Go(func() {
			for range 100 {
				io.WriteString(o, "0123456789")
			}
		})
	}
	go func() {
		wg.Wait()
		w.Exit(0)
		pw.Close()
	}()
	var out, errs bytes.Buffer
	code, err := DemuxExecStream(pr, &out, &errs)
	if err != nil || code != 0 {
		t.Fatal(code, err)
	}
	want := strings.Repeat("0123456789", 100)
	if out.String() != want || errs.String() != want {
		t.Fatalf("stdout %d bytes, stderr %d bytes", out.Len(), errs.Len())
	}
}

// A failing destination fails that write and every later one.
func TestExecStreamWriterError(t *testing.T) {
	pr, pw := io.Pipe()
	pr.CloseWithError(errors.New("gone"))
	w := NewExecStreamWriter(pw)
	if _, err := io.WriteString(w.Stdout(), "x"); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Fatalf("first write: %v", err)
	}
	if err := w.Exit(0); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Fatalf("exit: %v", err)
	}
}

// FuzzExecStreamReader feeds arbitrary bytes to the frame reader and the
// demultiplexer: they must not panic or allocate beyond the frame limit,
// and whatever frames decode re-encode to the bytes they came from.
func FuzzExecStreamReader(f *testing.F) {
	var good bytes.Buffer
	w := NewExecStreamWriter(&good)
	io.WriteString(w.Stdout(), "out\n")
	io.WriteString(w.Stderr(), "err\n")
	w.Exit(3)
	f.Add(good.Bytes())
	f.Add([]byte("\x04\x00\x00\x00\x1c{\"status\":404,\"error\":\"no\"}"))
	f.Add([]byte("\x01\xff\xff\xff\xff"))
	f.Add([]byte("\x02\x00\x00\x00\x03ab"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DemuxExecStream(bytes.NewReader(b), io.Discard, io.Discard)
		r := NewExecStreamReader(bytes.NewReader(b))
		var re []byte
		for {
			fr, err := r.Next()
			if err != nil {
				break
			}
			if len(fr.Payload) > MaxExecFramePayload {
				t.Fatalf("payload of %d bytes", len(fr.Payload))
			}
			re = AppendExecFrame(re, fr.Kind, fr.Payload)
		}
		if !bytes.HasPrefix(b, re) {
			t.Fatalf("re-encoded frames %q are not a prefix of the input %q", re, b)
		}
	})
}
