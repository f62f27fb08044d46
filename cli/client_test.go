package cli

import (
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
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moor-dev/moor/api"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and an admin
// client certificate, all minted per test.
type testPKI struct {
	caPEM             []byte
	pool              *x509.CertPool
	serverCert        tls.Certificate
	clientPEM, keyPEM []byte
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, caCert, caPEM := mintCert(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "moor test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	srvKey, _, srvPEM := mintCert(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "moor server"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}, caCert, caKey)
	cliKey, _, cliPEM := mintCert(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "admin", Organization: []string{api.GroupAdmins}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}, caCert, caKey)
	serverCert, err := tls.X509KeyPair(srvPEM, keyPEM(t, srvKey))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &testPKI{caPEM: caPEM, pool: pool, serverCert: serverCert, clientPEM: cliPEM, keyPEM: keyPEM(t, cliKey)}
}

var serial int64

// mintCert signs tmpl with parent (self-signed when parent is nil).
func mintCert(t *testing.T, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, *x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyPEM(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// startServer serves h over TLS, requiring a client certificate from the
// test CA, the way the moor server's admin API does.
func startServer(t *testing.T, p *testPKI, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{p.serverCert},
		ClientCAs:    p.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // rejected handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// adminConfigFile writes an admin config for server, as `moor server`
// writes admin.conf, and returns its path.
func (p *testPKI) adminConfigFile(t *testing.T, server string) string {
	t.Helper()
	cfg, err := api.NewAdminConfig(server, p.caPEM, p.clientPEM, p.keyPEM).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "admin.conf")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p *testPKI) context(server string) *api.ResolvedContext {
	return &api.ResolvedContext{Name: "moor", Namespace: "default",
		Cluster: api.Cluster{Server: server, CertificateAuthorityData: p.caPEM},
		User:    api.User{ClientCertificateData: p.clientPEM, ClientKeyData: p.keyPEM}}
}

// adminOnly answers like the server's admin API: it checks the client
// certificate's group, then serves body for method+path.
func adminOnly(t *testing.T, method, path string, status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		certs := r.TLS.PeerCertificates
		if len(certs) == 0 || certs[0].Subject.CommonName != "admin" || certs[0].Subject.Organization[0] != api.GroupAdmins {
			http.Error(w, `{"error":"admin client certificate required"}`, http.StatusForbidden)
			return
		}
		if r.Method != method || r.URL.Path != path {
			t.Errorf("request %s %s, want %s %s", r.Method, r.URL.Path, method, path)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func TestClientListsWithClientCertificate(t *testing.T) {
	p := newTestPKI(t)
	views := []api.NodeView{{Name: "node-1", Pods: 3, Ready: true}}
	b, _ := json.Marshal(views)
	srv := startServer(t, p, adminOnly(t, http.MethodGet, api.PathNodes, http.StatusOK, string(b)))
	c, err := NewClient(p.context(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "node-1" || got[0].Pods != 3 || !got[0].Ready {
		t.Errorf("nodes = %+v", got)
	}
}

func TestClientSync(t *testing.T) {
	p := newTestPKI(t)
	srv := startServer(t, p, adminOnly(t, http.MethodPost, api.PathSync, http.StatusOK,
		`{"commit":"`+shaHead+`","state":"Rejected","changed":false,"errors":["bad"]}`))
	c, err := NewClient(p.context(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got.Commit != shaHead || got.State != api.CommitRejected || len(got.Errors) != 1 {
		t.Errorf("sync = %+v", got)
	}
}

func TestClientSurfacesServerErrors(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		body       string
		wantMsg    string
		wantReason string
	}{
		{"json error body", http.StatusForbidden, `{"error":"certificate is not in group moor:admins"}`, "certificate is not in group moor:admins", "Forbidden"},
		{"json not found", http.StatusNotFound, `{"error":"no such path"}`, "no such path", "NotFound"},
		{"text body", http.StatusInternalServerError, "store is closed\n", "store is closed", "InternalError"},
		{"empty body", http.StatusBadGateway, "", "the server answered 502 Bad Gateway", "InternalError"},
		{"json without error", http.StatusConflict, `{"other":1}`, "the server answered 409 Conflict", "Conflict"},
	}
	p := newTestPKI(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, p, adminOnly(t, http.MethodGet, api.PathPods, tc.status, tc.body))
			c, err := NewClient(p.context(srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Pods(t.Context())
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if ae.StatusCode != tc.status || ae.Message != tc.wantMsg || ae.Reason() != tc.wantReason {
				t.Errorf("got %d %q %q, want %d %q %q", ae.StatusCode, ae.Message, ae.Reason(), tc.status, tc.wantMsg, tc.wantReason)
			}
		})
	}
}

func TestClientRejectsUnknownServerCA(t *testing.T) {
	p, other := newTestPKI(t), newTestPKI(t)
	srv := startServer(t, p, adminOnly(t, http.MethodGet, api.PathPods, http.StatusOK, "[]"))
	rc := p.context(srv.URL)
	rc.Cluster.CertificateAuthorityData = other.caPEM
	c, err := NewClient(rc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Pods(t.Context())
	if err == nil || !strings.Contains(err.Error(), "not signed by the context's certificate-authority-data") {
		t.Errorf("err = %v, want the unknown-CA hint", err)
	}
}

func TestClientTimeout(t *testing.T) {
	p := newTestPKI(t)
	srv := startServer(t, p, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	c, err := NewClient(p.context(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = c.Commits(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "--request-timeout") {
		t.Errorf("err = %v, want a deadline error with a hint", err)
	}
}

func TestClientConnectionRefused(t *testing.T) {
	p := newTestPKI(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := NewClient(p.context("https://" + addr))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Pods(t.Context())
	if err == nil || !strings.Contains(err.Error(), "is `moor server` running") {
		t.Errorf("err = %v, want the connection hint", err)
	}
}

func TestNewClientValidates(t *testing.T) {
	p := newTestPKI(t)
	cases := []struct {
		name   string
		mutate func(*api.ResolvedContext)
		want   string
	}{
		{"http", func(rc *api.ResolvedContext) { rc.Cluster.Server = "http://127.0.0.1:6443" }, "must use https"},
		{"not a url", func(rc *api.ResolvedContext) { rc.Cluster.Server = "127.0.0.1" }, "is not a URL"},
		{"no ca", func(rc *api.ResolvedContext) { rc.Cluster.CertificateAuthorityData = nil }, "no certificate-authority-data"},
		{"bad ca", func(rc *api.ResolvedContext) { rc.Cluster.CertificateAuthorityData = []byte("junk") }, "holds no PEM certificate"},
		{"no key", func(rc *api.ResolvedContext) { rc.User.ClientKeyData = nil }, "client-key-data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := p.context("https://127.0.0.1:6443")
			tc.mutate(rc)
			if _, err := NewClient(rc); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestGetEndToEnd runs the real `moor get` against a TLS server through a
// config file, as a user would after `moor server` wrote admin.conf.
func TestGetEndToEnd(t *testing.T) {
	p := newTestPKI(t)
	b, _ := json.Marshal(fixtures().nodes)
	srv := startServer(t, p, adminOnly(t, http.MethodGet, api.PathNodes, http.StatusOK, string(b)))
	path := p.adminConfigFile(t, srv.URL)
	got, err := runRoot(t, NewGetCommand, "--config", path, "get", "nodes", "-o", "name")
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	if !strings.HasSuffix(got, "node/node-1\nnode/node-2\nnode/node-3\nnode/node-4\n") {
		t.Errorf("got\n%s", got)
	}
}

func FuzzDecodeError(f *testing.F) {
	f.Add(403, []byte(`{"error":"nope"}`))
	f.Add(500, []byte("plain text"))
	f.Add(502, []byte{0xff, 0xfe})
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := decodeError(status, body)
		if e.Message == "" || e.StatusCode != status {
			t.Errorf("decodeError(%d, %q) = %+v", status, body, e)
		}
		_ = e.Reason()
	})
}
