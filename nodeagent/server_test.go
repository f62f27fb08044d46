package nodeagent_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moor-dev/moor/api"
)

// testCA is a certificate authority minted for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "moor test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) pem() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
}

// sign issues a certificate for pub from tmpl's subject, SANs and usage.
func (ca *testCA) sign(t *testing.T, tmpl *x509.Certificate, pub any) []byte {
	t.Helper()
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// pull is one desired-state request the fake server answered.
type pull struct {
	Since, IfNoneMatch, Wait string
	Code                     int
}

// fakeServer stands in for the moor server: join, desired (long-poll) and
// status, with mTLS like the real one.
type fakeServer struct {
	t      *testing.T
	ca     *testCA
	secret string
	srv    *httptest.Server

	mu       sync.Mutex
	node     string
	doc      []byte
	digest   string
	etag     string        // when set, sent instead of the digest
	changed  chan struct{} // closed and replaced on every SetDesired
	joins    int
	joinAddr netip.Addr // Address of the last join request
	pulls    []pull
	statuses []api.NodeStatus
}

func newFakeServer(t *testing.T, node string) *fakeServer {
	t.Helper()
	s := &fakeServer{t: t, ca: newTestCA(t), secret: "s3cret-s3cret-s3cret", node: node, changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.PathJoin, s.join)
	mux.HandleFunc("GET "+api.PathDesired, s.desired)
	mux.HandleFunc("PUT "+api.PathNodeStatus, s.status)
	s.srv = httptest.NewUnstartedServer(mux)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := s.ca.sign(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "moor server"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:    []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, &key.PublicKey)
	pool := x509.NewCertPool()
	pool.AddCert(s.ca.cert)
	s.srv.TLS = &tls.Config{
		// The chain carries the CA so a joining agent can pin it.
		Certificates: []tls.Certificate{{Certificate: [][]byte{leaf, s.ca.cert.Raw}, PrivateKey: key}},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
	}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

// token is the join token pinning this server's CA.
func (s *fakeServer) token() string {
	return api.Token{CAHash: api.CAHash(s.ca.cert.Raw), Secret: s.secret}.String()
}

// SetDesired publishes pods as the node's desired state at commit.
func (s *fakeServer) SetDesired(commit string, pods ...api.Pod) string {
	d := api.NodeDesired{Node: s.node, Commit: commit, Pods: pods}
	b, digest, err := d.Encode()
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc, s.digest = b, digest
	close(s.changed)
	s.changed = make(chan struct{})
	return digest
}

// SetETag makes the server send etag instead of the document's digest.
func (s *fakeServer) SetETag(etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.etag = etag
}

func (s *fakeServer) Joins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.joins
}

func (s *fakeServer) Pulls() []pull {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pull(nil), s.pulls...)
}

func (s *fakeServer) Statuses() []api.NodeStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]api.NodeStatus(nil), s.statuses...)
}

// LastStatus is the last report, or nil.
func (s *fakeServer) LastStatus() *api.NodeStatus {
	st := s.Statuses()
	if len(st) == 0 {
		return nil
	}
	return &st[len(st)-1]
}

func (s *fakeServer) join(w http.ResponseWriter, r *http.Request) {
	var req api.JoinRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !api.SecretEqual(req.Secret, s.secret) || req.Node != s.node {
		http.Error(w, "bad token", http.StatusForbidden)
		return
	}
	block, _ := pem.Decode([]byte(req.CSR))
	if block == nil {
		http.Error(w, "csr is not PEM", http.StatusBadRequest)
		return
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil || csr.Subject.CommonName != api.NodeCNPrefix+req.Node {
		http.Error(w, "bad csr", http.StatusBadRequest)
		return
	}
	der := s.ca.sign(s.t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: csr.Subject.CommonName, Organization: []string{api.GroupNodes}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, csr.PublicKey)
	s.mu.Lock()
	s.joins++
	s.joinAddr = req.Address
	s.mu.Unlock()
	_ = json.NewEncoder(w).Encode(api.JoinResponse{
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		CA:          s.ca.pem(),
	})
}

// authorized checks the node's client certificate.
func (s *fakeServer) authorized(w http.ResponseWriter, r *http.Request) bool {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 ||
		r.TLS.VerifiedChains[0][0].Subject.CommonName != api.NodeCNPrefix+r.PathValue("name") {
		http.Error(w, "node certificate required", http.StatusUnauthorized)
		return false
	}
	return true
}

func (s *fakeServer) desired(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	q := r.URL.Query()
	p := pull{Since: q.Get("since"), IfNoneMatch: r.Header.Get("If-None-Match"), Wait: q.Get("wait")}
	wait, err := time.ParseDuration(p.Wait)
	if err != nil {
		http.Error(w, "bad wait", http.StatusBadRequest)
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		doc, digest, etag, changed := s.doc, s.digest, s.etag, s.changed
		if doc != nil && p.Since != digest {
			if etag == "" {
				etag = digest
			}
			p.Code = http.StatusOK
			s.pulls = append(s.pulls, p)
			s.mu.Unlock()
			w.Header().Set("ETag", `"`+etag+`"`)
			_, _ = w.Write(doc)
			return
		}
		s.mu.Unlock()
		select {
		case <-changed:
			continue
		case <-timer.C:
		case <-r.Context().Done():
		}
		s.mu.Lock()
		p.Code = http.StatusNotModified
		s.pulls = append(s.pulls, p)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNotModified)
		return
	}
}

func (s *fakeServer) status(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	var st api.NodeStatus
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil || st.Node != r.PathValue("name") {
		http.Error(w, "bad status", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.statuses = append(s.statuses, st)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// hasPrefix reports whether any call starts with prefix.
func hasCall(calls []string, call string) bool {
	for _, c := range calls {
		if c == call {
			return true
		}
	}
	return false
}

func countCalls(calls []string, prefix string) int {
	n := 0
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}
