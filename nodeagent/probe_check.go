package nodeagent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The I/O half of probes: one check of an exec, httpGet or tcpSocket probe,
// as the kubelet makes it.

// maxProbeOutput is how much of a check's output (command output, HTTP
// body) is kept for messages, as in the kubelet.
const maxProbeOutput = 10 << 10

// probeUserAgent is sent by HTTP probes; "kube-probe/" is the prefix
// applications look for to recognise probes.
const probeUserAgent = "kube-probe/moor"

// probeExecer is the part of Runtime the exec check needs.
type probeExecer interface {
	Exec(ctx context.Context, id string, req ExecRequest) (int, error)
}

// probeCheck is one check to make.
type probeCheck struct {
	ID        string // the container
	Container *corev1.Container
	Probe     *corev1.Probe
	Timeout   time.Duration
	// Host is where network probes go when they name no host: the pod's
	// IP, or 127.0.0.1 in host-network mode; invalid when not known yet.
	Host netip.Addr
}

// probeChecker makes probe checks.
type probeChecker struct {
	exec probeExecer
	http *http.Client
}

func newProbeChecker(e probeExecer) *probeChecker {
	return &probeChecker{exec: e, http: newProbeHTTPClient()}
}

// newProbeHTTPClient is the kubelet's probe client: no keep-alives, no
// proxy, no compression, no certificate verification, and redirects
// followed only on the same host (a redirect elsewhere counts as success).
func newProbeHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes check liveness, not identity, as in Kubernetes
			DisableKeepAlives:  true,
			DisableCompression: true,
			Proxy:              nil,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			if req.URL.Hostname() != via[0].URL.Hostname() {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// check makes one check within pc.Timeout and says what it found, with a
// message for failures and errors.
func (c *probeChecker) check(ctx context.Context, pc probeCheck) (probeOutcome, string) {
	if err := ctx.Err(); err != nil {
		return probeError, err.Error()
	}
	cctx, cancel := context.WithTimeout(ctx, pc.Timeout)
	defer cancel()
	h := &pc.Probe.ProbeHandler
	var o probeOutcome
	var msg string
	switch {
	case h.Exec != nil:
		o, msg = c.checkExec(cctx, pc)
	case h.HTTPGet != nil:
		o, msg = c.checkHTTP(cctx, pc)
	case h.TCPSocket != nil:
		o, msg = checkTCPProbe(cctx, pc)
	default:
		return probeError, "the probe has no exec, httpGet or tcpSocket handler"
	}
	if o != probeSuccess && ctx.Err() == nil && errors.Is(cctx.Err(), context.DeadlineExceeded) {
		return probeFailure, fmt.Sprintf("timed out after %s", pc.Timeout)
	}
	return o, msg
}

func (c *probeChecker) checkExec(ctx context.Context, pc probeCheck) (probeOutcome, string) {
	cmd := pc.Probe.Exec.Command
	var out probeOutputBuffer
	code, err := c.exec.Exec(ctx, pc.ID, ExecRequest{Cmd: cmd, Stdout: &out, Stderr: &out})
	if err != nil {
		if ctx.Err() != nil {
			return probeFailure, err.Error()
		}
		return probeError, err.Error()
	}
	if code != 0 {
		msg := fmt.Sprintf("command %q exited with code %d", strings.Join(cmd, " "), code)
		if o := strings.TrimSpace(out.String()); o != "" {
			msg += ": " + o
		}
		return probeFailure, msg
	}
	return probeSuccess, ""
}

func (c *probeChecker) checkHTTP(ctx context.Context, pc probeCheck) (probeOutcome, string) {
	g := pc.Probe.HTTPGet
	addr, err := probeAddr(g.Host, g.Port, pc)
	if err != nil {
		return probeError, err.Error()
	}
	u, err := url.Parse(g.Path)
	if err != nil {
		u = &url.URL{Path: g.Path}
	}
	u.Scheme = strings.ToLower(string(g.Scheme))
	if u.Scheme == "" {
		u.Scheme = "http"
	}
	u.Host = addr
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return probeError, fmt.Sprintf("build request for %s: %v", u, err)
	}
	for _, h := range g.HTTPHeaders {
		if http.CanonicalHeaderKey(h.Name) == "Host" {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", probeUserAgent)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "*/*")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return probeFailure, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxProbeOutput))
	if resp.StatusCode >= http.StatusOK && resp.StatusCode < http.StatusBadRequest {
		return probeSuccess, ""
	}
	msg := fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	if b := strings.TrimSpace(string(body)); b != "" {
		msg += ": " + b
	}
	return probeFailure, msg
}

func checkTCPProbe(ctx context.Context, pc probeCheck) (probeOutcome, string) {
	s := pc.Probe.TCPSocket
	addr, err := probeAddr(s.Host, s.Port, pc)
	if err != nil {
		return probeError, err.Error()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return probeFailure, err.Error()
	}
	conn.Close()
	return probeSuccess, ""
}

// probeAddr is host:port of a network probe: its own host or the pod's,
// and its port number or the number of the container port it names.
func probeAddr(host string, port intstr.IntOrString, pc probeCheck) (string, error) {
	if host == "" {
		if !pc.Host.IsValid() {
			return "", errors.New("the pod has no IP address yet")
		}
		host = pc.Host.String()
	}
	n := port.IntValue()
	if port.Type == intstr.String {
		n = 0
		for _, p := range pc.Container.Ports {
			if p.Name == port.StrVal {
				n = int(p.ContainerPort)
				break
			}
		}
		if n == 0 {
			return "", fmt.Errorf("port %q names no port of container %q", port.StrVal, pc.Container.Name)
		}
	}
	if n < 1 || n > 65535 {
		return "", fmt.Errorf("port %d is out of range", n)
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// probeOutputBuffer keeps the first maxProbeOutput bytes written to it, from
// any number of goroutines.
type probeOutputBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *probeOutputBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := maxProbeOutput - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *probeOutputBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
