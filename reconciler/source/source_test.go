package source

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

func TestFetchFollowsBranch(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commit("main", "first\n\nbody", map[string]string{"a.yaml": "a: 1\n"})
	s := u.newSource(nil)

	// First Fetch clones.
	rev := mustFetch(t, s, c1, true)
	if rev.Author != "Ada <ada@example.com>" || rev.Message != "first\n\nbody" || rev.Time.IsZero() {
		t.Errorf("revision = %+v", rev)
	}
	if n := s.fetches.Load(); n != 1 {
		t.Fatalf("after first Fetch: %d downloads, want 1", n)
	}

	// Nothing moved: ls-remote only, no download.
	mustFetch(t, s, c1, false)
	if n := s.fetches.Load(); n != 1 {
		t.Fatalf("after no-op Fetch: %d downloads, want still 1", n)
	}

	// A new commit is downloaded.
	c2 := u.commit("main", "second", map[string]string{"b.yaml": "b: 2\n"})
	mustFetch(t, s, c2, true)
	if n := s.fetches.Load(); n != 2 {
		t.Fatalf("after new commit: %d downloads, want 2", n)
	}
	files, err := s.Files(context.Background(), c2)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string][]byte{"a.yaml": []byte("a: 1\n"), "b.yaml": []byte("b: 2\n")}; !reflect.DeepEqual(files, want) {
		t.Errorf("Files(c2) = %q, want %q", files, want)
	}
	// The older commit stays readable.
	if files, err := s.Files(context.Background(), c1); err != nil || len(files) != 1 {
		t.Errorf("Files(c1) = %q, %v; want only a.yaml", files, err)
	}
}

func TestFetchFollowsForcePush(t *testing.T) {
	u := newUpstream(t)
	u.commit("main", "base", map[string]string{"a.yaml": "v1\n"})
	bad := u.commit("main", "bad", map[string]string{"a.yaml": "bad\n"})
	s := u.newSource(nil)
	mustFetch(t, s, bad, true)

	// Rewrite history: drop "bad" and push a different commit over it.
	u.git(u.work, "reset", "-q", "--hard", "HEAD~1")
	fixed := u.commit("main", "fixed", map[string]string{"a.yaml": "v2\n"})
	if fixed == bad {
		t.Fatal("test setup: rewritten commit has the same SHA")
	}
	mustFetch(t, s, fixed, true)
	files, err := s.Files(context.Background(), fixed)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(files["a.yaml"]); got != "v2\n" {
		t.Errorf("a.yaml after force-push = %q, want v2", got)
	}

	// Force-push back to an ancestor: the head moves backwards.
	u.git(u.work, "reset", "-q", "--hard", "HEAD~1")
	u.git(u.work, "push", "-q", "-f", "origin", "HEAD:refs/heads/main")
	base := u.git(u.work, "rev-parse", "HEAD")
	mustFetch(t, s, base, true)
}

func TestReopenExistingMirror(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commit("main", "first", map[string]string{"a.yaml": "a\n"})
	s := u.newSource(nil)
	mustFetch(t, s, c1, true)

	// A restarted server reuses the mirror: no download, but the first
	// Fetch of the new Source still reports the head as changed.
	again, err := New(s.cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	mustFetch(t, again, c1, true)
	if n := again.fetches.Load(); n != 0 {
		t.Errorf("reopened mirror downloaded %d times, want 0", n)
	}
	if _, err := again.Files(context.Background(), c1); err != nil {
		t.Errorf("Files after reopen: %v", err)
	}
	// A new commit after the restart is fetched into the same mirror.
	c2 := u.commit("main", "second", nil)
	mustFetch(t, again, c2, true)
	if n := again.fetches.Load(); n != 1 {
		t.Errorf("downloads after new commit = %d, want 1", n)
	}
}

func TestFilesBeforeFetchOnReopenedMirror(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commit("main", "first", map[string]string{"a.yaml": "a\n"})
	s := u.newSource(nil)
	mustFetch(t, s, c1, true)
	again, err := New(s.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if files, err := again.Files(context.Background(), c1); err != nil || string(files["a.yaml"]) != "a\n" {
		t.Errorf("Files on reopened mirror before Fetch = %q, %v", files, err)
	}
}

func TestMirrorFollowsURLChange(t *testing.T) {
	old, moved := newUpstream(t), newUpstream(t)
	old.commit("main", "old", nil)
	c := moved.commit("main", "moved", nil)
	s := old.newSource(nil)
	if _, _, err := s.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := s.cfg
	cfg.URL = moved.bare
	again, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	mustFetch(t, again, c, true)
}

func TestFetchMissingBranch(t *testing.T) {
	tests := []struct {
		name  string
		setup func(u *upstream)
	}{
		{"EmptyRepository", func(u *upstream) {}},
		{"OtherBranchOnly", func(u *upstream) { u.commit("develop", "x", nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream(t)
			tt.setup(u)
			s := u.newSource(nil)
			_, _, err := s.Fetch(context.Background())
			if !errdefs.IsNotFound(err) {
				t.Fatalf("Fetch: err = %v, want not found", err)
			}
			t.Logf("error reads: %v", err)
			if msg := err.Error(); !strings.Contains(msg, `"main"`) || !strings.Contains(msg, u.bare) {
				t.Errorf("error %q should name the branch and the URL", msg)
			}
		})
	}
}

func TestFetchUnreachableRepository(t *testing.T) {
	u := newUpstream(t)
	s := u.newSource(func(c *Config) { c.URL = u.bare + "-does-not-exist" })
	if _, _, err := s.Fetch(context.Background()); err == nil {
		t.Fatal("Fetch of a missing repository succeeded")
	}
}

func TestFetchCanceled(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commit("main", "first", nil)
	s := u.newSource(nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Fetch(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch with canceled ctx: err = %v, want context.Canceled", err)
	}
	if _, err := s.Files(ctx, c1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Files with canceled ctx: err = %v, want context.Canceled", err)
	}
	// A canceled Fetch does not count as the previous one.
	mustFetch(t, s, c1, true)
}

func TestFetchHonoursDeadline(t *testing.T) {
	srv := hangingServer(t)
	s, err := New(Config{URL: srv.URL + "/repo.git", Branch: "main", Dir: t.TempDir()}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = s.Fetch(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fetch against a hanging server: err = %v, want context.DeadlineExceeded", err)
	}
	t.Logf("error reads: %v", err)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Fetch took %v to notice the deadline", took)
	}
}
