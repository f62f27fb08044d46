package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moor-dev/moor/reconciler/source"
	"github.com/moor-dev/moor/reconciler/webhook"
)

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestWebhookTriggersSync starts a real server on a real bare repository
// and drives it through its HTTPS listener as GitHub would.
func TestWebhookTriggersSync(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	bare, work := filepath.Join(dir, "repo.git"), filepath.Join(dir, "work")
	git(t, dir, "init", "-q", "--bare", "--initial-branch=main", bare)
	git(t, dir, "clone", "-q", bare, work)
	git(t, work, "checkout", "-q", "-b", "main")
	git(t, work, "commit", "-q", "--allow-empty", "-m", "first")
	git(t, work, "push", "-q", "origin", "main")

	t.Setenv(webhook.SecretEnv(webhook.GitHub), "It's a Secret to Everybody")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Start(ctx, Config{
		Source:  source.Config{URL: "file://" + bare, Branch: "main"},
		DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", PollInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.authority.CAPool()}}}
	get := func(path string) (int, string) {
		resp, err := client.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor := func(what string, f func() bool) {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if f() {
				return
			}
		}
		t.Fatalf("timed out waiting for %s", what)
	}
	waitFor("readiness after the first sync", func() bool { code, _ := get("/readyz"); return code == 200 })
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}

	git(t, work, "commit", "-q", "--allow-empty", "-m", "second")
	git(t, work, "push", "-q", "origin", "main")
	head := git(t, work, "rev-parse", "HEAD")
	body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","before":"%s","after":"%s","repository":{"full_name":"o/r"},"pusher":{"name":"t"}}`,
		strings.Repeat("0", 40), head))
	post := func(sig, delivery string) int {
		req, _ := http.NewRequest("POST", s.URL()+"/hooks/github", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", delivery)
		if sig != "" {
			req.Header.Set("X-Hub-Signature-256", "sha256="+sig)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deployed := func() string {
		sha, err := s.store.Deployed(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return sha
	}

	// A wrong signature is refused and fetches nothing.
	if code := post(webhook.Sign("wrong", body), "d1"); code != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d", code)
	}
	time.Sleep(300 * time.Millisecond)
	if deployed() == head {
		t.Fatal("an unsigned webhook deployed the commit")
	}
	// A signed push to the tracked branch deploys the commit at once,
	// without client certificates (the hook is authenticated by HMAC).
	if code := post(webhook.Sign("It's a Secret to Everybody", body), "d2"); code != http.StatusAccepted {
		t.Fatalf("signed push: %d", code)
	}
	waitFor("the pushed commit to deploy", func() bool { return deployed() == head })

	code, m := get("/metrics")
	if code != 200 || !strings.Contains(m, `moor_webhook_requests_total{provider="github",result="triggered"} 1`) ||
		!strings.Contains(m, `moor_webhook_requests_total{provider="github",result="unauthorized"} 1`) ||
		!strings.Contains(m, "moor_sync_duration_seconds_count") {
		t.Fatalf("/metrics (%d) lacks webhook and sync metrics:\n%s", code, m)
	}
	// The webhook's arrival starts the commit's timeline; the first
	// commit, found by the startup poll, has none.
	rec, err := s.store.GetCommit(ctx, head)
	if err != nil || rec.WebhookAt.IsZero() || rec.FetchedAt.Before(rec.WebhookAt) || rec.PublishedAt.IsZero() {
		t.Fatalf("record of the webhook's commit: %+v %v", rec, err)
	}
	if !strings.Contains(m, `moor_commits_total{state="published"} 2`) {
		t.Errorf("/metrics lacks two published commits:\n%s", m)
	}
	// The API itself still needs a client certificate.
	if code, _ := get("/v1/pods"); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Fatalf("/v1/pods without a certificate: %d", code)
	}
}
