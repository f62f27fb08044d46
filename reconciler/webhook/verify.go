package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/containerd/errdefs"
)

// verifier checks a delivery's authenticity over the raw body, before any
// parsing.
type verifier func(h http.Header, body []byte, secret string) error

// Sign returns the hex HMAC-SHA256 of body under secret, as GitHub, Gitea,
// Forgejo, Bitbucket and the generic receiver send it (GitHub and Bitbucket
// prefix it with "sha256=").
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// checkHMAC compares a hex HMAC-SHA256 against the body's in constant time.
func checkHMAC(gotHex string, body []byte, secret string) error {
	got, err := hex.DecodeString(strings.TrimSpace(gotHex))
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: signature is not a hex SHA-256 HMAC", errdefs.ErrUnauthenticated)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return fmt.Errorf("%w: signature does not match the body; check that the secret configured at the Git host equals the server's", errdefs.ErrUnauthenticated)
	}
	return nil
}

// prefixedHMAC verifies a "sha256=<hex>" header (GitHub X-Hub-Signature-256,
// Bitbucket X-Hub-Signature, the generic X-Moor-Signature).
func prefixedHMAC(header string) verifier {
	return func(h http.Header, body []byte, secret string) error {
		v := h.Get(header)
		if v == "" {
			return fmt.Errorf("%w: missing %s header; set a secret on the webhook at the Git host", errdefs.ErrUnauthenticated, header)
		}
		hexSig, ok := strings.CutPrefix(v, "sha256=")
		if !ok {
			return fmt.Errorf("%w: %s must be sha256=<hex>; choose SHA-256 at the Git host", errdefs.ErrUnauthenticated, header)
		}
		return checkHMAC(hexSig, body, secret)
	}
}

// bareHMAC verifies a bare hex HMAC in the first present header (Gitea
// X-Gitea-Signature, Forgejo X-Forgejo-Signature).
func bareHMAC(headers ...string) verifier {
	return func(h http.Header, body []byte, secret string) error {
		for _, name := range headers {
			if v := h.Get(name); v != "" {
				return checkHMAC(v, body, secret)
			}
		}
		return fmt.Errorf("%w: missing %s header; set a secret on the webhook at the Git host", errdefs.ErrUnauthenticated, headers[0])
	}
}

// gitlabToken compares X-Gitlab-Token with the secret in constant time.
// Both sides are hashed first so that the comparison does not leak the
// secret's length.
func gitlabToken(h http.Header, _ []byte, secret string) error {
	v := h.Get("X-Gitlab-Token")
	if v == "" {
		return fmt.Errorf("%w: missing X-Gitlab-Token header; set the secret token on the GitLab webhook", errdefs.ErrUnauthenticated)
	}
	a, b := sha256.Sum256([]byte(v)), sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return fmt.Errorf("%w: X-Gitlab-Token does not match; check the secret token on the GitLab webhook", errdefs.ErrUnauthenticated)
	}
	return nil
}
