package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	vaultapi "github.com/hashicorp/vault/api"

	"github.com/moor-dev/moor/api"
)

func kvRef(name, path string, version int64, keys map[string]string) api.SecretRef {
	return api.SecretRef{Namespace: "shop", Name: name, Type: "Opaque", Vault: &api.VaultSource{Engine: api.VaultEngineKV, Path: path, Version: version, Keys: keys}}
}

func leaseRef(name, path string) api.SecretRef {
	return api.SecretRef{Namespace: "shop", Name: name, Type: "Opaque", Vault: &api.VaultSource{Engine: api.VaultEngineLease, Path: path}}
}

func TestAppRolePerNodePolicies(t *testing.T) {
	t.Parallel()
	v := startVault(t, "")
	v.kvPut(t, "secret/data/pa/db", map[string]any{"user": "alice"})
	v.kvPut(t, "secret/data/pb/db", map[string]any{"user": "bob"})
	ctx := context.Background()

	a := newManager(t, v.nodeRole(t, "node-pa", nil, "pa"))
	b := newManager(t, v.nodeRole(t, "node-pb", nil, "pb"))

	got, err := a.Get(ctx, kvRef("a", "secret/data/pa/db", 0, nil), 0)
	if err != nil || string(got.Data["user"]) != "alice" || got.Version != 1 {
		t.Fatalf("node-pa reads its secret: %+v, %v", got, err)
	}
	_, err = a.Get(ctx, kvRef("b", "secret/data/pb/db", 0, nil), 0)
	if !errors.Is(err, ErrPermissionDenied) || !errdefs.IsPermissionDenied(err) {
		t.Fatalf("node-pa reads node-pb's secret: %v, want permission denied", err)
	}
	t.Logf("denied: %v", err)
	if !strings.Contains(err.Error(), "secret/data/pb/db") || strings.Contains(err.Error(), "bob") {
		t.Errorf("message %q must name the path and no value", err)
	}
	if got, err := b.Get(ctx, kvRef("b", "secret/data/pb/db", 0, nil), 0); err != nil || string(got.Data["user"]) != "bob" {
		t.Fatalf("node-pb reads its secret: %+v, %v", got, err)
	}
	if _, err := b.Get(ctx, kvRef("a", "secret/data/pa/db", 0, nil), 0); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("node-pb reads node-pa's secret: %v, want permission denied", err)
	}
	if st := statusOf(a, "b"); !strings.Contains(st.Error, "secret/data/pb/db") {
		t.Errorf("status of the denied secret: %+v", st)
	}

	// A wrong secret ID is a rejected login.
	cfg := v.nodeRole(t, "node-pbad", nil, "pa")
	writeFile(t, cfg.Auth.AppRole.SecretIDFile, "not-the-secret-id")
	_, err = newManager(t, cfg).Get(ctx, kvRef("a", "secret/data/pa/db", 0, nil), 0)
	if !errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), "auth/approle/login") {
		t.Fatalf("login with a wrong secret ID: %v, want permission denied naming the login path", err)
	}
}

func TestKVVersionsKeysAndMissing(t *testing.T) {
	t.Parallel()
	v := startVault(t, "")
	v.kvPut(t, "secret/data/kv/db", map[string]any{"user": "u1", "pass": "p1"})
	v.kvPut(t, "secret/data/kv/db", map[string]any{"user": "u2", "pass": "p2"})
	m := newManager(t, v.nodeRole(t, "node-kv", nil, "kv"))
	ctx := context.Background()

	latest, err := m.Get(ctx, kvRef("latest", "secret/data/kv/db", 0, nil), 0)
	if err != nil || latest.Version != 2 || string(latest.Data["pass"]) != "p2" || len(latest.Data) != 2 {
		t.Fatalf("latest: %+v, %v", latest, err)
	}
	pinned, err := m.Get(ctx, kvRef("pinned", "secret/data/kv/db", 1, nil), 0)
	if err != nil || pinned.Version != 1 || string(pinned.Data["pass"]) != "p1" {
		t.Fatalf("pinned version 1: %+v, %v", pinned, err)
	}
	mapped, err := m.Get(ctx, kvRef("mapped", "secret/data/kv/db", 0, map[string]string{"username": "user"}), 0)
	if err != nil || len(mapped.Data) != 1 || string(mapped.Data["username"]) != "u2" {
		t.Fatalf("mapped: %+v, %v", mapped, err)
	}

	_, err = m.Get(ctx, kvRef("nokey", "secret/data/kv/db", 0, map[string]string{"token": "api-token"}), 0)
	var e *Error
	if !errors.Is(err, ErrKeyMissing) || !errdefs.IsNotFound(err) || !errors.As(err, &e) || e.Path != "secret/data/kv/db" || e.Key != "api-token" {
		t.Fatalf("missing key: %v, want ErrKeyMissing naming path and key", err)
	}
	t.Logf("key missing: %v", err)
	if strings.Contains(err.Error(), "p2") {
		t.Errorf("message %q quotes a value", err)
	}

	_, err = m.Get(ctx, kvRef("nopath", "secret/data/kv/nothing", 0, nil), 0)
	t.Logf("not found: %v", err)
	if !errors.Is(err, ErrNotFound) || !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "secret/data/kv/nothing") {
		t.Fatalf("missing path: %v, want ErrNotFound naming the path", err)
	}
	_, err = m.Get(ctx, kvRef("noversion", "secret/data/kv/db", 9, nil), 0)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no version 9") {
		t.Fatalf("missing version: %v, want ErrNotFound naming the version", err)
	}

	// minVersion: a cached older version is re-read.
	v.kvPut(t, "secret/data/kv/db", map[string]any{"user": "u3", "pass": "p3"})
	got, err := m.Get(ctx, kvRef("latest", "secret/data/kv/db", 0, nil), 3)
	if err != nil || got.Version != 3 || string(got.Data["pass"]) != "p3" {
		t.Fatalf("Get with minVersion 3: %+v, %v", got, err)
	}
	if _, err := m.Get(ctx, kvRef("latest", "secret/data/kv/db", 0, nil), 4); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "at least version 4") {
		t.Fatalf("Get with minVersion 4: %v, want an error naming the version", err)
	}

	// A deleted latest version is not found; the pinned one still reads.
	if _, err := v.root.Logical().Delete("secret/data/kv/db"); err != nil {
		t.Fatal(err)
	}
	_, err = m.Get(ctx, kvRef("deleted", "secret/data/kv/db", 0, nil), 0)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "version 3 of vault secret secret/data/kv/db is deleted") {
		t.Fatalf("deleted latest version: %v", err)
	}

	st := statusOf(m, "pinned")
	if st.Version != 1 || fmt.Sprint(st.Keys) != "[pass user]" || st.Error != "" {
		t.Errorf("status of pinned: %+v", st)
	}
}

func TestRotationNotifies(t *testing.T) {
	t.Parallel()
	v := startVault(t, "")
	v.kvPut(t, "secret/data/rot/app", map[string]any{"token": "t1"})
	m := newManager(t, v.nodeRole(t, "node-rot", nil, "rot"))
	run(t, m)
	ctx := context.Background()
	latest := kvRef("app", "secret/data/rot/app", 0, nil)
	pinned := kvRef("app-v1", "secret/data/rot/app", 1, nil)
	m.Set([]api.SecretRef{latest, pinned})
	if got, err := m.Get(ctx, latest, 0); err != nil || string(got.Data["token"]) != "t1" {
		t.Fatalf("first read: %+v, %v", got, err)
	}

	v.kvPut(t, "secret/data/rot/app", map[string]any{"token": "t2"})
	got := waitChange(t, m, latest, 10*time.Second, func(v Values) bool { return v.Version == 2 })
	if string(got.Data["token"]) != "t2" {
		t.Fatalf("after rotation: %+v", got)
	}
	if got, err := m.Get(ctx, pinned, 0); err != nil || got.Version != 1 || string(got.Data["token"]) != "t1" {
		t.Fatalf("pinned after rotation: %+v, %v", got, err)
	}

	// Set drops what is no longer needed.
	m.Set([]api.SecretRef{latest})
	if st := m.Status(); len(st) != 1 || st[0].Name != "app" || st[0].Version != 2 {
		t.Fatalf("status after Set: %+v", st)
	}
}

func TestLeaseRenewalAndReissue(t *testing.T) {
	t.Parallel()
	v := startVault(t, "")
	// A second leased mount whose leases cannot outlive 6s, so renewals
	// are capped and the secret must be re-read.
	if err := v.root.Sys().Mount("leased-short", &vaultapi.MountInput{Type: "leased-kv", Config: vaultapi.MountConfigInput{MaxLeaseTTL: "6s"}}); err != nil {
		t.Fatal(err)
	}
	v.write(t, "leased/lease/db", map[string]any{"password": "pw1", "ttl": "3s"})
	v.write(t, "leased-short/lease/db", map[string]any{"password": "pw1", "ttl": "3s"})
	m := newManager(t, v.nodeRole(t, "node-lease", nil, "lease"))
	run(t, m)
	ctx := context.Background()
	long := leaseRef("db", "leased/lease/db")
	short := leaseRef("db-short", "leased-short/lease/db")

	first, err := m.Get(ctx, long, 0)
	if err != nil || string(first.Data["password"]) != "pw1" || first.LeaseExpires.IsZero() {
		t.Fatalf("first read: %+v, %v", first, err)
	}
	if _, err := m.Get(ctx, short, 0); err != nil {
		t.Fatal(err)
	}
	leaseID := func(key string) string {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.entries[key].lease.id
	}
	id := leaseID("shop/db")

	// Renewed at 2/3 of its TTL: same lease, later expiry, no change.
	eventually(t, 10*time.Second, "lease renewed", func() error {
		st := statusOf(m, "db")
		if !st.Lease.After(first.LeaseExpires) {
			return fmt.Errorf("lease expiry still %v", st.Lease)
		}
		return nil
	})
	if got := leaseID("shop/db"); got != id {
		t.Fatalf("lease replaced (%s -> %s) where a renewal was due", id, got)
	}

	// Revoked: renewal fails, the secret is read again with a new lease.
	v.write(t, "leased/lease/db", map[string]any{"password": "pw2", "ttl": "3s"})
	if err := v.root.Sys().Revoke(id); err != nil {
		t.Fatal(err)
	}
	got := waitChange(t, m, long, 10*time.Second, func(v Values) bool { return string(v.Data["password"]) == "pw2" })
	if got.Version <= first.Version || leaseID("shop/db") == id {
		t.Fatalf("after revocation: version %d (first %d), lease %s (first %s)", got.Version, first.Version, leaseID("shop/db"), id)
	}

	// Capped by the mount's max TTL: re-issued without outside help.
	shortID := leaseID("shop/db-short")
	waitChange(t, m, short, 15*time.Second, func(Values) bool { return leaseID("shop/db-short") != shortID })
	if st := statusOf(m, "db-short"); st.Error != "" || st.Lease.Before(time.Now()) {
		t.Errorf("status after re-issue: %+v", st)
	}
}

func TestTokenRenewalAndReauth(t *testing.T) {
	t.Parallel()
	v := startVault(t, "")
	v.kvPut(t, "secret/data/tok/app", map[string]any{"k": "v1"})
	// Tokens live 2s and at most 5s: renewed twice or so, then replaced.
	cfg := v.nodeRole(t, "node-tok", map[string]any{"token_ttl": "2s", "token_max_ttl": "5s"}, "tok")
	m := newManager(t, cfg)
	run(t, m)
	ctx := context.Background()
	ref := kvRef("app", "secret/data/tok/app", 0, nil)
	if _, err := m.Get(ctx, ref, 0); err != nil {
		t.Fatal(err)
	}
	m.Set([]api.SecretRef{ref})

	// Over three max TTLs the node logs in again at least twice and its
	// polls never fail.
	var firstToken = m.auth.current().value
	deadline := time.Now().Add(12 * time.Second)
	for m.auth.logins.Load() < 3 && time.Now().Before(deadline) {
		if st := statusOf(m, "app"); st.Error != "" {
			t.Fatalf("poll failed while the token rotates: %s", st.Error)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := m.auth.logins.Load(); n < 3 {
		t.Fatalf("%d logins in 12s with a 5s max TTL, want 3 or more", n)
	}
	if m.auth.current().value == firstToken {
		t.Fatal("token never replaced")
	}
	if n := m.auth.renewals.Load(); n < 2 {
		t.Fatalf("%d token renewals, want some before each new login", n)
	}

	// A revoked token is noticed on the next request and replaced.
	tok := m.auth.current().value
	if err := v.root.Auth().Token().RevokeTree(tok); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Get(ctx, kvRef("fresh", "secret/data/tok/app", 0, nil), 0); err != nil || string(got.Data["k"]) != "v1" {
		t.Fatalf("read after revocation: %+v, %v", got, err)
	}
	if m.auth.current().value == tok {
		t.Fatal("revoked token still in use")
	}
}

func TestVaultKilledAndRestarted(t *testing.T) {
	t.Parallel()
	v := startVault(t, t.TempDir())
	v.kvPut(t, "secret/data/kill/app", map[string]any{"k": "v1"})
	v.write(t, "leased/kill/db", map[string]any{"password": "pw", "ttl": "3s"})
	m := newManager(t, v.nodeRole(t, "node-kill", nil, "kill"))
	run(t, m)
	ctx := context.Background()
	kv := kvRef("app", "secret/data/kill/app", 0, nil)
	lease := leaseRef("db", "leased/kill/db")
	m.Set([]api.SecretRef{kv, lease})
	if _, err := m.Get(ctx, kv, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, lease, 0); err != nil {
		t.Fatal(err)
	}

	v.kill(t)
	eventually(t, 10*time.Second, "kv poll fails as unavailable", func() error {
		if err := entryErr(m, "shop/app"); !errors.Is(err, ErrUnavailable) || !errdefs.IsUnavailable(err) {
			return fmt.Errorf("error %v", err)
		}
		return nil
	})
	eventually(t, 10*time.Second, "lease renewal fails as unavailable", func() error {
		if err := entryErr(m, "shop/db"); !errors.Is(err, ErrUnavailable) {
			return fmt.Errorf("error %v", err)
		}
		return nil
	})
	t.Logf("unreachable: %s", statusOf(m, "app").Error)
	if st := statusOf(m, "app"); !strings.Contains(st.Error, "unreachable") || st.Version != 1 {
		t.Errorf("status while vault is down: %+v", st)
	}
	if got, err := m.Get(ctx, kv, 0); err != nil || string(got.Data["k"]) != "v1" {
		t.Fatalf("last values while vault is down: %+v, %v", got, err)
	}
	if got, err := m.Get(ctx, lease, 0); err != nil || string(got.Data["password"]) != "pw" {
		t.Fatalf("last lease values while vault is down: %+v, %v", got, err)
	}
	if _, err := m.Get(ctx, kvRef("new", "secret/data/kill/other", 0, nil), 0); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), v.Addr) {
		t.Fatalf("new secret while vault is down: %v, want unavailable naming the address", err)
	}

	v = v.restart(t)
	eventually(t, 15*time.Second, "recovered after restart", func() error {
		for _, name := range []string{"app", "db"} {
			if st := statusOf(m, name); st.Error != "" {
				return fmt.Errorf("%s: %s", name, st.Error)
			}
		}
		return nil
	})
	v.kvPut(t, "secret/data/kill/app", map[string]any{"k": "v2"})
	waitChange(t, m, kv, 10*time.Second, func(v Values) bool { return string(v.Data["k"]) == "v2" })
}

func TestVaultSealedAndUnsealed(t *testing.T) {
	t.Parallel()
	v := startVault(t, "")
	v.kvPut(t, "secret/data/seal/app", map[string]any{"k": "v1"})
	m := newManager(t, v.nodeRole(t, "node-seal", nil, "seal"))
	run(t, m)
	ctx := context.Background()
	kv := kvRef("app", "secret/data/seal/app", 0, nil)
	m.Set([]api.SecretRef{kv})
	if _, err := m.Get(ctx, kv, 0); err != nil {
		t.Fatal(err)
	}

	if err := v.root.Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "poll fails as sealed", func() error {
		err := entryErr(m, "shop/app")
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "sealed") {
			return fmt.Errorf("error %v", err)
		}
		return nil
	})
	t.Logf("sealed: %v", entryErr(m, "shop/app"))
	if got, err := m.Get(ctx, kv, 0); err != nil || string(got.Data["k"]) != "v1" {
		t.Fatalf("last values while sealed: %+v, %v", got, err)
	}
	if _, err := m.Get(ctx, kvRef("new", "secret/data/seal/other", 0, nil), 0); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "sealed") {
		t.Fatalf("new secret while sealed: %v, want unavailable (sealed)", err)
	}

	if _, err := v.root.Sys().Unseal(v.UnsealKey); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "recovered after unseal", func() error {
		if st := statusOf(m, "app"); st.Error != "" {
			return errors.New(st.Error)
		}
		return nil
	})
	v.kvPut(t, "secret/data/seal/app", map[string]any{"k": "v2"})
	waitChange(t, m, kv, 10*time.Second, func(v Values) bool { return string(v.Data["k"]) == "v2" })
}

func TestTokenFileAuth(t *testing.T) {
	t.Parallel()
	v := startVault(t, "")
	v.kvPut(t, "secret/data/tf/app", map[string]any{"k": "v"})
	cfg := v.nodeRole(t, "node-tf", nil, "tf")
	sec := v.write(t, "auth/token/create", map[string]any{"policies": []string{"node-tf"}, "ttl": "1h"})
	cfg.Auth = AuthConfig{TokenFile: cfg.Auth.AppRole.RoleIDFile + ".token"}
	writeFile(t, cfg.Auth.TokenFile, sec.Auth.ClientToken)
	m := newManager(t, cfg)
	ctx := context.Background()
	if got, err := m.Get(ctx, kvRef("app", "secret/data/tf/app", 0, nil), 0); err != nil || string(got.Data["k"]) != "v" {
		t.Fatalf("read with a token file: %+v, %v", got, err)
	}

	// Revoked and replaced in the file: the next read uses the new one.
	if err := v.root.Auth().Token().RevokeTree(sec.Auth.ClientToken); err != nil {
		t.Fatal(err)
	}
	_, err := m.Get(ctx, kvRef("app2", "secret/data/tf/app", 0, nil), 0)
	if !errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), cfg.Auth.TokenFile) {
		t.Fatalf("read with a revoked token: %v, want permission denied naming the token file", err)
	}
	sec = v.write(t, "auth/token/create", map[string]any{"policies": []string{"node-tf"}, "ttl": "1h"})
	writeFile(t, cfg.Auth.TokenFile, sec.Auth.ClientToken)
	if _, err := m.Get(ctx, kvRef("app2", "secret/data/tf/app", 0, nil), 0); err != nil {
		t.Fatalf("read after the token file was replaced: %v", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRotationWithoutMetadataAccess: a policy that allows the data but not
// the metadata still gets new versions, by reading the data each poll.
func TestRotationWithoutMetadataAccess(t *testing.T) {
	t.Parallel()
	v := startVault(t, "")
	v.kvPut(t, "secret/data/nometa/app", map[string]any{"token": "t1"})
	cfg := v.nodeRole(t, "node-nometa", nil, "nometa")
	if err := v.root.Sys().PutPolicy("node-nometa", `path "secret/data/nometa/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, cfg)
	run(t, m)
	ref := kvRef("app", "secret/data/nometa/app", 0, nil)
	if _, err := m.Get(context.Background(), ref, 0); err != nil {
		t.Fatal(err)
	}
	v.kvPut(t, "secret/data/nometa/app", map[string]any{"token": "t2"})
	got := waitChange(t, m, ref, 10*time.Second, func(v Values) bool { return v.Version == 2 })
	if string(got.Data["token"]) != "t2" {
		t.Fatalf("after rotation: %+v", got)
	}
	if st := statusOf(m, "app"); st.Error != "" {
		t.Errorf("status: %+v", st)
	}
}
