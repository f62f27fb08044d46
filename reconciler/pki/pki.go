// Package pki is the reconciler's certificate authority. It owns the files
// of its directory (the CA, the serving certificate, the admin client
// certificate and the join token), signs node client certificates from
// certificate requests, and builds the server's TLS configuration.
//
// It does no networking and knows nothing of nodes beyond the certificate
// subjects the wire contract (package api) defines; whether a node may join
// is decided by its caller.
package pki

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

// Names of the files LoadOrCreate keeps in its directory.
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
	AdminCertFile  = "admin.crt"
	AdminKeyFile   = "admin.key"
	TokenFile      = "token"
)

// Lifetimes of what the authority issues.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	LeafValidity = 365 * 24 * time.Hour
	// RenewBefore is how long before expiry LoadOrCreate re-issues the
	// serving and admin certificates.
	RenewBefore = 30 * 24 * time.Hour
	// backdate absorbs clock skew between server and nodes.
	backdate = 5 * time.Minute
)

// Authority is a loaded certificate authority. It is safe for concurrent
// use: after LoadOrCreate returns it is read-only.
type Authority struct {
	now       func() time.Time
	caCert    *x509.Certificate
	caKey     *ecdsa.PrivateKey
	caPEM     []byte
	server    tls.Certificate
	adminCert []byte
	adminKey  []byte
	token     api.Token
}

// LoadOrCreate loads the authority kept in dir, creating what is missing.
// On first start it writes a new CA, a serving certificate for hosts (plus
// 127.0.0.1, ::1, localhost and the machine's hostname), an admin client
// certificate and a join token. Later starts load them; the serving
// certificate is re-issued when the requested hosts change or it expires
// within RenewBefore, the admin certificate when it nears expiry.
//
// A CA certificate without its key (or the reverse) is an error rather
// than a reason to make a new CA, since every joined node trusts the old one.
func LoadOrCreate(dir string, hosts []string) (*Authority, error) {
	return loadOrCreate(dir, hosts, time.Now)
}

func loadOrCreate(dir string, hosts []string, now func() time.Time) (*Authority, error) {
	if dir == "" {
		return nil, fmt.Errorf("pki: %w: directory is empty", errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: create %s: %w", dir, err)
	}
	a := &Authority{now: now}
	steps := []func(string) error{
		a.loadOrCreateCA,
		func(dir string) error { return a.loadOrCreateServer(dir, hosts) },
		a.loadOrCreateAdmin,
		a.loadOrCreateToken,
	}
	for _, step := range steps {
		if err := step(dir); err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
	}
	return a, nil
}

// Token is the join token: the CA's hash and the join secret.
func (a *Authority) Token() api.Token { return a.token }

// CAPEM is the CA certificate, PEM-encoded.
func (a *Authority) CAPEM() []byte { return append([]byte(nil), a.caPEM...) }

// CAPool is a pool holding only the CA, for clients and verifiers.
func (a *Authority) CAPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(a.caCert)
	return pool
}

// ServerCertificate is the serving certificate with its key.
func (a *Authority) ServerCertificate() tls.Certificate { return a.server }

// AdminPEM returns the admin client certificate and key, PEM-encoded.
func (a *Authority) AdminPEM() (cert, key []byte) {
	return append([]byte(nil), a.adminCert...), append([]byte(nil), a.adminKey...)
}

// ServerTLSConfig is the server's TLS configuration: TLS 1.2 or newer, the
// serving certificate, and client certificates verified against the CA
// when given. They are optional at this layer because a node joins before
// it has one; the HTTP handler decides which paths need which subject.
func (a *Authority) ServerTLSConfig() *tls.Config {
	// Serve the CA with the leaf: a joining agent has only the CA's hash
	// from its token and finds the CA it pins in this chain.
	chain := a.server
	chain.Certificate = append(append([][]byte(nil), a.server.Certificate...), a.caCert.Raw)
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{chain},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    a.CAPool(),
	}
}

func (a *Authority) loadOrCreateCA(dir string) error {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist):
		return a.createCA(certPath, keyPath)
	case certErr != nil:
		return fmt.Errorf("read CA certificate: %w (restore it from a backup, or remove %s too to create a new CA that every node must re-join)", certErr, keyPath)
	case keyErr != nil:
		return fmt.Errorf("read CA key: %w (restore it from a backup, or remove %s too to create a new CA that every node must re-join)", keyErr, certPath)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return fmt.Errorf("CA certificate %s: %w", certPath, err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return fmt.Errorf("CA key %s: %w", keyPath, err)
	}
	if !cert.IsCA || !key.PublicKey.Equal(cert.PublicKey) {
		return fmt.Errorf("%w: %s is not a CA certificate for the key in %s", errdefs.ErrFailedPrecondition, certPath, keyPath)
	}
	if a.now().After(cert.NotAfter) {
		return fmt.Errorf("%w: CA certificate %s expired on %s; remove %s and %s to create a new CA, then re-join every node",
			errdefs.ErrFailedPrecondition, certPath, cert.NotAfter.Format(time.DateOnly), certPath, keyPath)
	}
	a.caCert, a.caKey, a.caPEM = cert, key, certPEM
	return nil
}

func (a *Authority) createCA(certPath, keyPath string) error {
	key, keyPEM, err := newKey()
	if err != nil {
		return err
	}
	now := a.now()
	tmpl := &x509.Certificate{
		Subject:               pkixName("moor CA", nil),
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	if tmpl.SerialNumber, err = newSerial(); err != nil {
		return err
	}
	der, err := x509.CreateCertificate(randReader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parse new CA certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// Key first: a certificate without its key is an error on the next start.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return err
	}
	a.caCert, a.caKey, a.caPEM = cert, key, certPEM
	return nil
}
