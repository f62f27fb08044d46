package httpapi

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

func TestHubGetSet(t *testing.T) {
	h := NewHub()
	if _, _, ok := h.Get("n1"); ok {
		t.Fatal("Get on an empty hub found a document")
	}
	body := []byte(`{"a":1}`)
	h.Set("n1", body, "")
	body[0] = 'X' // the hub must have copied it
	got, digest, ok := h.Get("n1")
	if !ok || string(got) != `{"a":1}` || digest != api.Digest([]byte(`{"a":1}`)) {
		t.Fatalf("Get = %q %q %v, want the document with its computed digest", got, digest, ok)
	}
	if _, _, ok := h.Get("n2"); ok {
		t.Fatal("Get found a document for another node")
	}
}

func TestHubWait(t *testing.T) {
	tests := []struct {
		name        string
		set         string // digest published before the wait; "" for none
		since       string
		setDuring   string // digest published while waiting; "" for none
		wantChanged bool
		wantDigest  string
	}{
		{"DifferentSinceReturnsAtOnce", "d1", "d0", "", true, "d1"},
		{"EmptySinceReturnsAtOnce", "d1", "", "", true, "d1"},
		{"SameSinceTimesOut", "d1", "d1", "", false, "d1"},
		{"NoDocumentTimesOut", "", "", "", false, ""},
		{"WakesOnChange", "d1", "d1", "d2", true, "d2"},
		{"WakesOnFirstDocument", "", "", "d1", true, "d1"},
		{"SameDigestAgainDoesNotWake", "d1", "d1", "d1", false, "d1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHub()
			if tt.set != "" {
				h.Set("n1", []byte(tt.set), tt.set)
			}
			timeout := 50 * time.Millisecond
			if tt.setDuring != "" {
				timeout = 5 * time.Second
				go func() {
					time.Sleep(20 * time.Millisecond)
					h.Set("n1", []byte(tt.setDuring), tt.setDuring)
				}()
				if !tt.wantChanged { // only a real change ends the wait early
					timeout = 200 * time.Millisecond
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			body, digest, changed, err := h.Wait(ctx, "n1", tt.since)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tt.wantChanged || digest != tt.wantDigest || string(body) != tt.wantDigest {
				t.Fatalf("Wait = %q %q %v, want %q %v", body, digest, changed, tt.wantDigest, tt.wantChanged)
			}
			if changed && ctx.Err() != nil {
				t.Fatal("Wait reported a change only after its context ended")
			}
		})
	}
}

func TestHubWaitEmptyNode(t *testing.T) {
	if _, _, _, err := NewHub().Wait(context.Background(), "", ""); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("err = %v, want invalid argument", err)
	}
}

// TestHubManyWaiters wakes many waiters with one Set and runs writers and
// readers of several nodes concurrently, for the race detector.
func TestHubManyWaiters(t *testing.T) {
	h := NewHub()
	const waiters = 20
	var wg sync.WaitGroup
	results := make(chan string, waiters)
	ready := make(chan struct{}, waiters)
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready <- struct{}{}
			_, digest, changed, err := h.Wait(context.Background(), "n1", "")
			if err != nil || !changed {
				results <- fmt.Sprintf("err=%v changed=%v", err, changed)
				return
			}
			results <- digest
		}()
	}
	for range waiters {
		<-ready
	}
	h.Set("n1", []byte("x"), "d1")
	wg.Wait()
	close(results)
	for r := range results {
		if r != "d1" {
			t.Errorf("waiter got %s, want d1", r)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg2 sync.WaitGroup
	for n := range 3 {
		node := fmt.Sprintf("node-%d", n)
		wg2.Add(2)
		go func() {
			defer wg2.Done()
			for i := range 200 {
				h.Set(node, []byte{byte(i)}, fmt.Sprintf("d%d", i))
			}
		}()
		go func() {
			defer wg2.Done()
			since := ""
			for ctx.Err() == nil && since != "d199" {
				_, digest, changed, err := h.Wait(ctx, node, since)
				if err != nil {
					t.Error(err)
					return
				}
				if changed && digest == since {
					t.Errorf("Wait reported a change to the digest it was given (%s)", since)
				}
				since = digest
			}
			if since != "d199" {
				t.Errorf("reader of %s ended at %q, want d199", node, since)
			}
		}()
	}
	wg2.Wait()
}
