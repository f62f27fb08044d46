package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

func mustLoad(t *testing.T, dir string, hosts ...string) *Authority {
	t.Helper()
	a, err := LoadOrCreate(dir, hosts)
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	return a
}

func TestLoadOrCreateWritesFiles(t *testing.T) {
	dir := t.TempDir()
	a := mustLoad(t, dir)
	for name, perm := range map[string]os.FileMode{
		CACertFile: 0o644, CAKeyFile: 0o600, ServerCertFile: 0o644, ServerKeyFile: 0o600,
		AdminCertFile: 0o644, AdminKeyFile: 0o600, TokenFile: 0o600,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := fi.Mode().Perm(); got != perm {
			t.Errorf("%s: mode %o, want %o", name, got, perm)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := api.ParseToken(string(b))
	if err != nil {
		t.Fatalf("token file: %v", err)
	}
	if tok != a.Token() {
		t.Errorf("token file %v, Token() %v", tok, a.Token())
	}
	ca, err := parseCertPEM(a.CAPEM())
	if err != nil {
		t.Fatal(err)
	}
	if tok.CAHash != api.CAHash(ca.Raw) {
		t.Errorf("token CA hash %s does not pin the CA (%s)", tok.CAHash, api.CAHash(ca.Raw))
	}
	if len(tok.Secret) < 32 {
		t.Errorf("secret has %d characters, want at least 32", len(tok.Secret))
	}
	if _, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || !ca.IsCA {
		t.Errorf("CA: IsCA=%v key %T, want an ECDSA CA", ca.IsCA, ca.PublicKey)
	}
	if d := time.Until(ca.NotAfter); d < CAValidity-time.Hour {
		t.Errorf("CA valid for %v, want about %v", d, CAValidity)
	}
	certPEM, keyPEM := a.AdminPEM()
	admin, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("admin key pair: %v", err)
	}
	if !slices.Equal(admin.Leaf.Subject.Organization, []string{api.GroupAdmins}) {
		t.Errorf("admin O = %v, want [%s]", admin.Leaf.Subject.Organization, api.GroupAdmins)
	}
	verifyClient(t, a, admin.Leaf)
}

func TestReloadKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	first := mustLoad(t, dir, "moor.example")
	second := mustLoad(t, dir, "moor.example")
	if !bytes.Equal(first.CAPEM(), second.CAPEM()) {
		t.Error("CA changed across reload")
	}
	if first.Token() != second.Token() {
		t.Errorf("token changed across reload: %v → %v", first.Token(), second.Token())
	}
	if !bytes.Equal(first.ServerCertificate().Certificate[0], second.ServerCertificate().Certificate[0]) {
		t.Error("server certificate re-issued although nothing changed")
	}
	c1, _ := first.AdminPEM()
	c2, _ := second.AdminPEM()
	if !bytes.Equal(c1, c2) {
		t.Error("admin certificate re-issued although nothing changed")
	}
}

func TestServerCertificateNames(t *testing.T) {
	a := mustLoad(t, t.TempDir(), "moor.example", "10.0.0.7", " [fd00::1] ", "")
	leaf := a.ServerCertificate().Leaf
	host, _ := os.Hostname()
	tests := []struct {
		name string
		ok   bool
	}{
		{"127.0.0.1", true}, {"::1", true}, {"localhost", true}, {host, true},
		{"moor.example", true}, {"10.0.0.7", true}, {"fd00::1", true},
		{"other.example", false}, {"10.0.0.8", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := leaf.Verify(x509.VerifyOptions{DNSName: tt.name, Roots: a.CAPool()})
			if (err == nil) != tt.ok {
				t.Errorf("verify for %q: err=%v, want ok=%v", tt.name, err, tt.ok)
			}
		})
	}
}

func TestServerCertificateReissue(t *testing.T) {
	tests := []struct {
		name     string
		firstAge time.Duration // how long ago the first start was
		hosts    []string      // hosts of the second start
		reissue  bool
	}{
		{"Unchanged", 0, []string{"a.example"}, false},
		{"SameHostsOtherOrder", 0, []string{"A.example", "a.example", "127.0.0.1"}, false},
		{"HostAdded", 0, []string{"a.example", "10.1.2.3"}, true},
		{"HostRemoved", 0, nil, true},
		{"ExpiresSoon", LeafValidity - RenewBefore + time.Hour, []string{"a.example"}, true},
		{"ExpiresLater", LeafValidity - RenewBefore - time.Hour, []string{"a.example"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			then := time.Now().Add(-tt.firstAge)
			first, err := loadOrCreate(dir, []string{"a.example"}, func() time.Time { return then })
			if err != nil {
				t.Fatal(err)
			}
			second := mustLoad(t, dir, tt.hosts...)
			same := bytes.Equal(first.ServerCertificate().Certificate[0], second.ServerCertificate().Certificate[0])
			if same == tt.reissue {
				t.Errorf("re-issued = %v, want %v", !same, tt.reissue)
			}
			if !bytes.Equal(first.CAPEM(), second.CAPEM()) || first.Token() != second.Token() {
				t.Error("CA or token changed; only the server certificate may")
			}
		})
	}
}

func TestBrokenCAIsAnError(t *testing.T) {
	tests := []struct {
		name   string
		mangle func(dir string) error
	}{
		{"KeyMissing", func(dir string) error { return os.Remove(filepath.Join(dir, CAKeyFile)) }},
		{"CertMissing", func(dir string) error { return os.Remove(filepath.Join(dir, CACertFile)) }},
		{"CertGarbage", func(dir string) error { return os.WriteFile(filepath.Join(dir, CACertFile), []byte("junk"), 0o644) }},
		{"KeyOfAnotherCA", func(dir string) error {
			other := t.TempDir()
			mustLoad(t, other)
			b, err := os.ReadFile(filepath.Join(other, CAKeyFile))
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, CAKeyFile), b, 0o600)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mustLoad(t, dir)
			if err := tt.mangle(dir); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadOrCreate(dir, nil); err == nil {
				t.Fatal("LoadOrCreate succeeded with a broken CA; it must not replace a CA nodes trust")
			}
		})
	}
}

func TestSignNode(t *testing.T) {
	a := mustLoad(t, t.TempDir())
	good, _, err := NewCSR("n1")
	if err != nil {
		t.Fatal(err)
	}
	// A request asking for the admin group still gets only the node group.
	greedy := csrFor(t, pkix.Name{CommonName: api.NodeCNPrefix + "n1", Organization: []string{api.GroupAdmins}})
	block, _ := pem.Decode(good)
	tampered := append([]byte(nil), block.Bytes...)
	tampered[len(tampered)-3] ^= 0xff
	tests := []struct {
		name string
		csr  []byte
		node string
		ok   bool
	}{
		{"Good", good, "n1", true},
		{"AdminGroupRequested", greedy, "n1", true},
		{"WrongCN", good, "n2", false},
		{"EmptyNode", good, "", false},
		{"NotPEM", []byte("not a csr"), "n1", false},
		{"WrongPEMType", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}), "n1", false},
		{"GarbageDER", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1, 2, 3}}), "n1", false},
		{"BadSignature", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered}), "n1", false},
		{"CNWithoutPrefix", csrFor(t, pkix.Name{CommonName: "n1"}), "n1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, err := a.SignNode(tt.csr, tt.node)
			if !tt.ok {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err = %v, want one wrapping errdefs.ErrInvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("SignNode: %v", err)
			}
			cert, err := parseCertPEM(certPEM)
			if err != nil {
				t.Fatal(err)
			}
			if cert.Subject.CommonName != api.NodeCNPrefix+tt.node || !slices.Equal(cert.Subject.Organization, []string{api.GroupNodes}) {
				t.Errorf("subject %v, want CN=%s%s O=%s", cert.Subject, api.NodeCNPrefix, tt.node, api.GroupNodes)
			}
			if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || cert.IsCA {
				t.Errorf("usage %v IsCA=%v, want client auth only", cert.ExtKeyUsage, cert.IsCA)
			}
			if d := time.Until(cert.NotAfter); d < LeafValidity-time.Hour || d > LeafValidity {
				t.Errorf("valid for %v, want about %v", d, LeafValidity)
			}
			verifyClient(t, a, cert)
		})
	}
}

func TestTLSHandshake(t *testing.T) {
	a := mustLoad(t, t.TempDir())
	csr, key, err := NewCSR("n1")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := a.SignNode(csr, "n1")
	if err != nil {
		t.Fatal(err)
	}
	node, err := tls.X509KeyPair(certPEM, key)
	if err != nil {
		t.Fatal(err)
	}
	stranger := mustLoad(t, t.TempDir()) // another CA's admin
	sc, sk := stranger.AdminPEM()
	foreign, err := tls.X509KeyPair(sc, sk)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		certs  []tls.Certificate
		wantCN string // peer CN the server sees; "" for none
		fail   bool
	}{
		{"NodeCert", []tls.Certificate{node}, api.NodeCNPrefix + "n1", false},
		{"NoCert", nil, "", false},
		{"ForeignCert", []tls.Certificate{foreign}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cn, err := handshake(t, a, &tls.Config{
				RootCAs: a.CAPool(), ServerName: "127.0.0.1", Certificates: tt.certs,
			})
			if tt.fail {
				if err == nil {
					t.Fatal("handshake succeeded with a certificate from another CA")
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if cn != tt.wantCN {
				t.Errorf("server saw client CN %q, want %q", cn, tt.wantCN)
			}
		})
	}
}

// handshake runs one TLS handshake against a's server configuration over a
// loopback connection and returns the verified client CN the server saw.
func handshake(t *testing.T, a *Authority, client *tls.Config) (string, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		cn  string
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		sc := tls.Server(c, a.ServerTLSConfig())
		if err := sc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		var cn string
		if chains := sc.ConnectionState().VerifiedChains; len(chains) > 0 {
			cn = chains[0][0].Subject.CommonName
		}
		sc.Write([]byte{1}) // lets the client see a TLS 1.3 rejection
		done <- result{cn: cn}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err == nil {
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	r := <-done
	if err != nil {
		return "", err
	}
	return r.cn, r.err
}

func verifyClient(t *testing.T, a *Authority, cert *x509.Certificate) {
	t.Helper()
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots: a.CAPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		t.Errorf("client certificate %q does not verify against the CA: %v", cert.Subject, err)
	}
}

func csrFor(t *testing.T, subject pkix.Name) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestEmptyDir(t *testing.T) {
	if _, err := LoadOrCreate("", nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("err = %v, want invalid argument", err)
	}
}

// A joining agent knows only the CA's hash from its token: the server must
// present the CA in its chain so the agent can find and pin it.
func TestServerChainCarriesPinnedCA(t *testing.T) {
	a, err := LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var pinned bool
	client := &tls.Config{
		InsecureSkipVerify: true, // the test checks the chain by hand, as the agent does
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			for _, der := range raw {
				if api.CAHash(der) == a.Token().CAHash {
					pinned = true
				}
			}
			return nil
		},
	}
	if _, err := handshake(t, a, client); err != nil {
		t.Fatal(err)
	}
	if !pinned {
		t.Fatal("the server's chain does not carry the CA the token pins")
	}
}
