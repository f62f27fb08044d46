package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// scripted records the steps Syncer.Sync takes and fails them on demand.
type scripted struct {
	steps                []string
	broken               bool // Intact reports the rules removed
	intactErr            error
	partialErr, fullErr  error
	cancelOnPartialError context.CancelFunc
}

func (s *scripted) Intact(context.Context) (bool, error) {
	s.steps = append(s.steps, "intact")
	return !s.broken, s.intactErr
}

func (s *scripted) Partial(_ context.Context, d *Delta[string]) error {
	s.steps = append(s.steps, fmt.Sprintf("partial%d", len(d.Changes)))
	if s.partialErr != nil && s.cancelOnPartialError != nil {
		s.cancelOnPartialError()
	}
	return s.partialErr
}

func (s *scripted) Full(_ context.Context, d *Delta[string]) error {
	s.steps = append(s.steps, fmt.Sprintf("full%d:%s", len(d.Changes), strings.Join(d.Values(), ",")))
	return s.fullErr
}

func syncTable(names ...string) *Table {
	t := &Table{}
	for _, n := range names {
		t.Services = append(t.Services, Service{Namespace: "ns", Name: n})
	}
	return t
}

func TestSyncerFlow(t *testing.T) {
	boom := errors.New("boom")
	type step struct {
		table   []string
		advance time.Duration
		app     scripted
		cancel  bool // ctx is cancelled when Partial fails
		want    []string
		wantErr error
	}
	cases := map[string][]step{
		"first full, then partial": {
			{table: []string{"a"}, want: []string{"full1:a"}},
			{table: []string{"a", "b"}, want: []string{"intact", "partial1"}},
			{table: []string{"a", "b"}, want: []string{"intact", "partial0"}},
		},
		"canary makes it full": {
			{table: []string{"a"}, want: []string{"full1:a"}},
			{table: []string{"a"}, app: scripted{broken: true}, want: []string{"intact", "full0:a"}},
			{table: []string{"a"}, want: []string{"intact", "partial0"}},
		},
		"canary error ends the sync": {
			{table: []string{"a"}, want: []string{"full1:a"}},
			{table: []string{"b"}, app: scripted{intactErr: boom}, want: []string{"intact"}, wantErr: boom},
			{table: []string{"b"}, want: []string{"intact", "partial2"}},
		},
		"failed partial retried full": {
			{table: []string{"a"}, want: []string{"full1:a"}},
			{table: []string{"b"}, app: scripted{partialErr: boom}, want: []string{"intact", "partial2", "full2:b"}},
			{table: []string{"b"}, want: []string{"intact", "partial0"}},
		},
		"cancelled partial not retried": {
			{table: []string{"a"}, want: []string{"full1:a"}},
			{table: []string{"b"}, app: scripted{partialErr: boom}, cancel: true, want: []string{"intact", "partial2"}, wantErr: boom},
			{table: []string{"b"}, want: []string{"full2:b"}},
		},
		"failed full keeps the cache and the next full": {
			{table: []string{"a"}, app: scripted{fullErr: boom}, want: []string{"full1:a"}, wantErr: boom},
			{table: []string{"a", "b"}, want: []string{"full2:a,b"}},
			{table: []string{"a", "b"}, want: []string{"intact", "partial0"}},
		},
		"resync period": {
			{table: []string{"a"}, want: []string{"full1:a"}},
			{table: []string{"a"}, advance: time.Minute - 1, want: []string{"intact", "partial0"}},
			{table: []string{"a"}, advance: 1, want: []string{"full0:a"}},
			{table: []string{"a"}, advance: time.Minute - 1, want: []string{"intact", "partial0"}},
		},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			now := time.Unix(1000, 0)
			s := Syncer[string]{
				Render: func(s *Service) string { return s.Name },
				Log:    slog.New(slog.DiscardHandler),
				Now:    func() time.Time { return now },
			}
			cfg := Config{}.WithDefaults()
			for i, st := range steps {
				now = now.Add(st.advance)
				ctx, cancel := context.WithCancel(context.Background())
				app := st.app
				if st.cancel {
					app.cancelOnPartialError = cancel
				}
				err := s.Sync(ctx, syncTable(st.table...), cfg, &app)
				cancel()
				if !errors.Is(err, st.wantErr) || (err != nil) != (st.wantErr != nil) {
					t.Fatalf("step %d: error %v, want %v", i, err, st.wantErr)
				}
				if !slices.Equal(app.steps, st.want) {
					t.Fatalf("step %d: steps %q, want %q", i, app.steps, st.want)
				}
			}
		})
	}
}

func TestSyncerReset(t *testing.T) {
	s := Syncer[string]{Render: func(s *Service) string { return s.Name }, Log: slog.New(slog.DiscardHandler)}
	cfg := Config{}.WithDefaults()
	for i, want := range []string{"full1:a", "intact partial0", "full0:a"} {
		if i == 2 {
			s.Reset()
		}
		app := &scripted{}
		if err := s.Sync(context.Background(), syncTable("a"), cfg, app); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(app.steps, " "); got != want {
			t.Fatalf("sync %d: steps %q, want %q", i, got, want)
		}
	}
}

func TestMoveRefs(t *testing.T) {
	ip := netip.MustParseAddr
	addrs := func(v string) []netip.Addr {
		var out []netip.Addr
		for f := range strings.FieldsSeq(v) {
			out = append(out, ip(f))
		}
		return out
	}
	r := Refs{}
	r.Add(addrs("10.0.0.1 10.0.0.2"), addrs("10.0.0.2"))
	d := &Delta[string]{Changes: []Change[string]{
		{Key: "ns/x", Old: "10.0.0.1", HasOld: true, Val: "10.0.0.3 10.0.0.4"},
		{Key: "ns/y", Old: "10.0.0.2", HasOld: true},
		{Key: "ns/z", Val: "10.0.0.9 10.0.0.2"},
	}}
	next, gone, came := Move(r, d, addrs)
	if want := (Refs{ip("10.0.0.1"): 1, ip("10.0.0.2"): 2}); fmt.Sprint(r) != fmt.Sprint(want) {
		t.Errorf("Move modified its input: %v", r)
	}
	if want := (Refs{ip("10.0.0.2"): 2, ip("10.0.0.3"): 1, ip("10.0.0.4"): 1, ip("10.0.0.9"): 1}); fmt.Sprint(next) != fmt.Sprint(want) {
		t.Errorf("next = %v, want %v", next, want)
	}
	if want := addrs("10.0.0.1"); !slices.Equal(gone, want) {
		t.Errorf("gone = %v, want %v", gone, want)
	}
	if want := addrs("10.0.0.3 10.0.0.4 10.0.0.9"); !slices.Equal(came, want) {
		t.Errorf("came = %v, want %v", came, want)
	}
	if want := addrs("10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.9"); !slices.Equal(next.Sorted(), want) {
		t.Errorf("Sorted = %v, want %v", next.Sorted(), want)
	}
	if next, gone, came := Move(nil, &Delta[string]{}, addrs); len(next)+len(gone)+len(came) != 0 || next == nil {
		t.Errorf("Move(nil, empty) = %v %v %v, want an empty, usable Refs", next, gone, came)
	}
}
