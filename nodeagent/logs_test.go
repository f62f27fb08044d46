package nodeagent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

func logPod(name string, containers ...string) api.Pod {
	p := api.Pod{Namespace: "default", Name: name, UID: "uid-" + name}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "img"})
	}
	p.SpecHash = api.HashObject(p.Spec)
	return p
}

func TestResolveLogTarget(t *testing.T) {
	web := logPod("web", "web")
	multi := logPod("multi", "app", "sidecar")
	multi.Spec.InitContainers = []corev1.Container{{Name: "migrate"}}
	multi.SpecHash = api.HashObject(multi.Spec)
	withDefault := logPod("dflt", "app", "sidecar")
	withDefault.Annotations = map[string]string{defaultContainerAnnotation: "sidecar"}
	waiting := logPod("pulling", "app")
	restarted := logPod("crashy", "app")
	id := func(p api.Pod, c string) string { return ContainerID(p.Namespace, p.Name, p.UID, c) }
	started := func(p api.Pod, c string) ContainerInfo {
		return ContainerInfo{ID: id(p, c), State: StateRunning, StartedAt: time.Unix(100, 0), Labels: map[string]string{LabelPodUID: p.UID}}
	}
	in := logTargetInput{
		Node: "n1", LogDir: "/logs",
		Pods: []api.Pod{web, multi, withDefault, waiting, restarted},
		Actual: []ContainerInfo{started(web, "web"), started(multi, "app"), started(multi, "sidecar"),
			started(withDefault, "sidecar"), started(restarted, "app")},
		Records: map[string]containerRecord{
			id(waiting, "app"): {PodUID: waiting.UID, SpecHash: waiting.SpecHash, WaitingReason: "ErrImagePull"},
			id(restarted, "app"): {PodUID: restarted.UID, SpecHash: restarted.SpecHash, RestartCount: 1,
				LastTermination: &termination{ExitCode: 1, Reason: "Error"}},
			// A record of another incarnation of web does not count.
			id(web, "web"): {PodUID: "old", SpecHash: web.SpecHash, LastTermination: &termination{ExitCode: 1}},
		},
	}
	for _, tc := range []struct {
		name    string
		req     api.LogRequest
		path    string
		waiting string
		class   func(error) bool
		msg     string
	}{
		{name: "only container", req: api.LogRequest{Namespace: "default", Pod: "web"}, path: "/logs/" + id(web, "web") + ".log"},
		{name: "named", req: api.LogRequest{Namespace: "default", Pod: "multi", Container: "sidecar"}, path: "/logs/" + id(multi, "sidecar") + ".log"},
		{name: "default annotation", req: api.LogRequest{Namespace: "default", Pod: "dflt"}, path: "/logs/" + id(withDefault, "sidecar") + ".log"},
		{name: "other namespace", req: api.LogRequest{Namespace: "ops", Pod: "web"}, class: errdefs.IsNotFound,
			msg: `pods "web" not found in namespace "ops" on node "n1"`},
		{name: "no container named", req: api.LogRequest{Namespace: "default", Pod: "multi"}, class: errdefs.IsInvalidArgument,
			msg: "a container name must be specified for pod multi, choose one of: [app sidecar] or one of the init containers: [migrate]"},
		{name: "unknown container", req: api.LogRequest{Namespace: "default", Pod: "web", Container: "db"}, class: errdefs.IsInvalidArgument,
			msg: `container "db" is not valid for pod "web": choose one of [web]`},
		{name: "waiting", req: api.LogRequest{Namespace: "default", Pod: "pulling"}, path: "/logs/" + id(waiting, "app") + ".log", waiting: "ErrImagePull"},
		{name: "previous", req: api.LogRequest{Namespace: "default", Pod: "crashy", Previous: true}, path: "/logs/" + id(restarted, "app") + ".previous.log"},
		{name: "no previous", req: api.LogRequest{Namespace: "default", Pod: "web", Previous: true}, class: errdefs.IsInvalidArgument,
			msg: `previous terminated container "web" in pod "web" not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := in
			in.Req = tc.req
			got, err := resolveLogTarget(in)
			if tc.class != nil {
				if !tc.class(err) || err.Error() != tc.msg {
					t.Fatalf("error %v (%T), want %q", err, err, tc.msg)
				}
				return
			}
			if err != nil || got.Path != tc.path || got.Waiting != tc.waiting {
				t.Fatalf("got %+v, %v; want path %s, waiting %q", got, err, tc.path, tc.waiting)
			}
		})
	}
}

func TestTailOffset(t *testing.T) {
	for _, tc := range []struct {
		text string
		n    int64
		want string
	}{
		{"a\nb\nc\n", 1, "c\n"},
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 3, "a\nb\nc\n"},
		{"a\nb\nc\n", 10, "a\nb\nc\n"},
		{"a\nb\nc", 1, "c"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\nb\nc\n", 0, ""},
		{"", 3, ""},
		{"\n\n", 1, "\n"},
		{strings.Repeat("x", 70000) + "\n" + strings.Repeat("y", 70000) + "\n", 1, strings.Repeat("y", 70000) + "\n"},
		{strings.Repeat("line\n", 20000), 3, "line\nline\nline\n"},
	} {
		off, err := tailOffset(strings.NewReader(tc.text), int64(len(tc.text)), tc.n)
		if err != nil {
			t.Fatal(err)
		}
		if got := tc.text[off:]; got != tc.want {
			t.Errorf("tail -n %d of %.20q: got %.20q (%d bytes), want %.20q (%d bytes)", tc.n, tc.text, got, len(got), tc.want, len(tc.want))
		}
	}
}

func appendLog(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// readUntil reads from r until the output holds want, failing after 5s.
func readLogUntil(t *testing.T, r io.Reader, got *bytes.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 64)
	for !strings.Contains(got.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("read %q, still waiting for %q", got, want)
		}
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("read %q, then %v; want %q", got, err, want)
		}
	}
}

func TestLogStream(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.log")
	appendLog(t, path, "one\ntwo\nthree\n")
	two := int64(2)
	for _, tc := range []struct {
		tail *int64
		want string
	}{{nil, "one\ntwo\nthree\n"}, {&two, "two\nthree\n"}} {
		s, err := openLogStream(context.Background(), logStreamConfig{Path: path, TailLines: tc.tail})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(s)
		s.Close()
		if err != nil || string(b) != tc.want {
			t.Errorf("tail %v: %q, %v", tc.tail, b, err)
		}
	}
	// A log not written yet is empty.
	s, err := openLogStream(context.Background(), logStreamConfig{Path: filepath.Join(dir, "none.log")})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(s); err != nil || len(b) != 0 {
		t.Fatalf("missing log: %q %v", b, err)
	}
}

// tail -f: new lines arrive as they are written, a log that does not
// exist yet is waited for, and the stream ends once the container exited
// and the log is drained.
func TestLogStreamFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	var exited atomic.Bool
	zero := int64(0)
	s, err := openLogStream(context.Background(), logStreamConfig{Path: path, Follow: true, TailLines: &zero,
		Exited: func(context.Context) bool { return exited.Load() }, Poll: 5 * time.Millisecond, ExitCheck: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got bytes.Buffer
	appendLog(t, path, "first\n")
	readLogUntil(t, s, &got, "first\n")
	appendLog(t, path, "second\n")
	readLogUntil(t, s, &got, "second\n")
	appendLog(t, path, "last\n")
	exited.Store(true)
	rest, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	got.Write(rest)
	if got.String() != "first\nsecond\nlast\n" {
		t.Fatalf("followed %q", got.String())
	}

	// tailLines 0 on an existing log shows only what comes next.
	s2, err := openLogStream(context.Background(), logStreamConfig{Path: path, Follow: true, TailLines: &zero,
		Exited: func(context.Context) bool { return exited.Load() }, Poll: 5 * time.Millisecond, ExitCheck: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if b, err := io.ReadAll(s2); err != nil || len(b) != 0 {
		t.Fatalf("tail 0 of an exited container: %q %v", b, err)
	}
}

func TestLogStreamFollowEndsWithContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	appendLog(t, path, "x\n")
	ctx, cancel := context.WithCancel(context.Background())
	s, err := openLogStream(ctx, logStreamConfig{Path: path, Follow: true,
		Exited: func(context.Context) bool { return false }, Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got bytes.Buffer
	readLogUntil(t, s, &got, "x\n")
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(s); done <- err }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("read after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a followed read still blocks 5s after its context ended")
	}
}

func TestLineStamper(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	// Lines split across reads get one stamp each, at their start.
	src := io.MultiReader(strings.NewReader("one\ntw"), strings.NewReader("o\n\nthr"), strings.NewReader("ee"))
	l := newLineStamper(io.NopCloser(src), func() time.Time { return at })
	var got bytes.Buffer
	buf := make([]byte, 7) // smaller than a stamped line
	for {
		n, err := l.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	ts := "2026-01-02T03:04:05.0000006Z "
	want := ts + "one\n" + ts + "two\n" + ts + "\n" + ts + "three"
	if got.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", got.String(), want)
	}
}

func TestRotateLog(t *testing.T) {
	dir := t.TempDir()
	if err := rotateLog(dir, "c"); err != nil {
		t.Fatalf("no log yet: %v", err)
	}
	appendLog(t, filepath.Join(dir, "c.log"), "run 1\n")
	if err := rotateLog(dir, "c"); err != nil {
		t.Fatal(err)
	}
	appendLog(t, filepath.Join(dir, "c.log"), "run 2\n")
	if err := rotateLog(dir, "c"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(previousLogPath(dir, "c")); string(b) != "run 2\n" {
		t.Fatalf("previous log %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "c.log")); !os.IsNotExist(err) {
		t.Fatalf("current log still there: %v", err)
	}
}
