package pki

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

// SignNode signs a node client certificate from a PEM certificate request.
// The request must be signed by its own key and name CN=api.NodeCNPrefix+node;
// the certificate gets O=api.GroupNodes whatever the request asks, the
// client-auth usage only, and LeafValidity. Bad requests give errors
// wrapping errdefs.ErrInvalidArgument.
func (a *Authority) SignNode(csrPEM []byte, node string) ([]byte, error) {
	if node == "" {
		return nil, fmt.Errorf("sign node certificate: %w: node name is empty", errdefs.ErrInvalidArgument)
	}
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("sign node certificate for %q: %w: want a PEM CERTIFICATE REQUEST block", node, errdefs.ErrInvalidArgument)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("sign node certificate for %q: %w: parse certificate request: %w", node, errdefs.ErrInvalidArgument, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("sign node certificate for %q: %w: certificate request signature: %w", node, errdefs.ErrInvalidArgument, err)
	}
	if want := api.NodeCNPrefix + node; csr.Subject.CommonName != want {
		return nil, fmt.Errorf("sign node certificate: %w: certificate request is for CN %q, want %q",
			errdefs.ErrInvalidArgument, csr.Subject.CommonName, want)
	}
	return a.sign(csr.PublicKey, leafSpec{
		cn:  api.NodeCNPrefix + node,
		org: []string{api.GroupNodes},
		eku: x509.ExtKeyUsageClientAuth,
	})
}

// NewCSR makes a fresh ECDSA P-256 key and a certificate request for the
// node's client certificate (CN=api.NodeCNPrefix+node), both PEM-encoded.
// Node agents call it before joining; tests use it to mint node certificates.
func NewCSR(node string) (csrPEM, keyPEM []byte, err error) {
	if node == "" {
		return nil, nil, fmt.Errorf("certificate request: %w: node name is empty", errdefs.ErrInvalidArgument)
	}
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(randReader, &x509.CertificateRequest{
		Subject: pkixName(api.NodeCNPrefix+node, []string{api.GroupNodes}),
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate request for node %q: %w", node, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), keyPEM, nil
}
