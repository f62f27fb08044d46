package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/moor-dev/moor/api"
)

// maxBody bounds how much of a response the client reads.
const maxBody = 64 << 20

// APIError is an error the server answered with: a non-2xx status and the
// message of its {"error": "..."} body.
type APIError struct {
	StatusCode int
	Message    string
}

func (e *APIError) Error() string { return e.Message }

// Reason is the kubectl-style reason of the status ("NotFound",
// "Forbidden", ...).
func (e *APIError) Reason() string {
	switch e.StatusCode {
	case http.StatusBadRequest:
		return "BadRequest"
	case http.StatusUnauthorized:
		return "Unauthorized"
	case http.StatusForbidden:
		return "Forbidden"
	case http.StatusNotFound:
		return "NotFound"
	case http.StatusConflict:
		return "Conflict"
	case http.StatusUnprocessableEntity:
		return "Invalid"
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	case http.StatusGatewayTimeout:
		return "Timeout"
	}
	if e.StatusCode >= 500 {
		return "InternalError"
	}
	return strings.ReplaceAll(http.StatusText(e.StatusCode), " ", "")
}

// Client talks to a moor server's admin API over mutually authenticated
// TLS.
type Client struct {
	base *url.URL
	http *http.Client
}

// NewClient builds a client for a resolved context: it trusts only the
// context's certificate authority and presents the context's client
// certificate.
func NewClient(rc *api.ResolvedContext) (*Client, error) {
	u, err := url.Parse(rc.Cluster.Server)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("context %q: server %q is not a URL like https://host:port", rc.Name, rc.Cluster.Server)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("context %q: server %q must use https", rc.Name, rc.Cluster.Server)
	}
	if len(rc.Cluster.CertificateAuthorityData) == 0 {
		return nil, fmt.Errorf("context %q: cluster has no certificate-authority-data; use the admin.conf `moor server` wrote", rc.Name)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(rc.Cluster.CertificateAuthorityData) {
		return nil, fmt.Errorf("context %q: certificate-authority-data holds no PEM certificate", rc.Name)
	}
	cert, err := tls.X509KeyPair(rc.User.ClientCertificateData, rc.User.ClientKeyData)
	if err != nil {
		return nil, fmt.Errorf("context %q: client-certificate-data and client-key-data: %w", rc.Name, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the admin API is reached directly
	tr.TLSClientConfig = &tls.Config{
		RootCAs:      pool,
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
	return &Client{base: u, http: &http.Client{Transport: tr}}, nil
}

var _ viewReader = (*Client)(nil)

// Pods lists every pod the server knows.
func (c *Client) Pods(ctx context.Context) ([]api.PodView, error) {
	var v []api.PodView
	return v, c.do(ctx, http.MethodGet, api.PathPods, &v)
}

// Deployments lists every deployment.
func (c *Client) Deployments(ctx context.Context) ([]api.DeploymentView, error) {
	var v []api.DeploymentView
	return v, c.do(ctx, http.MethodGet, api.PathDeployments, &v)
}

// Nodes lists every registered node.
func (c *Client) Nodes(ctx context.Context) ([]api.NodeView, error) {
	var v []api.NodeView
	return v, c.do(ctx, http.MethodGet, api.PathNodes, &v)
}

// Commits lists the commits the reconciler has seen.
func (c *Client) Commits(ctx context.Context) ([]api.CommitView, error) {
	var v []api.CommitView
	return v, c.do(ctx, http.MethodGet, api.PathCommits, &v)
}

// Services lists every Service with its allocations and endpoints.
func (c *Client) Services(ctx context.Context) ([]api.ServiceView, error) {
	var v []api.ServiceView
	return v, c.do(ctx, http.MethodGet, api.PathServices, &v)
}

// Sync asks the reconciler to fetch and apply the repository's head now.
func (c *Client) Sync(ctx context.Context) (*api.SyncResponse, error) {
	var v api.SyncResponse
	if err := c.do(ctx, http.MethodPost, api.PathSync, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// do sends a bodiless request and decodes a JSON answer into out.
func (c *Client) do(ctx context.Context, method, path string, out any) error {
	u := c.base.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w%s", method, u, err, connectHint(err, c.base.Host))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, u, err)
	}
	if err := ctx.Err(); err != nil {
		// The answer raced the deadline; a cut-off body is not an answer.
		return fmt.Errorf("%s %s: %w%s", method, u, err, connectHint(err, c.base.Host))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, u, err)
	}
	return nil
}

// decodeError turns an error answer into an *APIError, using the body's
// {"error": "..."} message, else its text, else the status text.
func decodeError(status int, body []byte) *APIError {
	var e struct {
		Error string `json:"error"`
	}
	msg := ""
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
	} else if t := strings.TrimSpace(string(bytes.ToValidUTF8(body, nil))); t != "" && !strings.HasPrefix(t, "{") {
		if len(t) > 512 {
			t = t[:512] + "..."
		}
		msg = t
	}
	if msg == "" {
		msg = fmt.Sprintf("the server answered %d %s", status, http.StatusText(status))
	}
	return &APIError{StatusCode: status, Message: msg}
}

// connectHint adds what the user should check for common transport
// failures.
func connectHint(err error, host string) string {
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf(" (is `moor server` running and listening on %s?)", host)
	case errors.As(err, &unknownCA):
		return " (the server's certificate is not signed by the context's certificate-authority-data; is the config for this server?)"
	case errors.As(err, &hostErr):
		return " (the server's certificate does not name this host; use the server address from admin.conf)"
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf(" (no answer in time; raise --%s)", flagTimeout)
	}
	return ""
}
