package nodeagent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moor-dev/moor/api"
)

// Credential files in DataDir.
const (
	certFileName = "node.crt"
	keyFileName  = "node.key"
	caFileName   = "ca.crt"
)

const (
	// requestTimeout bounds join and report requests; a pull may take
	// PollWait longer.
	requestTimeout = 30 * time.Second
	// maxDesiredBytes bounds the desired document the agent accepts.
	maxDesiredBytes = 64 << 20
)

// errNoCredentials means DataDir holds no credentials and no token was given.
var errNoCredentials = errors.New("no node credentials")

// client talks to the server over mTLS as the node.
type client struct {
	base string // https://host:port, no trailing slash
	node string
	hc   *http.Client
}

// credentials is the node's key pair and the CA, PEM encoded.
type credentials struct {
	cert, key, ca []byte
}

// loadCredentials reads the stored credentials; (nil, nil) when none are
// stored. A partial set counts as none (a join was interrupted).
func loadCredentials(dir string) (*credentials, error) {
	var c credentials
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{certFileName, &c.cert}, {keyFileName, &c.key}, {caFileName, &c.ca}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read node credentials: %w", err)
		}
		*f.dst = b
	}
	return &c, nil
}

// save writes the credentials to dir, readable only by the agent.
func (c *credentials) save(dir string) error {
	for _, f := range []struct {
		name string
		b    []byte
	}{{keyFileName, c.key}, {certFileName, c.cert}, {caFileName, c.ca}} {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.b, 0o600); err != nil {
			return fmt.Errorf("store node credentials: %w", err)
		}
	}
	return nil
}

// newClient returns an mTLS client that trusts only the stored CA.
func newClient(server, node string, creds *credentials) (*client, error) {
	pair, err := tls.X509KeyPair(creds.cert, creds.key)
	if err != nil {
		return nil, fmt.Errorf("node credentials (%s, %s): %w; delete them to join again", certFileName, keyFileName, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("node certificate %s: %w", certFileName, err)
	}
	if want := api.NodeCNPrefix + node; leaf.Subject.CommonName != want {
		return nil, fmt.Errorf("node certificate %s is for %q, not %q; use the name the node joined with or delete the credentials to join again",
			certFileName, leaf.Subject.CommonName, want)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(creds.ca) {
		return nil, fmt.Errorf("CA certificate %s holds no PEM certificate; delete the credentials to join again", caFileName)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS12,
	}
	return &client{base: strings.TrimRight(server, "/"), node: node, hc: &http.Client{Transport: tr}}, nil
}

// join obtains node credentials with the join token: it sends a CSR to the
// server, which it trusts only if it proves to hold the CA the token pins,
// checks the answer and stores it in cfg.DataDir.
func join(ctx context.Context, cfg *Config) (*credentials, error) {
	if cfg.Token == "" {
		return nil, fmt.Errorf("%w in %s and no join token given: pass the token from the server's data dir", errNoCredentials, cfg.DataDir)
	}
	tok, err := api.ParseToken(cfg.Token)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("server URL: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate node key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: api.NodeCNPrefix + cfg.Name, Organization: []string{api.GroupNodes}},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate request: %w", err)
	}
	req := api.JoinRequest{
		Node:    cfg.Name,
		Secret:  tok.Secret,
		CSR:     string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})),
		Labels:  cfg.Labels,
		Address: cfg.NodeIP,
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = pinnedTLSConfig(tok.CAHash, u.Hostname())
	hc := &http.Client{Transport: tr}
	defer hc.CloseIdleConnections()
	var resp api.JoinResponse
	if err := doJSON(ctx, hc, http.MethodPost, strings.TrimRight(cfg.Server, "/")+api.PathJoin, &req, &resp); err != nil {
		return nil, fmt.Errorf("join %s as %q: %w", cfg.Server, cfg.Name, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode node key: %w", err)
	}
	creds := &credentials{
		cert: []byte(resp.Certificate),
		key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		ca:   []byte(resp.CA),
	}
	if err := checkJoinResponse(creds, tok.CAHash, cfg.Name, &key.PublicKey); err != nil {
		return nil, fmt.Errorf("join %s: %w", cfg.Server, err)
	}
	if err := creds.save(cfg.DataDir); err != nil {
		return nil, err
	}
	return creds, nil
}

// pinnedTLSConfig trusts only a server that presents, in its chain, the CA
// whose hash the join token carries, and a leaf for host signed by it.
//
// InsecureSkipVerify only turns off Go's default verification, which checks
// the chain against the system roots: at join time the agent does not have
// the cluster's private CA yet, so that check could never pass.
// VerifyPeerCertificate replaces it with a stricter one, pinned to the
// token's CA hash (as kubeadm's discovery does), and still checks signatures,
// validity, key usage and the host name. No session cache is set, so every
// handshake runs the check (resumed sessions would skip it).
func pinnedTLSConfig(caHash, host string) *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // replaced by VerifyPeerCertificate, see above
		MinVersion:         tls.VersionTLS12,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyPinned(raw, caHash, host, time.Now())
		},
	}
}

// verifyPinned checks a presented chain (leaf first) against the pinned CA.
func verifyPinned(raw [][]byte, caHash, host string, now time.Time) error {
	if len(raw) == 0 {
		return errors.New("server presented no certificate")
	}
	certs := make([]*x509.Certificate, 0, len(raw))
	for _, der := range raw {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("server certificate: %w", err)
		}
		certs = append(certs, c)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	found := false
	for _, c := range certs {
		if api.CAHash(c.Raw) == caHash {
			roots.AddCert(c)
			found = true
		} else {
			inter.AddCert(c)
		}
	}
	if !found {
		return fmt.Errorf("server's certificate chain does not include the CA pinned by the join token (sha256 %s): is the token from this server?", caHash)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		DNSName:       host,
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("server certificate does not verify against the pinned CA: %w", err)
	}
	return nil
}

// checkJoinResponse checks that the server returned the pinned CA and a
// client certificate for our key, name and the CA.
func checkJoinResponse(creds *credentials, caHash, node string, pub *ecdsa.PublicKey) error {
	caBlock, _ := pem.Decode(creds.ca)
	if caBlock == nil {
		return errors.New("response CA is not PEM")
	}
	ca, err := x509.ParseCertificate(caBlock.Bytes)
	if err != nil {
		return fmt.Errorf("response CA: %w", err)
	}
	if api.CAHash(ca.Raw) != caHash {
		return fmt.Errorf("response CA has hash %s, not the token's %s", api.CAHash(ca.Raw), caHash)
	}
	block, _ := pem.Decode(creds.cert)
	if block == nil {
		return errors.New("response certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("response certificate: %w", err)
	}
	if !pub.Equal(cert.PublicKey) {
		return errors.New("response certificate is not for the key the agent sent")
	}
	if want := api.NodeCNPrefix + node; cert.Subject.CommonName != want {
		return fmt.Errorf("response certificate is for %q, want %q", cert.Subject.CommonName, want)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("response certificate does not verify against the CA: %w", err)
	}
	return nil
}

// pullResult is the answer to a desired-state poll.
type pullResult struct {
	// Changed is false when the server answered 304 Not Modified.
	Changed bool
	Doc     *api.NodeDesired
	Body    []byte
	Digest  string
}

// pullDesired long-polls the node's desired state. With since set, the
// server answers 304 after up to wait when nothing changed. A 200's body
// must hash to its ETag.
func (c *client) pullDesired(ctx context.Context, since string, wait time.Duration) (pullResult, error) {
	ctx, cancel := context.WithTimeout(ctx, wait+requestTimeout)
	defer cancel()
	q := url.Values{"wait": {wait.String()}}
	if since != "" {
		q.Set("since", since)
	}
	u := c.base + c.path(api.PathDesired) + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return pullResult{}, fmt.Errorf("pull desired state: %w", err)
	}
	if since != "" {
		req.Header.Set("If-None-Match", `"`+since+`"`)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return pullResult{}, fmt.Errorf("pull desired state: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return pullResult{Digest: since}, nil
	case http.StatusOK:
	default:
		return pullResult{}, fmt.Errorf("pull desired state: %w", httpError(resp))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDesiredBytes+1))
	if err != nil {
		return pullResult{}, fmt.Errorf("pull desired state: read body: %w", err)
	}
	if len(body) > maxDesiredBytes {
		return pullResult{}, fmt.Errorf("pull desired state: document exceeds %d bytes", maxDesiredBytes)
	}
	etag := parseETag(resp.Header.Get("ETag"))
	if etag == "" {
		return pullResult{}, errors.New("pull desired state: the server sent no ETag, so the document cannot be verified")
	}
	doc, err := api.DecodeNodeDesired(body, etag)
	if err != nil {
		return pullResult{}, fmt.Errorf("pull desired state: %w", err)
	}
	if doc.Node != c.node {
		return pullResult{}, fmt.Errorf("pull desired state: document is for node %q, not %q", doc.Node, c.node)
	}
	return pullResult{Changed: true, Doc: doc, Body: body, Digest: etag}, nil
}

// report sends the node's status.
func (c *client) report(ctx context.Context, st *api.NodeStatus) error {
	if err := doJSON(ctx, c.hc, http.MethodPut, c.base+c.path(api.PathNodeStatus), st, nil); err != nil {
		return fmt.Errorf("report status: %w", err)
	}
	return nil
}

// path fills the node name into an api path.
func (c *client) path(p string) string {
	return strings.Replace(p, "{name}", url.PathEscape(c.node), 1)
}

// parseETag strips the weak marker and quotes of an ETag header.
func parseETag(s string) string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	return strings.Trim(s, `"`)
}

// doJSON sends in as JSON and decodes a 2xx answer into out (when not nil).
func doJSON(ctx context.Context, hc *http.Client, method, u string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return httpError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// statusError is a non-2xx answer.
type statusError struct {
	Code int
	Body string
}

func (e *statusError) Error() string {
	hint := ""
	switch e.Code {
	case http.StatusUnauthorized, http.StatusForbidden:
		hint = " (the server rejected the node's credentials: check the join token, or delete the credentials in the data dir to join again)"
	}
	if e.Body == "" {
		return fmt.Sprintf("server answered %d %s%s", e.Code, http.StatusText(e.Code), hint)
	}
	return fmt.Sprintf("server answered %d %s: %s%s", e.Code, http.StatusText(e.Code), e.Body, hint)
}

// httpError reads the start of an error answer.
func httpError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return &statusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(b))}
}
