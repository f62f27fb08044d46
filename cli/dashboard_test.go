package cli

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/moor-dev/moor/api"
)

var testTarget = dashboardTarget{Context: "test", Server: "https://10.0.0.1:6443"}

func newTestDashboard(t *testing.T, r viewReader) http.Handler {
	t.Helper()
	h, err := newDashboardHandler(dashboardHandlerConfig{Reader: r, Target: testTarget, Refresh: 2 * time.Second,
		Timeout: 5 * time.Second, Now: func() time.Time { return testNow }, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// get requests path as a browser on the same machine does.
func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Host = "127.0.0.1:8001"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestDashboardGolden(t *testing.T) {
	h := newTestDashboard(t, describeFixtures())
	cases := []struct{ name, path string }{
		{"overview", "/"},
		{"deployments", "/deployments"},
		{"services", "/services"},
		{"jobs", "/jobs"},
		{"secrets", "/secrets"},
		{"commits", "/commits"},
		{"pod-crashloop", "/pods/default/web-7d9f-fghij"},
		{"pod-detail", "/pods/default/web-5d8f9c7b6a-abcde"},
		{"pod-init", "/pods/default/api-0"},
		{"pod-unplaced", "/pods/shop/big-0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(t, h, tc.path)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d:\n%s", rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			checkGolden(t, "dashboard-"+tc.name+".html", rec.Body.Bytes())
		})
	}
}

// TestDashboardOverview checks the facts the overview exists for, beyond
// the golden file: which node is behind and which pods run where.
func TestDashboardOverview(t *testing.T) {
	d := overviewPage(fixtures().commits, fixtures().nodes, fixtures().pods, testNow)
	if d.Deployed == nil || d.Deployed.SHA != shaDeployed || !d.Deployed.IsConverged || d.Deployed.PushToRunning != "1.2s" {
		t.Errorf("deployed = %+v", d.Deployed)
	}
	if d.Latest == nil || d.Latest.SHA != shaHead || d.Latest.State != api.CommitRejected || len(d.Latest.Errors) != 2 {
		t.Errorf("latest = %+v", d.Latest)
	}
	var behind []string
	for _, n := range d.Nodes {
		if n.Behind {
			behind = append(behind, n.Name)
		}
	}
	if got := strings.Join(behind, ","); got != "node-3,node-4" || d.Behind != 2 {
		t.Errorf("behind = %s (%d), want node-3,node-4", got, d.Behind)
	}
	where := map[string][]string{}
	for _, g := range d.Groups {
		for _, p := range g.Pods {
			where[g.Node] = append(where[g.Node], p.Name)
		}
	}
	if got := strings.Join(where["node-1"], ","); got != "cache-0,migrate,old-web,web-7d9f-abcde,dns-0" {
		t.Errorf("node-1 runs %s", got)
	}
	if got := strings.Join(where["node-3"], ","); got != "unreported" {
		t.Errorf("node-3 runs %s", got)
	}
	if d.Pods != 8 || len(d.Groups) != 4 || d.Groups[3].Node != "node-4" || len(d.Groups[3].Pods) != 0 {
		t.Errorf("groups = %+v", d.Groups)
	}
}

func TestDashboardServerErrorBanner(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		want   []string
	}{
		{"api-error", &APIError{StatusCode: http.StatusForbidden, Message: "client certificate is not in group moor:admins <script>"},
			http.StatusBadGateway, []string{"Error from server (Forbidden)", "client certificate is not in group moor:admins &lt;script&gt;"}},
		{"unreachable", errors.Join(errors.New("GET https://10.0.0.1:6443/v1/pods: dial tcp: connection refused"), syscall.ECONNREFUSED),
			http.StatusBadGateway, []string{"Cannot reach the moor server", "connection refused"}},
		{"timeout", context.DeadlineExceeded, http.StatusGatewayTimeout, []string{"did not answer in time", "--request-timeout"}},
	}
	for _, tc := range cases {
		for _, path := range []string{"/", "/deployments", "/services", "/jobs", "/secrets", "/commits", "/pods/default/web"} {
			rec := get(t, newTestDashboard(t, &fakeReader{err: tc.err}), path)
			body := rec.Body.String()
			if rec.Code != tc.status {
				t.Errorf("%s %s: status %d, want %d", tc.name, path, rec.Code, tc.status)
			}
			if !strings.Contains(body, `<div class="banner" role="alert">`) {
				t.Errorf("%s %s: no banner:\n%s", tc.name, path, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("%s %s: body lacks %q:\n%s", tc.name, path, w, body)
				}
			}
			if strings.Contains(body, "<script") {
				t.Errorf("%s %s: unescaped markup:\n%s", tc.name, path, body)
			}
		}
	}
	rec := get(t, newTestDashboard(t, &fakeReader{err: &APIError{StatusCode: http.StatusServiceUnavailable, Message: "no repository fetched yet"}}), "/")
	checkGolden(t, "dashboard-error.html", rec.Body.Bytes())
}

func TestDashboardNotFound(t *testing.T) {
	h := newTestDashboard(t, fixtures())
	for path, want := range map[string]string{
		"/pods/default/gone": `pods &#34;default/gone&#34; not found`,
		"/nodes":             "The dashboard has no page /nodes.",
	} {
		rec := get(t, h, path)
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s: status %d, want 404 with %q:\n%s", path, rec.Code, want, rec.Body)
		}
	}
}

// TestDashboardGuards: only GET/HEAD, only loopback Host names (against
// DNS rebinding), and headers that forbid scripts and framing.
func TestDashboardGuards(t *testing.T) {
	h := newTestDashboard(t, fixtures())
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x"))
	req.Host = "localhost:8001"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", rec.Code)
	}
	for host, want := range map[string]int{"evil.example:8001": 403, "10.0.0.5:8001": 403, "localhost:8001": 200, "[::1]:8001": 200, "127.0.0.1": 200} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %s: status %d, want %d", host, rec.Code, want)
		}
	}
	rec = get(t, h, "/")
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q", csp)
	}
	if rec.Header().Get("X-Frame-Options") != "DENY" {
		t.Error("no X-Frame-Options: DENY")
	}
	css := get(t, h, "/static/style.css")
	if css.Code != 200 || css.Header().Get("Content-Type") != "text/css; charset=utf-8" || !strings.Contains(css.Body.String(), ".banner") {
		t.Errorf("style.css: %d %q", css.Code, css.Header().Get("Content-Type"))
	}
	for _, page := range []string{"/", "/deployments", "/services", "/jobs", "/secrets", "/commits", "/pods/default/web-7d9f-fghij"} {
		body := get(t, h, page).Body.String()
		if regexp.MustCompile(`(?i)<script|https?://(?:[a-z]|\d+\.)[^"<]*\.(?:css|js|woff)`).MatchString(body) {
			t.Errorf("%s loads a script or an external asset", page)
		}
	}
}

func TestCheckLoopbackListen(t *testing.T) {
	for listen, ok := range map[string]bool{
		"127.0.0.1:8001": true, "127.0.0.2:80": true, "[::1]:0": true, "localhost:8001": true, "[::ffff:127.0.0.1]:8001": true,
		"0.0.0.0:8001": false, ":8001": false, "[::]:8001": false, "10.0.0.1:8001": false, "example.com:8001": false,
		"127.0.0.1": false, "127.0.0.1:": false,
	} {
		if err := checkLoopbackListen(listen); (err == nil) != ok {
			t.Errorf("checkLoopbackListen(%q) = %v, want ok=%v", listen, err, ok)
		}
	}
}

// TestDashboardRefusesNonLoopback: the refusal comes before the config is
// even read, with a message that says what to do instead.
func TestDashboardRefusesNonLoopback(t *testing.T) {
	connected := false
	cmd := func(s Streams) *cobra.Command {
		return newDashboardCommand(s, func(Options) (viewReader, dashboardTarget, error) {
			connected = true
			return fixtures(), testTarget, nil
		})
	}
	for _, listen := range []string{"0.0.0.0:8001", ":8001", "192.168.1.10:8001"} {
		got, err := runRoot(t, cmd, "dashboard", "--listen", listen)
		if err == nil || !strings.Contains(got, "listens on loopback only") || !strings.Contains(got, "ssh -L") {
			t.Errorf("--listen %s: err %v\n%s", listen, err, got)
		}
	}
	if got, err := runRoot(t, cmd, "dashboard", "--refresh", "500ms"); err == nil || !strings.Contains(got, "at least 1s") {
		t.Errorf("--refresh 500ms: err %v\n%s", err, got)
	}
	if connected {
		t.Error("the command connected despite invalid flags")
	}
}

// TestDashboardCommandServes runs `moor dashboard --listen 127.0.0.1:0`,
// fetches the overview from the address it prints and stops it.
func TestDashboardCommandServes(t *testing.T) {
	pr, pw := io.Pipe()
	root := &cobra.Command{Use: "moor", SilenceUsage: true}
	AddConfigFlags(root)
	root.AddCommand(newDashboardCommand(Streams{In: strings.NewReader(""), Out: pw, ErrOut: io.Discard},
		func(Options) (viewReader, dashboardTarget, error) { return fixtures(), testTarget, nil }))
	root.SetArgs([]string{"dashboard", "--listen", "127.0.0.1:0"})
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx); pw.Close() }()

	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("read banner line: %v (command: %v)", err, <-done)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	m := regexp.MustCompile(`http://127\.0\.0\.1:\d+/`).FindString(line)
	if m == "" {
		t.Fatalf("no URL in %q", line)
	}
	resp, err := http.Get(m)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "What runs where") {
		t.Errorf("GET %s: %d\n%s", m, resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("command returned %v after Ctrl-C", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the dashboard did not stop after its context ended")
	}
}

// TestDashboardNeverShowsSecretValues serves every page from the real
// admin client against a TLS server whose views carry a value wherever
// one could hide: a Secret's data and stringData, a node report field,
// and env vars with literal values beside secret references.
func TestDashboardNeverShowsSecretValues(t *testing.T) {
	p := newTestPKI(t)
	env := `"env":[{"name":"DB_PASSWORD","value":"` + planted + `","valueFrom":{"secretKeyRef":{"name":"db","key":"password"}}},` +
		`{"name":"API_TOKEN","value":"` + planted + `"}],"envFrom":[{"secretRef":{"name":"db"}}],"args":["--token=` + planted + `"]`
	bodies := plantedViews(env)
	bodies[api.PathNodes] = `[{"name":"node-1","commit":"` + shaDeployed + `","pods":1,"ready":true}]`
	bodies[api.PathCommits] = `[{"sha":"` + shaDeployed + `","state":"Accepted","deployed":true,"converged":1,"total":1}]`
	bodies[api.PathServices] = `[]`
	srv := serveBodies(t, p, bodies)
	c, err := NewClient(p.context(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	h := newTestDashboard(t, c)
	for _, page := range []string{"/", "/deployments", "/services", "/jobs", "/secrets", "/commits", "/pods/default/app-0"} {
		rec := get(t, h, page)
		body := rec.Body.String()
		if rec.Code != http.StatusOK {
			t.Errorf("%s: status %d\n%s", page, rec.Code, body)
		}
		for _, leak := range []string{planted, "hunter2", "aHVudGVy"} {
			if strings.Contains(body, leak) {
				t.Errorf("%s holds the secret value %q:\n%s", page, leak, body)
			}
		}
	}
	if body := get(t, h, "/secrets").Body.String(); !strings.Contains(body, "default/db") || !strings.Contains(body, `<td class="mono">password</td>`) {
		t.Errorf("the secrets page lacks the Secret or its key names:\n%s", body)
	}
}
