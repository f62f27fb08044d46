package secrets

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// vault is the thin I/O shell around Vault's API client: each method does
// one request and returns a classified *Error on failure. The client's
// token is the node's current token (set by tokenSource).
type vault struct {
	api  *vaultapi.Client
	addr string
}

// newVault builds a client for cfg (defaults applied). It reads no VAULT_*
// environment variable that could change whom it talks to or as whom.
func newVault(cfg Config) (*vault, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CACertFile != "" {
		pem, err := os.ReadFile(cfg.CACertFile)
		if err != nil {
			return nil, invalid("", fmt.Sprintf("read vault CA certificate file: %v", err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, invalid("", fmt.Sprintf("vault CA certificate file %s holds no PEM certificate", cfg.CACertFile))
		}
		tlsConf.RootCAs = pool
	}
	tlsConf.InsecureSkipVerify = cfg.TLSSkipVerify //nolint:gosec // explicit development setting
	hc := &http.Client{
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     tlsConf,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		},
		// Vault's client follows Vault's redirects itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c, err := vaultapi.NewClient(&vaultapi.Config{
		Address:    cfg.Address,
		HttpClient: hc,
		Timeout:    cfg.RequestTimeout,
		MaxRetries: 0, // the Manager retries, with its own backoff
	})
	if err != nil {
		return nil, invalid("", fmt.Sprintf("vault client for %s: %v", cfg.Address, err))
	}
	c.ClearToken()
	c.ClearNamespace()
	return &vault{api: c, addr: cfg.Address}, nil
}

// fail classifies a request's error.
func (v *vault) fail(ctx context.Context, o op, path string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	status, msgs := responseStatus(err)
	var sealed *bool
	if status == http.StatusServiceUnavailable {
		sealed = v.sealed(ctx)
	}
	return classify(ctx, v.addr, o, path, status, msgs, err, sealed)
}

// sealed asks sys/seal-status; nil when it cannot tell.
func (v *vault) sealed(ctx context.Context) *bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := v.api.Sys().SealStatusWithContext(ctx)
	if err != nil || st == nil {
		return nil
	}
	return &st.Sealed
}

// read GETs path. A 404 returns ErrNotFound together with the answer's
// secret, if it had one (KV v2 answers a deleted version with its
// metadata).
func (v *vault) read(ctx context.Context, path string, params url.Values) (*vaultapi.Secret, error) {
	resp, err := v.api.Logical().ReadRawWithDataWithContext(ctx, path, params)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			s, _ := vaultapi.ParseSecret(resp.Body)
			return s, v.fail(ctx, opRead, path, err)
		}
		return nil, v.fail(ctx, opRead, path, err)
	}
	s, err := vaultapi.ParseSecret(resp.Body)
	if err != nil {
		return nil, &Error{Class: ErrUnavailable, Path: path, Msg: fmt.Sprintf("vault at %s sent an unreadable answer for %s", v.addr, path), Err: err}
	}
	if s == nil {
		return nil, classify(ctx, v.addr, opRead, path, http.StatusNotFound, nil, nil, nil)
	}
	return s, nil
}

// login writes an auth method's login path without a token.
func (v *vault) login(ctx context.Context, path string, data map[string]any) (*vaultapi.Secret, error) {
	c, err := v.api.Clone() // no token, same address and transport
	if err != nil {
		return nil, err
	}
	c.ClearToken()
	s, err := c.Logical().WriteWithContext(ctx, path, data)
	if err != nil {
		return nil, v.fail(ctx, opLogin, path, err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, classify(ctx, v.addr, opLogin, path, http.StatusNotFound, nil, nil, nil)
	}
	return s, nil
}

// renewLease renews a lease by increment.
func (v *vault) renewLease(ctx context.Context, path, leaseID string, increment time.Duration) (*vaultapi.Secret, error) {
	s, err := v.api.Sys().RenewWithContext(ctx, leaseID, int(increment/time.Second))
	if err != nil {
		return nil, v.fail(ctx, opRenewLease, path, err)
	}
	if s == nil {
		return nil, classify(ctx, v.addr, opRenewLease, path, http.StatusNotFound, nil, nil, nil)
	}
	return s, nil
}

// renewSelf renews the client's token by increment.
func (v *vault) renewSelf(ctx context.Context, increment time.Duration) (*vaultapi.Secret, error) {
	s, err := v.api.Auth().Token().RenewSelfWithContext(ctx, int(increment/time.Second))
	if err != nil {
		return nil, v.fail(ctx, opRenewToken, "auth/token/renew-self", err)
	}
	if s == nil || s.Auth == nil {
		return nil, &Error{Class: ErrUnavailable, Path: "auth/token/renew-self", Msg: "vault answered a token renewal without the token"}
	}
	return s, nil
}

// lookupToken looks token up by itself (auth/token/lookup-self).
func (v *vault) lookupToken(ctx context.Context, token string) (*vaultapi.Secret, error) {
	c, err := v.api.Clone()
	if err != nil {
		return nil, err
	}
	c.SetToken(token)
	s, err := c.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return nil, v.fail(ctx, opRead, "auth/token/lookup-self", err)
	}
	if s == nil {
		return nil, classify(ctx, v.addr, opRead, "auth/token/lookup-self", http.StatusNotFound, nil, nil, nil)
	}
	return s, nil
}
