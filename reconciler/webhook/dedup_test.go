package webhook

import (
	"fmt"
	"testing"
	"time"
)

func TestDedup(t *testing.T) {
	d := newDedup(3, time.Hour)
	t0 := time.Unix(1_700_000_000, 0)
	steps := []struct {
		key  string
		at   time.Duration
		want bool
	}{
		{"a", 0, false},
		{"a", time.Minute, true},
		{"", 0, false},
		{"", 0, false}, // empty ids are never duplicates
		{"b", 0, false},
		{"c", 0, false},
		{"d", 0, false}, // evicts a, the oldest
		{"a", 2 * time.Minute, false},
		{"c", 3 * time.Minute, true},
		{"c", 2 * time.Hour, false}, // expired
	}
	for i, s := range steps {
		if got := d.seen(s.key, t0.Add(s.at)); got != s.want {
			t.Fatalf("step %d: seen(%q) = %v, want %v", i, s.key, got, s.want)
		}
		if d.len() > 3 {
			t.Fatalf("step %d: %d ids remembered, cap is 3", i, d.len())
		}
	}
}

func TestDedupBounded(t *testing.T) {
	d := newDedup(100, time.Hour)
	now := time.Now()
	for i := range 10_000 {
		d.seen(fmt.Sprint(i), now)
	}
	if d.len() != 100 {
		t.Fatalf("%d ids remembered, want 100", d.len())
	}
}
