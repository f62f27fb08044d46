package httpapi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/pki"
)

// fakeController implements Joiner, StatusSink and Admin. Join checks the
// secret and signs with the test CA, as the controller does.
type fakeController struct {
	auth *pki.Authority

	mu        sync.Mutex
	joined    []api.JoinRequest
	joinErr   error
	statuses  []api.NodeStatus
	statusErr error
	syncErr   error
	pods      []api.PodView
}

var (
	_ Joiner     = (*fakeController)(nil)
	_ StatusSink = (*fakeController)(nil)
	_ Admin      = (*fakeController)(nil)
)

func (f *fakeController) Join(_ context.Context, req api.JoinRequest) (api.JoinResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.joined = append(f.joined, req)
	if f.joinErr != nil {
		return api.JoinResponse{}, f.joinErr
	}
	if !api.SecretEqual(req.Secret, f.auth.Token().Secret) {
		return api.JoinResponse{}, fmt.Errorf("join: wrong secret: %w", errdefs.ErrPermissionDenied)
	}
	cert, err := f.auth.SignNode([]byte(req.CSR), req.Node)
	if err != nil {
		return api.JoinResponse{}, fmt.Errorf("join: %w", err)
	}
	return api.JoinResponse{Certificate: string(cert), CA: string(f.auth.CAPEM())}, nil
}

func (f *fakeController) ReportStatus(_ context.Context, s api.NodeStatus) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.statusErr != nil {
		return f.statusErr
	}
	f.statuses = append(f.statuses, s)
	return nil
}

func (f *fakeController) Sync(context.Context) (api.SyncResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.syncErr != nil {
		return api.SyncResponse{}, f.syncErr
	}
	return api.SyncResponse{Commit: "abc", State: api.CommitAccepted, Changed: true}, nil
}

func (f *fakeController) Pods(context.Context) ([]api.PodView, error) { return f.pods, nil }
func (f *fakeController) Deployments(context.Context) ([]api.DeploymentView, error) {
	return nil, nil
}
func (f *fakeController) Nodes(context.Context) ([]api.NodeView, error) {
	return []api.NodeView{{Name: "n1"}}, nil
}
func (f *fakeController) Commits(context.Context) ([]api.CommitView, error) {
	return nil, fmt.Errorf("store is closed")
}
func (f *fakeController) Services(context.Context) ([]api.ServiceView, error) { return nil, nil }

// env is a running API server with real TLS and clients holding node,
// admin, foreign or no certificates.
type env struct {
	t     *testing.T
	url   string
	hub   *Hub
	fake  *fakeController
	auth  *pki.Authority
	stop  context.CancelFunc
	done  chan error
	admin *http.Client
	anon  *http.Client
	// h2 lets clients speak HTTP/2; timeout caps their requests (0:
	// none, for streams that last as long as the test wants).
	h2      bool
	timeout time.Duration
}

func newEnv(t *testing.T, maxWait time.Duration) *env {
	t.Helper()
	return startEnv(t, Config{MaxWait: maxWait, MaxBody: 4096}, false, 20*time.Second)
}

// startEnv serves cfg, with the fake controller as joiner, status sink
// and admin, to clients that speak HTTP/2 when h2 is set and give up
// after timeout (0: never).
func startEnv(t *testing.T, cfg Config, h2 bool, timeout time.Duration) *env {
	t.Helper()
	auth, err := pki.LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	e := &env{t: t, hub: NewHub(), fake: &fakeController{auth: auth}, auth: auth, done: make(chan error, 1), h2: h2, timeout: timeout}
	cfg.Hub, cfg.Joiner, cfg.Status, cfg.Admin, cfg.Log = e.hub, e.fake, e.fake, e.fake, log
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "https://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	go func() { e.done <- Serve(ctx, ln, h, auth.ServerTLSConfig(), log) }()
	t.Cleanup(func() {
		cancel()
		if err := <-e.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	certPEM, keyPEM := auth.AdminPEM()
	e.admin = e.client(keyPair(t, certPEM, keyPEM))
	e.anon = e.client()
	return e
}

func keyPair(t *testing.T, certPEM, keyPEM []byte) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) client(certs ...tls.Certificate) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.auth.CAPool(), Certificates: certs}, ForceAttemptHTTP2: e.h2}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: e.timeout}
}

// nodeClient returns a client holding a certificate the test CA signed for node.
func (e *env) nodeClient(node string) *http.Client {
	csr, key, err := pki.NewCSR(node)
	if err != nil {
		e.t.Fatal(err)
	}
	cert, err := e.auth.SignNode(csr, node)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.client(keyPair(e.t, cert, key))
}

type reply struct {
	status int
	header http.Header
	body   string
}

func (e *env) do(c *http.Client, method, path, body string, header ...string) reply {
	e.t.Helper()
	r, err := e.try(c, method, path, body, header...)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (e *env) try(c *http.Client, method, path, body string, header ...string) (reply, error) {
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}, err
}

func desiredPath(node, query string) string {
	return strings.Replace(api.PathDesired, "{name}", node, 1) + query
}

func statusPath(node string) string { return strings.Replace(api.PathNodeStatus, "{name}", node, 1) }

// wantError checks an error response's status and JSON body.
func wantError(t *testing.T, r reply, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d (%s), want %d", r.status, r.body, status)
	}
	var eb ErrorBody
	if err := json.Unmarshal([]byte(r.body), &eb); err != nil || eb.Error == "" {
		t.Fatalf("error body %q is not {\"error\": ...}: %v", r.body, err)
	}
}

func TestDesiredLongPoll(t *testing.T) {
	e := newEnv(t, time.Second)
	n1 := e.nodeClient("n1")
	e.hub.Set("n1", []byte(`{"doc":1}`), "sha256:d1")

	t.Run("DifferentSinceReturnsAtOnce", func(t *testing.T) {
		start := time.Now()
		r := e.do(n1, "GET", desiredPath("n1", "?since=sha256:old&wait=1s"), "")
		if r.status != 200 || r.body != `{"doc":1}` || r.header.Get("ETag") != `"sha256:d1"` ||
			r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("got %d %q ETag=%q CT=%q", r.status, r.body, r.header.Get("ETag"), r.header.Get("Content-Type"))
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("took %v; a differing digest must answer at once", d)
		}
	})
	t.Run("NotModifiedAfterWait", func(t *testing.T) {
		start := time.Now()
		r := e.do(n1, "GET", desiredPath("n1", "?since=sha256:d1&wait=200ms"), "")
		if r.status != http.StatusNotModified || r.header.Get("ETag") != `"sha256:d1"` {
			t.Fatalf("got %d ETag=%q, want 304 with the current ETag", r.status, r.header.Get("ETag"))
		}
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Errorf("answered after %v, before the 200ms wait", d)
		}
	})
	t.Run("WaitCappedAtMaxWait", func(t *testing.T) {
		start := time.Now()
		r := e.do(n1, "GET", desiredPath("n1", "?since=sha256:d1&wait=1h"), "")
		if d := time.Since(start); r.status != http.StatusNotModified || d > 5*time.Second {
			t.Fatalf("got %d after %v, want 304 after MaxWait (1s)", r.status, d)
		}
	})
	t.Run("BlocksThenWakesOnSet", func(t *testing.T) {
		n2 := e.nodeClient("n2")
		e.hub.Set("n2", []byte(`{"doc":"a"}`), "sha256:a")
		got := make(chan reply, 1)
		go func() {
			r, err := e.try(n2, "GET", desiredPath("n2", "?since=sha256:a&wait=1s"), "")
			if err != nil {
				t.Error(err)
			}
			got <- r
		}()
		select {
		case r := <-got:
			t.Fatalf("long-poll answered %d before anything changed", r.status)
		case <-time.After(150 * time.Millisecond):
		}
		e.hub.Set("n2", []byte(`{"doc":"b"}`), "sha256:b")
		r := <-got
		if r.status != 200 || r.body != `{"doc":"b"}` || r.header.Get("ETag") != `"sha256:b"` {
			t.Fatalf("got %d %q %q, want the new document", r.status, r.body, r.header.Get("ETag"))
		}
	})
	t.Run("FirstDocumentIsWaitedFor", func(t *testing.T) {
		n3 := e.nodeClient("n3")
		r := e.do(n3, "GET", desiredPath("n3", ""), "")
		if r.status != http.StatusNotModified || r.header.Get("ETag") != "" {
			t.Fatalf("got %d ETag=%q, want 304 without ETag for a node with no document", r.status, r.header.Get("ETag"))
		}
		go func() {
			time.Sleep(100 * time.Millisecond)
			e.hub.Set("n3", []byte(`{}`), "sha256:first")
		}()
		if r := e.do(n3, "GET", desiredPath("n3", "?wait=1s"), ""); r.status != 200 || r.body != `{}` {
			t.Fatalf("got %d %q, want the first document", r.status, r.body)
		}
	})
	t.Run("InvalidWait", func(t *testing.T) {
		for _, q := range []string{"?wait=soon", "?wait=-1s"} {
			wantError(t, e.do(n1, "GET", desiredPath("n1", q), ""), http.StatusBadRequest)
		}
	})
}

func TestDesiredIfNoneMatch(t *testing.T) {
	e := newEnv(t, time.Second)
	n1 := e.nodeClient("n1")
	e.hub.Set("n1", []byte(`{"doc":1}`), "sha256:d1")
	tests := []struct {
		header string
		query  string
		want   int
	}{
		{`"sha256:d1"`, "", http.StatusNotModified},
		{`W/"sha256:d1"`, "", http.StatusNotModified},
		{`"sha256:d1", "sha256:d0"`, "", http.StatusNotModified},
		{`*`, "", http.StatusNotModified},
		{`"sha256:d0"`, "", http.StatusOK},
		{`"sha256:d1"`, "?since=sha256:d0", http.StatusOK}, // since wins
	}
	for _, tt := range tests {
		t.Run(tt.header+tt.query, func(t *testing.T) {
			r := e.do(n1, "GET", desiredPath("n1", tt.query), "", "If-None-Match", tt.header)
			if r.status != tt.want {
				t.Fatalf("got %d, want %d", r.status, tt.want)
			}
		})
	}
}

func TestAuthorization(t *testing.T) {
	e := newEnv(t, time.Second)
	n1 := e.nodeClient("n1")
	e.hub.Set("n1", []byte(`{}`), "sha256:d1")
	e.hub.Set("n2", []byte(`{}`), "sha256:d2")
	status := `{"node":"n2"}`
	tests := []struct {
		name   string
		client *http.Client
		method string
		path   string
		body   string
		want   int
	}{
		{"NodeReadsOwnDesired", n1, "GET", desiredPath("n1", ""), "", 200},
		{"NodeReadsOtherDesired", n1, "GET", desiredPath("n2", ""), "", 403},
		{"AdminReadsDesired", e.admin, "GET", desiredPath("n1", ""), "", 403},
		{"AnonReadsDesired", e.anon, "GET", desiredPath("n1", ""), "", 401},
		{"NodeReportsForOther", n1, "PUT", statusPath("n2"), status, 403},
		{"AnonReports", e.anon, "PUT", statusPath("n2"), status, 401},
		{"NodeListsPods", n1, "GET", api.PathPods, "", 403},
		{"NodeSyncs", n1, "POST", api.PathSync, "", 403},
		{"AnonListsNodes", e.anon, "GET", api.PathNodes, "", 401},
		{"AdminListsNodes", e.admin, "GET", api.PathNodes, "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.client, tt.method, tt.path, tt.body)
			if tt.want >= 400 {
				wantError(t, r, tt.want)
			} else if r.status != tt.want {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, tt.want)
			}
		})
	}
	t.Run("ForeignCertificate", func(t *testing.T) {
		other, err := pki.LoadOrCreate(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		c, k := other.AdminPEM()
		if r, err := e.try(e.client(keyPair(t, c, k)), "GET", api.PathNodes, ""); err == nil {
			t.Fatalf("a certificate from another CA got status %d; the handshake must fail", r.status)
		}
	})
}

func TestStatus(t *testing.T) {
	big := `{"node":"n1","commit":"` + strings.Repeat("a", 5000) + `"}`
	tests := []struct {
		name      string
		body      string
		sinkErr   error
		want      int
		delivered bool
	}{
		{"OK", `{"apiVersion":"moor.dev/v1","kind":"NodeStatus","node":"n1","commit":"abc","pods":[]}`, nil, 204, true},
		{"OmittedKind", `{"node":"n1"}`, nil, 204, true},
		{"OtherNode", `{"node":"n2"}`, nil, 403, false},
		{"NoNode", `{"commit":"abc"}`, nil, 400, false},
		{"UnknownField", `{"node":"n1","color":"blue"}`, nil, 400, false},
		{"WrongKind", `{"kind":"NodeDesired","node":"n1"}`, nil, 400, false},
		{"TrailingData", `{"node":"n1"} {"node":"n1"}`, nil, 400, false},
		{"Empty", ``, nil, 400, false},
		{"TooLarge", big, nil, 413, false},
		{"NotJoined", `{"node":"n1"}`, fmt.Errorf("node n1 has not joined: %w", errdefs.ErrNotFound), 404, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, time.Second)
			e.fake.mu.Lock()
			e.fake.statusErr = tt.sinkErr
			e.fake.mu.Unlock()
			r := e.do(e.nodeClient("n1"), "PUT", statusPath("n1"), tt.body, "Content-Type", "application/json")
			if tt.want >= 400 {
				wantError(t, r, tt.want)
			} else if r.status != tt.want {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, tt.want)
			}
			e.fake.mu.Lock()
			defer e.fake.mu.Unlock()
			if got := len(e.fake.statuses) == 1 && e.fake.statuses[0].Node == "n1"; got != tt.delivered {
				t.Fatalf("delivered %v, want %v", e.fake.statuses, tt.delivered)
			}
		})
	}
}

func TestJoin(t *testing.T) {
	e := newEnv(t, time.Second)
	csr, key, err := pki.NewCSR("n1")
	if err != nil {
		t.Fatal(err)
	}
	req := func(secret, node string) string {
		b, _ := json.Marshal(api.JoinRequest{Node: node, Secret: secret, CSR: string(csr)})
		return string(b)
	}
	secret := e.auth.Token().Secret

	t.Run("HappyPath", func(t *testing.T) {
		r := e.do(e.anon, "POST", api.PathJoin, req(secret, "n1"))
		if r.status != 200 {
			t.Fatalf("status %d (%s), want 200", r.status, r.body)
		}
		var resp api.JoinResponse
		if err := json.Unmarshal([]byte(r.body), &resp); err != nil {
			t.Fatal(err)
		}
		// The issued certificate works for the node's own endpoints.
		n1 := e.client(keyPair(t, []byte(resp.Certificate), key))
		e.hub.Set("n1", []byte(`{}`), "sha256:x")
		if r := e.do(n1, "GET", desiredPath("n1", ""), ""); r.status != 200 {
			t.Fatalf("desired with the joined certificate: status %d (%s)", r.status, r.body)
		}
	})
	tests := []struct {
		name    string
		body    string
		joinErr error
		want    int
	}{
		{"WrongSecret", req("wrong-secret-wrong-secret-wrong", "n1"), nil, 403},
		{"CSRForOtherNode", req(secret, "n2"), nil, 400},
		{"UnknownField", `{"node":"n1","extra":true}`, nil, 400},
		{"NotJSON", `node=n1`, nil, 400},
		{"TooLarge", `{"node":"` + strings.Repeat("n", 5000) + `"}`, nil, 413},
		{"Unavailable", req(secret, "n1"), fmt.Errorf("store: %w", errdefs.ErrUnavailable), 503},
		{"Unclassified", req(secret, "n1"), errors.New("disk on fire"), 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.fake.mu.Lock()
			e.fake.joinErr = tt.joinErr
			e.fake.mu.Unlock()
			wantError(t, e.do(e.anon, "POST", api.PathJoin, tt.body), tt.want)
		})
	}
}

func TestAdmin(t *testing.T) {
	e := newEnv(t, time.Second)
	tests := []struct {
		name    string
		method  string
		path    string
		syncErr error
		want    int
		body    string
	}{
		{"Sync", "POST", api.PathSync, nil, 200, `{"commit":"abc","state":"Accepted","changed":true}`},
		{"SyncUnavailable", "POST", api.PathSync, fmt.Errorf("fetch: %w", errdefs.ErrUnavailable), 503, ""},
		{"EmptyPodsIsArray", "GET", api.PathPods, nil, 200, `[]`},
		{"EmptyDeploymentsIsArray", "GET", api.PathDeployments, nil, 200, `[]`},
		{"EmptyServicesIsArray", "GET", api.PathServices, nil, 200, `[]`},
		{"Nodes", "GET", api.PathNodes, nil, 200, `[{"name":"n1","joinedAt":"0001-01-01T00:00:00Z","lastSeen":"0001-01-01T00:00:00Z","commit":"","pods":0,"ready":false}]`},
		{"CommitsFail", "GET", api.PathCommits, nil, 500, ""},
		{"WrongMethod", "DELETE", api.PathPods, nil, 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.fake.mu.Lock()
			e.fake.syncErr = tt.syncErr
			e.fake.mu.Unlock()
			r := e.do(e.admin, tt.method, tt.path, "")
			if tt.want >= 400 {
				if r.status != tt.want {
					t.Fatalf("status %d (%s), want %d", r.status, r.body, tt.want)
				}
				return
			}
			if r.status != tt.want || strings.TrimSpace(r.body) != tt.body || r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("got %d %q (%s), want %d %q", r.status, r.body, r.header.Get("Content-Type"), tt.want, tt.body)
			}
		})
	}
}

func TestServeShutdownEndsLongPolls(t *testing.T) {
	e := newEnv(t, time.Minute)
	n1 := e.nodeClient("n1")
	got := make(chan int, 1)
	go func() {
		r, err := e.try(n1, "GET", desiredPath("n1", "?wait=1m"), "")
		if err != nil {
			got <- -1
			return
		}
		got <- r.status
	}()
	time.Sleep(200 * time.Millisecond) // let the poll start waiting
	start := time.Now()
	e.stop()
	select {
	case status := <-got:
		if status != http.StatusNotModified {
			t.Errorf("in-flight long-poll got %d, want 304 on shutdown", status)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("long-poll still waiting 5s after shutdown began")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v", d)
	}
}

func TestConfigValidate(t *testing.T) {
	f := &fakeController{}
	full := func() Config { return Config{Hub: NewHub(), Joiner: f, Status: f, Admin: f} }
	tests := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"Full", func(*Config) {}, true},
		{"NoHub", func(c *Config) { c.Hub = nil }, false},
		{"NoJoiner", func(c *Config) { c.Joiner = nil }, false},
		{"NoStatus", func(c *Config) { c.Status = nil }, false},
		{"NoAdmin", func(c *Config) { c.Admin = nil }, false},
		{"NegativeWait", func(c *Config) { c.MaxWait = -time.Second }, false},
		{"NegativeBody", func(c *Config) { c.MaxBody = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := full()
			tt.mutate(&c)
			err := c.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && (c.MaxWait != DefaultMaxWait || c.MaxBody != DefaultMaxBody || c.Log == nil) {
				t.Fatalf("defaults not filled in: %+v", c)
			}
		})
	}
}

func TestHTTPStatus(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{fmt.Errorf("x: %w", errdefs.ErrInvalidArgument), 400},
		{fmt.Errorf("x: %w", errdefs.ErrUnauthenticated), 401},
		{fmt.Errorf("x: %w", errdefs.ErrPermissionDenied), 403},
		{fmt.Errorf("x: %w", errdefs.ErrNotFound), 404},
		{fmt.Errorf("x: %w", errdefs.ErrAlreadyExists), 409},
		{fmt.Errorf("x: %w", errdefs.ErrConflict), 409},
		{fmt.Errorf("x: %w", errdefs.ErrResourceExhausted), 429},
		{fmt.Errorf("x: %w", errdefs.ErrUnavailable), 503},
		{errors.Join(errdefs.ErrInvalidArgument, errors.New("bad csr")), 400},
		{fmt.Errorf("x: %w", &http.MaxBytesError{Limit: 1}), 413},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), 504},
		{errors.New("plain"), 500},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			if got := httpStatus(tt.err); got != tt.want {
				t.Fatalf("httpStatus = %d, want %d", got, tt.want)
			}
		})
	}
}
