package source

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// upstream is a bare repository plus a work clone that pushes to it, both
// driven through the real git CLI.
type upstream struct {
	t    *testing.T
	bare string // the remote the Source follows
	work string
}

// newUpstream creates an empty bare repository with an empty work clone on
// branch main.
func newUpstream(t *testing.T) *upstream {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git CLI not installed; these tests drive a real repository with it")
	}
	dir := t.TempDir()
	u := &upstream{t: t, bare: filepath.Join(dir, "remote.git"), work: filepath.Join(dir, "work")}
	u.git(dir, "init", "-q", "--bare", "-b", "main", u.bare)
	u.git(dir, "init", "-q", "-b", "main", u.work)
	u.git(u.work, "remote", "add", "origin", u.bare)
	return u
}

// git runs git in dir with a fixed identity and no user configuration.
func (u *upstream) git(dir string, args ...string) string {
	u.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.com",
	)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		u.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(out.String())
}

// commit writes files (nil content deletes), commits and pushes to branch,
// returning the new SHA.
func (u *upstream) commit(branch, msg string, files map[string]string) string {
	u.t.Helper()
	for name, content := range files {
		p := filepath.Join(u.work, filepath.FromSlash(name))
		if content == "" {
			if err := os.Remove(p); err != nil {
				u.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			u.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			u.t.Fatal(err)
		}
	}
	u.git(u.work, "add", "-A")
	u.git(u.work, "commit", "-q", "--allow-empty", "-m", msg)
	u.git(u.work, "push", "-q", "-f", "origin", "HEAD:refs/heads/"+branch)
	return u.git(u.work, "rev-parse", "HEAD")
}

// newSource returns a Source following u's main branch into a fresh Dir,
// with cfg's non-zero fields applied.
func (u *upstream) newSource(mod func(*Config)) *Source {
	u.t.Helper()
	cfg := Config{URL: u.bare, Branch: "main", Dir: filepath.Join(u.t.TempDir(), "mirror")}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, testLogger(u.t))
	if err != nil {
		u.t.Fatal(err)
	}
	return s
}

// testLogger logs through t.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// mustFetch fetches and checks the head and changed flag.
func mustFetch(t *testing.T, s *Source, wantCommit string, wantChanged bool) Revision {
	t.Helper()
	rev, changed, err := s.Fetch(context.Background())
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if rev.Commit != wantCommit || changed != wantChanged {
		t.Fatalf("Fetch = %s changed=%v, want %s changed=%v", rev.Commit, changed, wantCommit, wantChanged)
	}
	return rev
}
