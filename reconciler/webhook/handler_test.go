package webhook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTrigger records requests.
type fakeTrigger struct {
	mu     sync.Mutex
	causes []Cause
}

func (f *fakeTrigger) Submit(c Cause) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.causes = append(f.causes, c)
}

func (f *fakeTrigger) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.causes)
}

// fakeRecorder counts results.
type fakeRecorder struct {
	mu sync.Mutex
	n  map[string]int
}

func (f *fakeRecorder) WebhookRequest(provider, result string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[string]int{}
	}
	f.n[provider+"/"+result]++
}

var _ Recorder = (*fakeRecorder)(nil)
var _ Requester = (*fakeTrigger)(nil)

const testSecret = "It's a Secret to Everybody"

var allSecrets = map[Provider]string{
	GitHub: testSecret, GitLab: testSecret, Gitea: testSecret, Forgejo: testSecret, Bitbucket: testSecret, Generic: testSecret,
}

// signed sets the provider's authentication header for body.
func signed(p Provider, secret string, body []byte, h http.Header) http.Header {
	h = h.Clone()
	sig := Sign(secret, body)
	switch p {
	case GitHub:
		h.Set("X-Hub-Signature-256", "sha256="+sig)
	case GitLab:
		h.Set("X-Gitlab-Token", secret)
	case Gitea:
		h.Set("X-Gitea-Signature", sig)
	case Forgejo:
		h.Set("X-Forgejo-Signature", sig)
	case Bitbucket:
		h.Set("X-Hub-Signature", "sha256="+sig)
	case Generic:
		h.Set("X-Moor-Signature", "sha256="+sig)
	}
	return h
}

type testEnv struct {
	srv  *httptest.Server
	trig *fakeTrigger
	rec  *fakeRecorder
}

func newTestEnv(t *testing.T, edit func(*Config)) *testEnv {
	t.Helper()
	env := &testEnv{trig: &fakeTrigger{}, rec: &fakeRecorder{}}
	cfg := Config{Branch: "main", Secrets: allSecrets, Trigger: env.trig, Metrics: env.rec, Log: quietLog()}
	if edit != nil {
		edit(&cfg)
	}
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/hooks/{provider}", h)
	env.srv = httptest.NewServer(mux)
	t.Cleanup(env.srv.Close)
	return env
}

func (e *testEnv) post(t *testing.T, provider string, h http.Header, body []byte) (int, Response) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/hooks/"+provider, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h.Clone()
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("response body: %v", err)
	}
	return resp.StatusCode, r
}

func TestHandlerRealPayloads(t *testing.T) {
	tests := []struct {
		name    string
		branch  string
		status  int
		result  string
		trigger bool
		commit  string
	}{
		{"github push", "main", 202, ResultTriggered, true, "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"},
		{"github push", "prod", 202, ResultIgnored, false, ""},
		{"github tag", "main", 202, ResultIgnored, false, ""},
		{"github branch deleted", "main", 202, ResultIgnored, false, ""},
		{"github ping", "main", 200, ResultPing, false, ""},
		{"github other event", "main", 202, ResultIgnored, false, ""},
		{"gitlab push", "main", 202, ResultTriggered, true, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"},
		{"gitlab tag push", "main", 202, ResultIgnored, false, ""},
		{"gitlab merge request", "main", 202, ResultIgnored, false, ""},
		{"gitea push", "main", 202, ResultTriggered, true, "bffeb74224043ba2feb48d137756c8a9331c449a"},
		{"gitea create", "main", 202, ResultIgnored, false, ""},
		{"forgejo push", "staging", 202, ResultTriggered, true, "bffeb74224043ba2feb48d137756c8a9331c449a"},
		{"forgejo push", "main", 202, ResultIgnored, false, ""},
		{"bitbucket cloud push", "main", 202, ResultTriggered, true, "10f2c18af0c2daf86d429c22f6a8c34d8a6ab911"},
		{"bitbucket server refs changed", "main", 202, ResultTriggered, true, "178864a7d521b6f5e720b386b2c2b0ef8563e0dc"},
		{"bitbucket server refs changed", "feature/probe", 202, ResultTriggered, true, "4a24622fd85f304770079a8b4dbf9566ea1928c5"},
		{"bitbucket server refs changed", "dev", 202, ResultIgnored, false, ""},
		{"bitbucket server ping", "main", 200, ResultPing, false, ""},
		{"bitbucket pull request", "main", 202, ResultIgnored, false, ""},
		{"generic push", "main", 202, ResultTriggered, true, "5f1c8a3e9b2d4c6a7e8f0a1b2c3d4e5f6a7b8c9d"},
	}
	cases := map[string]int{}
	for i, c := range parseCases {
		cases[c.name] = i
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.branch, func(t *testing.T) {
			pc := parseCases[cases[tt.name]]
			env := newTestEnv(t, func(c *Config) { c.Branch = tt.branch })
			body := readTestdata(t, pc.file)
			status, resp := env.post(t, string(pc.p), signed(pc.p, testSecret, body, pc.header), body)
			if status != tt.status || resp.Result != tt.result {
				t.Fatalf("got %d %s (%s), want %d %s", status, resp.Result, resp.Message, tt.status, tt.result)
			}
			if got := env.trig.count(); got != map[bool]int{true: 1}[tt.trigger] {
				t.Fatalf("%d fetch requests, want trigger=%v", got, tt.trigger)
			}
			if tt.trigger {
				c := env.trig.causes[0]
				if c.Commit != tt.commit || c.At.IsZero() || !strings.Contains(c.Reason, string(pc.p)) {
					t.Fatalf("cause = %+v, want commit %s", c, tt.commit)
				}
			}
			if env.rec.n[string(pc.p)+"/"+tt.result] != 1 {
				t.Fatalf("metrics = %v", env.rec.n)
			}
		})
	}
}

func TestHandlerRejects(t *testing.T) {
	push := readTestdata(t, "github-push.json")
	ghHeader := hdr("X-GitHub-Event", "push", "X-GitHub-Delivery", "d-1")
	big := bytes.Repeat([]byte(" "), len(push)+101)
	tests := []struct {
		name     string
		provider string
		header   http.Header
		body     []byte
		status   int
		result   string
	}{
		{"missing signature", "github", ghHeader, push, 401, ResultUnauthorized},
		{"wrong secret", "github", signed(GitHub, "wrong", push, ghHeader), push, 401, ResultUnauthorized},
		{"body changed after signing", "github", signed(GitHub, testSecret, push, ghHeader), append(append([]byte{}, push...), ' '), 401, ResultUnauthorized},
		{"gitlab wrong token", "gitlab", hdr("X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", "nope"), readTestdata(t, "gitlab-push.json"), 401, ResultUnauthorized},
		{"gitea wrong signature", "gitea", hdr("X-Gitea-Event", "push", "X-Gitea-Signature", Sign("x", push)), push, 401, ResultUnauthorized},
		{"bitbucket missing signature", "bitbucket", hdr("X-Event-Key", "repo:push"), push, 401, ResultUnauthorized},
		{"oversize", "github", signed(GitHub, testSecret, big, ghHeader), big, 413, ResultTooLarge},
		{"malformed json", "github", signed(GitHub, testSecret, []byte("{"), ghHeader), []byte("{"), 400, ResultBadRequest},
		{"unknown provider", "gogs", ghHeader, push, 404, ResultNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, func(c *Config) { c.MaxBody = int64(len(push)) + 100 })
			status, resp := env.post(t, tt.provider, tt.header, tt.body)
			if status != tt.status || resp.Result != tt.result {
				t.Fatalf("got %d %s (%s), want %d %s", status, resp.Result, resp.Message, tt.status, tt.result)
			}
			if env.trig.count() != 0 {
				t.Fatal("a rejected delivery requested a fetch")
			}
		})
	}
}

func TestHandlerUnconfiguredAndMethod(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.Secrets = map[Provider]string{GitHub: testSecret} })
	body := readTestdata(t, "gitlab-push.json")
	if status, resp := env.post(t, "gitlab", signed(GitLab, testSecret, body, hdr("X-Gitlab-Event", "Push Hook")), body); status != 404 || resp.Result != ResultNotFound {
		t.Fatalf("unconfigured provider: %d %+v", status, resp)
	}
	resp, err := env.srv.Client().Get(env.srv.URL + "/hooks/github")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestHandlerOversizeWithoutContentLength(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.MaxBody = 1024 })
	body := bytes.Repeat([]byte("a"), 4096)
	req, _ := http.NewRequest(http.MethodPost, env.srv.URL+"/hooks/github", io.MultiReader(bytes.NewReader(body))) // no length: chunked
	req.Header = signed(GitHub, testSecret, body, hdr("X-GitHub-Event", "push"))
	resp, err := env.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 || req.ContentLength != 0 {
		t.Fatalf("chunked oversize: %d (content length %d), want 413", resp.StatusCode, req.ContentLength)
	}
}

func TestHandlerDefaultCapIsOneMiB(t *testing.T) {
	env := newTestEnv(t, nil)
	body := append([]byte(`{"ref":"refs/heads/main","after":"abc","pad":"`), bytes.Repeat([]byte("x"), 1<<20)...)
	body = append(body, `"}`...)
	if status, _ := env.post(t, "generic", signed(Generic, testSecret, body, http.Header{}), body); status != 413 {
		t.Fatalf("1 MiB + body: %d, want 413", status)
	}
	small := body[:1<<19]
	small = append(append([]byte{}, small...), `"}`...)
	if status, resp := env.post(t, "generic", signed(Generic, testSecret, small, http.Header{}), small); status != 202 || resp.Result != ResultTriggered {
		t.Fatalf("512 KiB body: %d %+v", status, resp)
	}
}

func TestHandlerRedelivery(t *testing.T) {
	env := newTestEnv(t, nil)
	tests := []struct {
		p      Provider
		file   string
		header http.Header
	}{
		{GitHub, "github-push.json", hdr("X-GitHub-Event", "push", "X-GitHub-Delivery", "72d3162e")},
		{GitLab, "gitlab-push.json", hdr("X-Gitlab-Event", "Push Hook", "Idempotency-Key", "908a6d9e")},
		{Gitea, "gitea-push.json", hdr("X-Gitea-Event", "push", "X-Gitea-Delivery", "f6266f16")},
		{Bitbucket, "bitbucket-cloud-push.json", hdr("X-Event-Key", "repo:push", "X-Request-UUID", "b1", "X-Hook-UUID", "same-hook")},
		{Bitbucket, "bitbucket-server-refs-changed.json", hdr("X-Event-Key", "repo:refs_changed", "X-Request-Id", "b2", "X-Hook-UUID", "same-hook")},
		{Generic, "generic-push.json", hdr("X-Moor-Delivery", "g1")},
	}
	for i, tt := range tests {
		body := readTestdata(t, tt.file)
		h := signed(tt.p, testSecret, body, tt.header)
		if status, resp := env.post(t, string(tt.p), h, body); status != 202 || resp.Result != ResultTriggered {
			t.Fatalf("%s first delivery: %d %+v", tt.p, status, resp)
		}
		if status, resp := env.post(t, string(tt.p), h, body); status != 200 || resp.Result != ResultDuplicate {
			t.Fatalf("%s redelivery: %d %+v", tt.p, status, resp)
		}
		if got := env.trig.count(); got != i+1 {
			t.Fatalf("%s: %d fetch requests after %d distinct deliveries", tt.p, got, i+1)
		}
	}
	// The same id from another provider is a different delivery.
	body := readTestdata(t, "generic-push.json")
	if _, resp := env.post(t, "generic", signed(Generic, testSecret, body, hdr("X-Moor-Delivery", "72d3162e")), body); resp.Result != ResultTriggered {
		t.Fatalf("same id, other provider: %+v", resp)
	}
	// A forged redelivery (wrong signature) neither triggers nor poisons the filter.
	h := hdr("X-GitHub-Event", "push", "X-GitHub-Delivery", "fresh")
	push := readTestdata(t, "github-push.json")
	if status, _ := env.post(t, "github", signed(GitHub, "forged", push, h), push); status != 401 {
		t.Fatalf("forged: %d", status)
	}
	if _, resp := env.post(t, "github", signed(GitHub, testSecret, push, h), push); resp.Result != ResultTriggered {
		t.Fatalf("genuine after forged: %+v", resp)
	}
}

func TestHandlerFormEncoded(t *testing.T) {
	env := newTestEnv(t, nil)
	body := []byte("payload=" + url.QueryEscape(string(readTestdata(t, "github-push.json"))))
	h := signed(GitHub, testSecret, body, hdr("X-GitHub-Event", "push", "Content-Type", "application/x-www-form-urlencoded"))
	if status, resp := env.post(t, "github", h, body); status != 202 || resp.Result != ResultTriggered {
		t.Fatalf("form-encoded push: %d %+v", status, resp)
	}
}

// TestHandlerAnswersBeforeFetch wires the real Trigger with a fetch that
// blocks: the receiver still answers at once, and a flood of deliveries
// runs the fetch at most twice.
func TestHandlerAnswersBeforeFetch(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	runs := 0
	tr := NewTrigger(func(ctx context.Context, c Cause) error {
		mu.Lock()
		runs++
		mu.Unlock()
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}, quietLog())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tr.Run(ctx)
	env := newTestEnv(t, func(c *Config) { c.Trigger = tr })
	body := readTestdata(t, "generic-push.json")
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, _ := env.post(t, "generic", signed(Generic, testSecret, body, hdr("X-Moor-Delivery", fmt.Sprint(i))), body)
			if status != 202 {
				t.Errorf("delivery %d: %d", i, status)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("receiver waited for the fetch")
	}
	close(release)
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if runs < 1 || runs > 2 {
		t.Fatalf("fetch ran %d times for 50 deliveries, want 1 or 2", runs)
	}
}

func TestHandlerSlowBody(t *testing.T) {
	env := newTestEnv(t, func(c *Config) { c.ReadTimeout = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", env.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Announce 100 bytes, send 10, then stall.
	fmt.Fprintf(conn, "POST /hooks/generic HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nX-Moor-Signature: sha256=%s\r\n\r\n{\"ref\":\"ma", strings.Repeat("0", 64))
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled body: %d, want 408", resp.StatusCode)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("answered after %s", d)
	}
	if env.trig.count() != 0 {
		t.Fatal("stalled delivery requested a fetch")
	}
}
