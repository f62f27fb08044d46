package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moor-dev/moor/nodeagent"
)

// webhookSecret is the GitHub secret the webhook tests give the server.
const webhookSecret = "e2e-github-webhook-secret"

// startServerWith starts the server as startServer does, with its GitHub
// webhook secret in the environment (MOOR_WEBHOOK_GITHUB_SECRET) when
// secret is set, polling every poll.
func (e *env) startServerWith(secret string, poll time.Duration) {
	e.t.Helper()
	if secret != "" {
		e.t.Setenv("MOOR_WEBHOOK_GITHUB_SECRET", secret)
	}
	e.startServerOn("127.0.0.1", "--poll-interval", poll.String())
}

// httpsClient trusts the server's CA (pki/ca.crt in its data dir) and
// presents no client certificate, as a Git host does.
func (e *env) httpsClient() *http.Client {
	e.t.Helper()
	pem, err := os.ReadFile(filepath.Join(e.srvDir, "pki", "ca.crt"))
	if err != nil {
		e.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		e.t.Fatal("pki/ca.crt holds no certificate")
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

var deliveries atomic.Int64

// postGitHubPush delivers a GitHub push event for sha on main, signed
// with secret, and returns the HTTP status.
func (e *env) postGitHubPush(c *http.Client, secret, before, sha string) int {
	e.t.Helper()
	body, err := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": before, "after": sha,
		"repository": map[string]any{"full_name": "e2e/deploy"},
		"pusher":     map[string]any{"name": "e2e"},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, e.srvURL+"/hooks/github", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("e2e-%d-%d", time.Now().UnixNano(), deliveries.Add(1)))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// waitReplaced waits until n running pods of Deployment web are not
// among before.
func (e *env) waitReplaced(before map[string]nodeagent.ContainerInfo, n int, timeout time.Duration) {
	e.t.Helper()
	e.eventually(timeout, "new pods running", func() error {
		fresh := 0
		for name := range running(e.containers()) {
			if _, old := before[name]; !old {
				fresh++
			}
		}
		if fresh != n {
			return fmt.Errorf("%d of %d new pods running", fresh, n)
		}
		return nil
	})
}

// commitStatus is the status part of `moor get commit SHA -o json`.
type commitStatus struct {
	State         string `json:"state"`
	Deployed      bool   `json:"deployed"`
	Converged     string `json:"converged"`
	PushToRunning string `json:"pushToRunning"`
	WebhookAt     string `json:"webhookAt"`
	Nodes         []struct {
		Node      string `json:"node"`
		PulledAt  string `json:"pulledAt"`
		RunningAt string `json:"runningAt"`
	} `json:"nodes"`
}

func (e *env) commitStatus(sha string) (commitStatus, error) {
	out, err := e.cli("get", "commit", sha, "-o", "json")
	if err != nil {
		return commitStatus{}, err
	}
	var obj struct {
		Status commitStatus `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &obj); err != nil {
		return commitStatus{}, fmt.Errorf("decode %q: %w", out, err)
	}
	return obj.Status, nil
}

// metric returns the value of the sample named exactly name (with
// labels) from /metrics, "" when absent.
func (e *env) metric(c *http.Client, name string) string {
	e.t.Helper()
	resp, err := c.Get(e.srvURL + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// TestWebhookDeploys: a signed GitHub push deploys without `moor sync`
// (the server polls hourly), a badly signed one is refused and deploys
// nothing, and the commit's convergence is recorded and shown.
func TestWebhookDeploys(t *testing.T) {
	e := newEnv(t)
	img := e.image("1")
	first := e.push("v0", map[string]string{"web.yaml": deployment(img, "echo 0; exec sleep 3600", 2)})
	e.startServerWith(webhookSecret, time.Hour)
	e.startAgent("node-a")
	c := e.httpsClient()
	if code := e.postGitHubPush(c, webhookSecret, "", first); code != http.StatusAccepted {
		t.Fatalf("first webhook: HTTP %d, want 202", code)
	}
	e.waitReplaced(nil, 2, 60*time.Second)
	before := running(e.containers())

	second := e.push("v1", map[string]string{"web.yaml": deployment(img, "echo 1; exec sleep 3600", 2)})
	if code := e.postGitHubPush(c, "not-the-secret", first, second); code != http.StatusUnauthorized {
		t.Fatalf("badly signed webhook: HTTP %d, want 401", code)
	}
	time.Sleep(2 * time.Second)
	if out := e.mustCLI("get", "commits", "-o", "name"); strings.Contains(out, second) {
		t.Fatalf("a badly signed webhook fetched %s:\n%s", second, out)
	}
	if now := running(e.containers()); strings.Join(names(now), ",") != strings.Join(names(before), ",") {
		t.Fatalf("pods changed after a badly signed webhook: %v, were %v", names(now), names(before))
	}

	start := time.Now()
	if code := e.postGitHubPush(c, webhookSecret, first, second); code != http.StatusAccepted {
		t.Fatalf("signed webhook: HTTP %d, want 202", code)
	}
	e.waitReplaced(before, 2, 60*time.Second)
	t.Logf("webhook → new pods running: %s", time.Since(start))

	var st commitStatus
	e.eventually(30*time.Second, "the commit shows as converged", func() error {
		var err error
		if st, err = e.commitStatus(second); err != nil {
			return err
		}
		if st.Converged != "1/1" || st.PushToRunning == "" || st.WebhookAt == "" || !st.Deployed {
			return fmt.Errorf("commit status %+v", st)
		}
		return nil
	})
	if len(st.Nodes) != 1 || st.Nodes[0].Node != "node-a" || st.Nodes[0].PulledAt == "" || st.Nodes[0].RunningAt == "" {
		t.Errorf("per-node timings: %+v", st.Nodes)
	}
	table := e.mustCLI("get", "commits")
	t.Logf("moor get commits:\n%s", table)
	row := ""
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, second[:7]) {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) < 6 || !strings.Contains(row, " 1/1 ") || !strings.Contains(row, st.PushToRunning) || !strings.Contains(row, "yes") {
		t.Errorf("get commits row for %s = %q, want converged 1/1, push→running %s, deployed", second[:7], row, st.PushToRunning)
	}
	if nodes := e.mustCLI("get", "nodes"); !strings.Contains(nodes, second[:7]) {
		t.Errorf("get nodes does not show node-a at %s:\n%s", second[:7], nodes)
	}
	if got := e.metric(c, `moor_webhook_requests_total{provider="github",result="unauthorized"}`); got != "1" {
		t.Errorf("unauthorized webhook count = %q, want 1", got)
	}
	if got := e.metric(c, `moor_webhook_requests_total{provider="github",result="triggered"}`); got != "2" {
		t.Errorf("triggered webhook count = %q, want 2", got)
	}
	if got := e.metric(c, "moor_push_to_running_seconds_count"); got != "2" {
		t.Errorf("push→running observations = %q, want 2 (one per commit)", got)
	}
}
