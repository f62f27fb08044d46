package nodeagent_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/nodeagent"
)

func TestVerifyPinned(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafFor := func(signer *testCA, usage x509.ExtKeyUsage) []byte {
		return signer.sign(t, &x509.Certificate{
			Subject:     pkix.Name{CommonName: "server"},
			DNSNames:    []string{"moor.example"},
			ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}, &key.PublicKey)
	}
	good := leafFor(ca, x509.ExtKeyUsageServerAuth)
	pin := api.CAHash(ca.cert.Raw)
	tests := []struct {
		name  string
		chain [][]byte
		host  string
		ok    bool
	}{
		{"leaf and pinned CA", [][]byte{good, ca.cert.Raw}, "moor.example", true},
		{"wrong host", [][]byte{good, ca.cert.Raw}, "evil.example", false},
		{"CA missing from chain", [][]byte{good}, "moor.example", false},
		{"another CA", [][]byte{leafFor(other, x509.ExtKeyUsageServerAuth), other.cert.Raw}, "moor.example", false},
		// The pinned CA certificate is public: presenting it beside a leaf
		// signed by someone else must not pass.
		{"pinned CA beside a foreign leaf", [][]byte{leafFor(other, x509.ExtKeyUsageServerAuth), ca.cert.Raw, other.cert.Raw}, "moor.example", false},
		{"client certificate as server", [][]byte{leafFor(ca, x509.ExtKeyUsageClientAuth), ca.cert.Raw}, "moor.example", false},
		{"garbage", [][]byte{[]byte("nope")}, "moor.example", false},
		{"empty", nil, "moor.example", false},
	}
	for _, tt := range tests {
		err := nodeagent.VerifyPinned(tt.chain, pin, tt.host, time.Now())
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
	if err := nodeagent.VerifyPinned([][]byte{good, ca.cert.Raw}, pin, "moor.example", time.Now().Add(48*time.Hour)); err == nil {
		t.Error("expired certificate accepted")
	}
}
