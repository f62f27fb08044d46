package secrets

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Defaults applied to zero Config fields.
const (
	DefaultAppRoleMount   = "approle"
	DefaultPollInterval   = 30 * time.Second
	DefaultRequestTimeout = 10 * time.Second
)

// Config says how the node reaches Vault and who it is there.
type Config struct {
	// Address is Vault's URL, e.g. https://vault.example:8200.
	Address string
	// CACertFile is a PEM bundle that verifies Vault's TLS certificate;
	// empty uses the system's roots.
	CACertFile string
	// TLSSkipVerify accepts any certificate. For development only.
	TLSSkipVerify bool
	// Auth is the node's Vault identity.
	Auth AuthConfig
	// RenewBefore renews the node's token this long before it expires;
	// zero, or more than half the token's TTL, renews when a third of the
	// TTL is left.
	RenewBefore time.Duration
	// PollInterval is how often the KV metadata of Secrets that follow the
	// latest version is checked for a new version; zero means
	// DefaultPollInterval. Failed reads are retried with a backoff up to
	// this interval.
	PollInterval time.Duration
	// RequestTimeout bounds each request to Vault; zero means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
}

// AuthConfig is the node's Vault identity: exactly one of AppRole and
// TokenFile.
type AuthConfig struct {
	// AppRole logs in with a role ID and a secret ID.
	AppRole *AppRoleAuth
	// TokenFile holds a Vault token; it is read again whenever the token
	// must be replaced (expired, revoked, not renewable), so an operator or
	// a tool can rotate it in place.
	TokenFile string
}

// AppRoleAuth is an AppRole login. The files are read at every login, so
// they can be rotated in place.
type AppRoleAuth struct {
	// RoleIDFile and SecretIDFile hold the role ID and the secret ID.
	RoleIDFile   string
	SecretIDFile string
	// MountPath is where the AppRole auth method is enabled, without
	// "auth/"; empty means DefaultAppRoleMount.
	MountPath string
}

// Validate checks the configuration and says what to fix.
func (c *Config) Validate() error {
	var errs []error
	if c.Address == "" {
		errs = append(errs, errors.New("vault address is empty: set it to Vault's URL, e.g. https://vault.example:8200"))
	} else if u, err := url.Parse(c.Address); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("vault address %q: want http(s)://host[:port]", c.Address))
	} else if u.Scheme == "http" && (c.CACertFile != "" || c.TLSSkipVerify) {
		errs = append(errs, fmt.Errorf("vault address %q is plain http but TLS settings are given: use https", c.Address))
	}
	if c.CACertFile != "" && c.TLSSkipVerify {
		errs = append(errs, errors.New("vault CA certificate file and TLS skip-verify both set: keep one"))
	}
	switch a := c.Auth; {
	case a.AppRole != nil && a.TokenFile != "":
		errs = append(errs, errors.New("vault auth: both AppRole and a token file are set: keep one"))
	case a.AppRole == nil && a.TokenFile == "":
		errs = append(errs, errors.New("vault auth: set AppRole (role ID and secret ID files) or a token file"))
	case a.AppRole != nil:
		if a.AppRole.RoleIDFile == "" || a.AppRole.SecretIDFile == "" {
			errs = append(errs, errors.New("vault AppRole auth: both the role ID file and the secret ID file are needed"))
		}
		if m := a.AppRole.MountPath; strings.HasPrefix(m, "/") || strings.HasPrefix(m, "auth/") || strings.Contains(m, "..") {
			errs = append(errs, fmt.Errorf("vault AppRole mount path %q: give the mount's path without auth/, e.g. approle", m))
		}
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"renew-before", c.RenewBefore}, {"poll interval", c.PollInterval}, {"request timeout", c.RequestTimeout}} {
		if d.d < 0 {
			errs = append(errs, fmt.Errorf("vault %s %v is negative", d.name, d.d))
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Auth.AppRole != nil {
		a := *c.Auth.AppRole
		if a.MountPath == "" {
			a.MountPath = DefaultAppRoleMount
		}
		a.MountPath = strings.Trim(a.MountPath, "/")
		c.Auth.AppRole = &a
	}
	return c
}
