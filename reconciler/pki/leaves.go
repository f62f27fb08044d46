package pki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moor-dev/moor/api"
)

// Subjects of the certificates the authority issues for itself.
const (
	serverCN = "moor server"
	adminCN  = "moor:admin"
)

// leafSpec is what distinguishes one issued certificate from another.
type leafSpec struct {
	cn  string
	org []string
	eku x509.ExtKeyUsage
	ips []net.IP
	dns []string
}

// sign issues a certificate for pub, valid for LeafValidity from now, and
// returns it PEM-encoded.
func (a *Authority) sign(pub crypto.PublicKey, s leafSpec) ([]byte, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := a.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkixName(s.cn, s.org),
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(LeafValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{s.eku},
		BasicConstraintsValid: true,
		IPAddresses:           s.ips,
		DNSNames:              s.dns,
	}
	der, err := x509.CreateCertificate(randReader, tmpl, a.caCert, pub, a.caKey)
	if err != nil {
		return nil, fmt.Errorf("sign certificate for %q: %w", s.cn, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// loadLeaf loads a key pair that is still good to use: its key matches, the
// current CA signed it and it does not expire within RenewBefore. ok is
// false when it must be (re-)issued; a damaged file is simply replaced.
func (a *Authority) loadLeaf(certPath, keyPath string) (pair tls.Certificate, certPEM, keyPEM []byte, ok bool) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return tls.Certificate{}, nil, nil, false
	}
	keyPEM, err = os.ReadFile(keyPath)
	if err != nil {
		return tls.Certificate{}, nil, nil, false
	}
	pair, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil || pair.Leaf == nil {
		return tls.Certificate{}, nil, nil, false
	}
	if pair.Leaf.CheckSignatureFrom(a.caCert) != nil || a.now().Add(RenewBefore).After(pair.Leaf.NotAfter) {
		return tls.Certificate{}, nil, nil, false
	}
	return pair, certPEM, keyPEM, true
}

// issueLeaf makes a new key, signs a certificate for it and writes both.
func (a *Authority) issueLeaf(certPath, keyPath string, s leafSpec) (pair tls.Certificate, certPEM, keyPEM []byte, err error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	certPEM, err = a.sign(&key.PublicKey, s)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	pair, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("load new certificate %s: %w", certPath, err)
	}
	return pair, certPEM, keyPEM, nil
}

func (a *Authority) loadOrCreateServer(dir string, hosts []string) error {
	certPath, keyPath := filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile)
	ips, dns := serverNames(hosts)
	if pair, _, _, ok := a.loadLeaf(certPath, keyPath); ok && sameNames(pair.Leaf, ips, dns) {
		a.server = pair
		return nil
	}
	pair, _, _, err := a.issueLeaf(certPath, keyPath, leafSpec{
		cn: serverCN, eku: x509.ExtKeyUsageServerAuth, ips: ips, dns: dns,
	})
	if err != nil {
		return err
	}
	a.server = pair
	return nil
}

func (a *Authority) loadOrCreateAdmin(dir string) error {
	certPath, keyPath := filepath.Join(dir, AdminCertFile), filepath.Join(dir, AdminKeyFile)
	_, certPEM, keyPEM, ok := a.loadLeaf(certPath, keyPath)
	if !ok {
		var err error
		_, certPEM, keyPEM, err = a.issueLeaf(certPath, keyPath, leafSpec{
			cn: adminCN, org: []string{api.GroupAdmins}, eku: x509.ExtKeyUsageClientAuth,
		})
		if err != nil {
			return err
		}
	}
	a.adminCert, a.adminKey = certPEM, keyPEM
	return nil
}

// loadOrCreateToken keeps the join secret across starts; the CA hash is
// always the current CA's.
func (a *Authority) loadOrCreateToken(dir string) error {
	path := filepath.Join(dir, TokenFile)
	want := api.CAHash(a.caCert.Raw)
	if b, err := os.ReadFile(path); err == nil {
		if t, err := api.ParseToken(string(b)); err == nil && t.CAHash == want && len(t.Secret) >= 32 {
			a.token = t
			return nil
		}
	}
	secret := make([]byte, 24)
	if _, err := randReader.Read(secret); err != nil {
		return fmt.Errorf("generate join secret: %w", err)
	}
	t := api.Token{CAHash: want, Secret: hex.EncodeToString(secret)}
	if err := writeFileAtomic(path, []byte(t.String()+"\n"), 0o600); err != nil {
		return err
	}
	a.token = t
	return nil
}

// serverNames returns the sorted, de-duplicated IPs and DNS names the
// serving certificate must hold: hosts plus the loopback names and the
// machine's hostname.
func serverNames(hosts []string) ([]net.IP, []string) {
	all := append([]string{"127.0.0.1", "::1", "localhost"}, hosts...)
	if h, err := os.Hostname(); err == nil {
		all = append(all, h)
	}
	var ipStrs, dns []string
	for _, h := range all {
		h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(h), "["), "]")
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			ipStrs = append(ipStrs, ip.String())
			continue
		}
		dns = append(dns, strings.ToLower(h))
	}
	slices.Sort(ipStrs)
	slices.Sort(dns)
	ipStrs, dns = slices.Compact(ipStrs), slices.Compact(dns)
	ips := make([]net.IP, len(ipStrs))
	for i, s := range ipStrs {
		ips[i] = net.ParseIP(s)
	}
	return ips, dns
}

// sameNames reports whether cert holds exactly ips and dns (both sorted).
func sameNames(cert *x509.Certificate, ips []net.IP, dns []string) bool {
	got := make([]string, len(cert.IPAddresses))
	for i, ip := range cert.IPAddresses {
		got[i] = ip.String()
	}
	want := make([]string, len(ips))
	for i, ip := range ips {
		want[i] = ip.String()
	}
	gotDNS := make([]string, len(cert.DNSNames))
	for i, d := range cert.DNSNames {
		gotDNS[i] = strings.ToLower(d)
	}
	slices.Sort(got)
	slices.Sort(gotDNS)
	return slices.Equal(got, want) && slices.Equal(gotDNS, dns)
}
