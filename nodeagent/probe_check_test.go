package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// testProbeServer answers HTTP probes by path.
func testProbeServer(t *testing.T, tls bool) (port int) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			io.WriteString(w, "fine")
		case "/fail":
			http.Error(w, "database down", http.StatusServiceUnavailable)
		case "/redirect-local":
			http.Redirect(w, r, "/fail", http.StatusFound)
		case "/redirect-away":
			http.Redirect(w, r, "http://192.0.2.1/elsewhere", http.StatusFound)
		case "/slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		case "/echo":
			if r.Header.Get("X-Probe") == "yes" && r.Host == "example.com" && r.URL.RawQuery == "q=1" &&
				strings.HasPrefix(r.Header.Get("User-Agent"), "kube-probe/") {
				return
			}
			http.Error(w, fmt.Sprintf("headers %v host %q query %q", r.Header, r.Host, r.URL.RawQuery), http.StatusBadRequest)
		default:
			http.NotFound(w, r)
		}
	})
	srv := httptest.NewUnstartedServer(mux)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ = strconv.Atoi(p)
	return port
}

type probeExecFunc func(ctx context.Context, id string, req ExecRequest) (int, error)

func (f probeExecFunc) Exec(ctx context.Context, id string, req ExecRequest) (int, error) {
	return f(ctx, id, req)
}

func TestChecker(t *testing.T) {
	httpPort := testProbeServer(t, false)
	httpsPort := testProbeServer(t, true)
	closed := func() int { // a port nothing listens on
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}()
	localhost := netip.MustParseAddr("127.0.0.1")
	container := &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(httpPort)}}}
	get := func(path string, port intstr.IntOrString, mod ...func(*corev1.HTTPGetAction)) *corev1.Probe {
		g := &corev1.HTTPGetAction{Path: path, Port: port}
		for _, m := range mod {
			m(g)
		}
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: g}}
	}
	tcp := func(port int) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(port)}}}
	}
	execProbe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check", "-v"}}}}
	execs := map[string]probeExecFunc{
		"ok": func(context.Context, string, ExecRequest) (int, error) { return 0, nil },
		"exit 2": func(_ context.Context, _ string, req ExecRequest) (int, error) {
			io.WriteString(req.Stdout, "not ")
			io.WriteString(req.Stderr, "healthy\n")
			return 2, nil
		},
		"does not start": func(context.Context, string, ExecRequest) (int, error) {
			return -1, errors.New(`exec: "check": executable file not found in $PATH`)
		},
		"hangs": func(ctx context.Context, _ string, _ ExecRequest) (int, error) {
			<-ctx.Done()
			return -1, ctx.Err()
		},
	}
	tests := []struct {
		name      string
		probe     *corev1.Probe
		exec      string
		host      netip.Addr
		want      probeOutcome
		wantMsg   string // substring
		wantFast  bool
		timeoutMs int
	}{
		{name: "http 200", probe: get("/ok", intstr.FromInt(httpPort)), want: probeSuccess},
		{name: "http named port", probe: get("/ok", intstr.FromString("http")), want: probeSuccess},
		{name: "http 503", probe: get("/fail", intstr.FromInt(httpPort)), want: probeFailure, wantMsg: "HTTP probe failed with statuscode: 503: database down"},
		{name: "http 404", probe: get("/missing", intstr.FromInt(httpPort)), want: probeFailure, wantMsg: "statuscode: 404"},
		{name: "http redirect on the same host is followed", probe: get("/redirect-local", intstr.FromInt(httpPort)), want: probeFailure, wantMsg: "statuscode: 503"},
		{name: "http redirect elsewhere passes", probe: get("/redirect-away", intstr.FromInt(httpPort)), want: probeSuccess},
		{name: "http headers, Host and query", probe: get("/echo?q=1", intstr.FromInt(httpPort), func(g *corev1.HTTPGetAction) {
			g.HTTPHeaders = []corev1.HTTPHeader{{Name: "X-Probe", Value: "yes"}, {Name: "host", Value: "example.com"}}
		}), want: probeSuccess},
		{name: "https without verification", probe: get("/ok", intstr.FromInt(httpsPort), func(g *corev1.HTTPGetAction) { g.Scheme = corev1.URISchemeHTTPS }), want: probeSuccess},
		{name: "http explicit host", probe: get("/ok", intstr.FromInt(httpPort), func(g *corev1.HTTPGetAction) { g.Host = "127.0.0.1" }), host: netip.Addr{}, want: probeSuccess},
		{name: "http timeout", probe: get("/slow", intstr.FromInt(httpPort)), want: probeFailure, wantMsg: "timed out after 200ms", timeoutMs: 200},
		{name: "http refused", probe: get("/ok", intstr.FromInt(closed)), want: probeFailure, wantMsg: "connection refused"},
		{name: "http no pod IP yet", probe: get("/ok", intstr.FromInt(httpPort)), host: netip.Addr{}, want: probeError, wantMsg: "no IP address yet"},
		{name: "http unknown named port", probe: get("/ok", intstr.FromString("admin")), want: probeError, wantMsg: `port "admin" names no port of container "app"`},
		{name: "tcp open", probe: tcp(httpPort), want: probeSuccess},
		{name: "tcp closed", probe: tcp(closed), want: probeFailure, wantMsg: "connection refused"},
		{name: "exec 0", probe: execProbe, exec: "ok", want: probeSuccess},
		{name: "exec non-zero", probe: execProbe, exec: "exit 2", want: probeFailure, wantMsg: `command "check -v" exited with code 2: not healthy`},
		{name: "exec does not start", probe: execProbe, exec: "does not start", want: probeError, wantMsg: "executable file not found"},
		{name: "exec timeout", probe: execProbe, exec: "hangs", want: probeFailure, wantMsg: "timed out after 100ms", timeoutMs: 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host := localhost
			if strings.Contains(tc.name, "no pod IP") || strings.Contains(tc.name, "explicit host") {
				host = tc.host
			}
			timeout := 5 * time.Second
			if tc.timeoutMs > 0 {
				timeout = time.Duration(tc.timeoutMs) * time.Millisecond
			}
			c := newProbeChecker(execs[tc.exec])
			o, msg := c.check(context.Background(), probeCheck{ID: "ctr", Container: container, Probe: tc.probe, Timeout: timeout, Host: host})
			if o != tc.want || !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("check = %s %q, want %s containing %q", o, msg, tc.want, tc.wantMsg)
			}
		})
	}
}

// TestCheckerOutputLimit: a chatty exec probe keeps only the first 10 KiB.
func TestCheckerOutputLimit(t *testing.T) {
	c := newProbeChecker(probeExecFunc(func(_ context.Context, _ string, req ExecRequest) (int, error) {
		big := strings.Repeat("x", 4096)
		for range 10 {
			io.WriteString(req.Stdout, big)
		}
		return 1, nil
	}))
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"x"}}}}
	_, msg := c.check(context.Background(), probeCheck{Container: &corev1.Container{}, Probe: probe, Timeout: time.Second})
	_, out, _ := strings.Cut(msg, ": ")
	if len(out) != maxProbeOutput {
		t.Errorf("message keeps %d bytes of output, want %d", len(out), maxProbeOutput)
	}
}
