package httpapi

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

func testHub(pickup time.Duration, perNode, total int) *sessionHub {
	c := LogsConfig{PickupTimeout: pickup, MaxPerNode: perNode, MaxSessions: total}
	if err := c.validate(nil); err != nil {
		panic(err)
	}
	return newSessionHub(c)
}

// openLogs queues a logs session for node, as the logs endpoint does.
func openLogs(h *sessionHub, node string, req api.LogRequest) (*session, error) {
	return h.open(node, api.SessionRequest{Kind: api.SessionKindLogs, LogRequest: req}, nil)
}

func TestSessionHubClaimAttach(t *testing.T) {
	h := testHub(time.Second, 0, 0)
	s, err := openLogs(h, "n1", api.LogRequest{Namespace: "default", Pod: "web"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.close(s)
	// Another node sees nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if got := h.claim(ctx, "n2"); got != nil {
		t.Fatalf("n2 claimed %v", got)
	}
	got := h.claim(context.Background(), "n1")
	if len(got) != 1 || got[0].ID != s.id || got[0].Kind != api.SessionKindLogs || got[0].Pod != "web" {
		t.Fatalf("claimed %+v", got)
	}
	// Claimed once: the next poll waits.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if again := h.claim(ctx2, "n1"); again != nil {
		t.Fatalf("claimed twice: %v", again)
	}

	for _, tc := range []struct {
		node, id string
		class    func(error) bool
	}{
		{"n2", s.id, errdefs.IsPermissionDenied},
		{"n1", "nope", errdefs.IsNotFound},
	} {
		if err := h.attach(tc.node, tc.id, &upload{finished: make(chan struct{})}); !tc.class(err) {
			t.Errorf("attach(%s, %s): %v", tc.node, tc.id, err)
		}
	}
	up := &upload{finished: make(chan struct{}), body: strings.NewReader("x")}
	if err := h.attach("n1", s.id, up); err != nil {
		t.Fatal(err)
	}
	if err := h.attach("n1", s.id, &upload{finished: make(chan struct{})}); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("second answer: %v", err)
	}
	got2, err := h.await(context.Background(), s)
	if err != nil || got2 != up {
		t.Fatalf("await: %v %v", got2, err)
	}
}

// A long-poll waiting before the request arrives wakes at once.
func TestSessionHubClaimWakes(t *testing.T) {
	h := testHub(time.Second, 0, 0)
	var wg sync.WaitGroup
	got := make(chan []api.SessionRequest, 2)
	for range 2 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got <- h.claim(ctx, "n1")
		})
	}
	time.Sleep(10 * time.Millisecond) // let the polls wait (not an assertion)
	s, err := openLogs(h, "n1", api.LogRequest{Pod: "web"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.close(s)
	wg.Wait()
	close(got)
	n := 0
	for reqs := range got {
		n += len(reqs)
	}
	if n != 1 {
		t.Fatalf("the session was handed out %d times, want once", n)
	}
}

func TestSessionHubLimits(t *testing.T) {
	h := testHub(time.Second, 2, 3)
	var open []*session
	for _, node := range []string{"n1", "n1", "n2"} {
		s, err := openLogs(h, node, api.LogRequest{Pod: "p"})
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, s)
	}
	if _, err := openLogs(h, "n1", api.LogRequest{Pod: "p"}); !errdefs.IsResourceExhausted(err) || !strings.Contains(err.Error(), `node "n1"`) {
		t.Fatalf("third session on n1: %v", err)
	}
	if _, err := openLogs(h, "n3", api.LogRequest{Pod: "p"}); !errdefs.IsResourceExhausted(err) || !strings.Contains(err.Error(), "server") {
		t.Fatalf("fourth session in all: %v", err)
	}
	h.close(open[0])
	h.close(open[0]) // twice is harmless
	s, err := openLogs(h, "n1", api.LogRequest{Pod: "p"})
	if err != nil {
		t.Fatalf("after a close: %v", err)
	}
	h.close(s)
	// A closed session is neither claimable nor answerable.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	for _, r := range h.claim(ctx, "n1") {
		if r.ID == open[0].id || r.ID == s.id {
			t.Fatalf("claimed closed session %s", r.ID)
		}
	}
	if err := h.attach("n1", s.id, &upload{finished: make(chan struct{})}); !errdefs.IsNotFound(err) {
		t.Fatalf("answer to a closed session: %v", err)
	}
}

func TestSessionHubAwaitTimeout(t *testing.T) {
	h := testHub(30*time.Millisecond, 0, 0)
	s, err := openLogs(h, "n1", api.LogRequest{Pod: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.close(s)
	_, err = h.await(context.Background(), s)
	if !errdefs.IsDeadlineExceeded(err) || !strings.Contains(err.Error(), `node "n1" did not pick up the request`) ||
		!strings.Contains(err.Error(), "is its agent running?") {
		t.Fatalf("unclaimed: %v", err)
	}
	h.claim(context.Background(), "n1")
	_, err = h.await(context.Background(), s)
	if !errdefs.IsDeadlineExceeded(err) || !strings.Contains(err.Error(), "picked up the request but did not answer") {
		t.Fatalf("claimed: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.await(ctx, s); !errdefs.IsCanceled(err) {
		t.Fatalf("client gone: %v", err)
	}
}

// Closing a session whose stream was not drained stops the stream, so
// that the node's request ends.
func TestSessionHubCloseStopsUpload(t *testing.T) {
	h := testHub(time.Second, 0, 0)
	s, err := openLogs(h, "n1", api.LogRequest{Pod: "p"})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	up := &upload{finished: make(chan struct{}), stop: func() { close(stopped) }}
	if err := h.attach("n1", s.id, up); err != nil {
		t.Fatal(err)
	}
	h.close(s)
	select {
	case <-stopped:
	default:
		t.Fatal("close did not stop the undrained upload")
	}
	select {
	case <-up.finished:
	default:
		t.Fatal("close did not finish the upload")
	}
}
