package webhook

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestTriggerCoalescesFlood(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	var runs atomic.Int32
	var mu sync.Mutex
	var causes []Cause
	tr := NewTrigger(func(ctx context.Context, c Cause) error {
		runs.Add(1)
		mu.Lock()
		causes = append(causes, c)
		mu.Unlock()
		started <- struct{}{}
		<-release
		return nil
	}, quietLog())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- tr.Run(ctx) }()

	first := time.Now()
	tr.Submit(Cause{At: first, Reason: "first", Commit: "c1"})
	<-started // fn is running and blocked

	var wg sync.WaitGroup
	base := first.Add(time.Second)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr.Submit(Cause{At: base.Add(time.Duration(i) * time.Millisecond), Reason: "flood", Commit: "c2"})
		}()
	}
	wg.Wait()
	close(release)
	<-started // the one queued run
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("fn ran %d times for 1001 requests, want 2 (one running, one queued)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if causes[0].Requests != 1 || causes[0].Reason != "first" || !causes[0].At.Equal(first) {
		t.Errorf("first cause = %+v", causes[0])
	}
	if c := causes[1]; c.Requests != 1000 || !c.At.Equal(base) || c.Commit != "c2" {
		t.Errorf("coalesced cause = %+v, want 1000 requests at the earliest time %v", c, base)
	}
}

func TestTriggerKeepsRequestsBeforeRunAndSurvivesErrors(t *testing.T) {
	calls := make(chan Cause, 4)
	tr := NewTrigger(func(ctx context.Context, c Cause) error {
		calls <- c
		return errors.New("remote unreachable")
	}, quietLog())
	tr.Request("early")
	tr.Request("early too")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tr.Run(ctx)
	c := <-calls
	if c.Reason != "early" || c.Requests != 2 {
		t.Fatalf("cause = %+v, want the earliest reason and 2 requests", c)
	}
	tr.Request("after error")
	if c := <-calls; c.Reason != "after error" {
		t.Fatalf("cause = %+v", c)
	}
	if err := tr.Run(ctx); err == nil {
		t.Fatal("second Run succeeded, want an error")
	}
}

func TestTriggerReadyTake(t *testing.T) {
	tr := NewTrigger(nil, nil)
	if _, ok := tr.Take(); ok {
		t.Fatal("Take on an idle trigger returned a cause")
	}
	if err := tr.Run(context.Background()); err == nil {
		t.Fatal("Run without a function succeeded")
	}
	tr.Submit(Cause{Reason: "a", Commit: "x"})
	tr.Submit(Cause{Reason: "b"})
	select {
	case <-tr.Ready():
	case <-time.After(time.Second):
		t.Fatal("Ready not signalled")
	}
	c, ok := tr.Take()
	if !ok || c.Reason != "a" || c.Commit != "x" || c.Requests != 2 || c.At.IsZero() {
		t.Fatalf("Take = %+v, %v", c, ok)
	}
	select {
	case <-tr.Ready():
		t.Fatal("Ready signalled twice for one batch")
	default:
	}
}
