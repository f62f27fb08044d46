package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/nodeagent"
	"github.com/moor-dev/moor/secrets"
)

// vaultOptions are the Vault flags of `moor agent`: the node's own Vault
// identity, given at join (nodes read their pods' Secrets straight from
// Vault; the server never sees a value).
type vaultOptions struct {
	address      string
	caCert       string
	roleIDFile   string
	secretIDFile string
	approleMount string
	tokenFile    string
	poll         time.Duration
}

func (v *vaultOptions) bind(f *pflag.FlagSet) {
	f.StringVar(&v.address, "vault-addr", "", "Vault URL the node reads its pods' Secrets from (https://vault:8200); empty: only plain Secrets")
	f.StringVar(&v.caCert, "vault-ca-cert", "", "PEM file verifying Vault's TLS certificate")
	f.StringVar(&v.roleIDFile, "vault-role-id-file", "", "file holding this node's AppRole role ID")
	f.StringVar(&v.secretIDFile, "vault-secret-id-file", "", "file holding this node's AppRole secret ID")
	f.StringVar(&v.approleMount, "vault-approle-mount", secrets.DefaultAppRoleMount, "path the AppRole auth method is enabled at")
	f.StringVar(&v.tokenFile, "vault-token-file", "", "file holding a Vault token (instead of AppRole); re-read when the token must be replaced")
	f.DurationVar(&v.poll, "vault-poll-interval", secrets.DefaultPollInterval, "how often Secrets that follow the latest KV version are checked for a new one")
}

// manager returns the node's Vault client, nil when no address is set.
func (v *vaultOptions) manager(log *slog.Logger) (*secrets.Manager, error) {
	if v.address == "" {
		return nil, nil
	}
	cfg := secrets.Config{Address: v.address, CACertFile: v.caCert, PollInterval: v.poll,
		Auth: secrets.AuthConfig{TokenFile: v.tokenFile}}
	if v.roleIDFile != "" || v.secretIDFile != "" {
		cfg.Auth.AppRole = &secrets.AppRoleAuth{RoleIDFile: v.roleIDFile, SecretIDFile: v.secretIDFile, MountPath: v.approleMount}
	}
	return secrets.New(cfg, log.With("component", "secrets"))
}

// vaultSecrets adapts secrets.Manager to the agent's SecretSource.
type vaultSecrets struct{ m *secrets.Manager }

var _ nodeagent.SecretSource = vaultSecrets{}

func (s vaultSecrets) Get(ctx context.Context, ref api.SecretRef, minVersion int64) (nodeagent.SecretData, error) {
	v, err := s.m.Get(ctx, ref, minVersion)
	return nodeagent.SecretData{Version: v.Version, Data: v.Data}, err
}

func (s vaultSecrets) Watch(refs []api.SecretRef) { s.m.Set(refs) }
func (s vaultSecrets) Changes() <-chan string     { return s.m.Changes() }
func (s vaultSecrets) Status() []api.SecretStatus { return s.m.Status() }
