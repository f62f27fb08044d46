package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moor-dev/moor/api"
)

// The fake serves the Secret fixtures to every test; only the Secret
// tests ask for them.
func (f *fakeReader) Secrets(context.Context) ([]api.SecretView, error) {
	return secretFixtures(), f.err
}

func secretFixtures() []api.SecretView {
	return []api.SecretView{{
		Namespace: "default", Name: "db", Type: "Opaque", Commit: shaDeployed,
		Vault: &api.VaultSource{Engine: api.VaultEngineKV, Path: "secret/data/shop/db", Keys: map[string]string{"password": "pass", "username": "user"}},
		Nodes: []api.SecretNodeView{
			{Node: "node-a", Pods: []string{"web-5d8f9c7b6a-abcde"}, Version: 4, Keys: []string{"password", "username"}, ReadAt: ago(2 * time.Minute)},
			{Node: "node-b", Pods: []string{"web-5d8f9c7b6a-fghij"}, Version: 3, Keys: []string{"password", "username"}, ReadAt: ago(time.Hour),
				Error: "permission denied: the node's Vault policy does not allow reading secret/data/shop/db"},
		},
	}, {
		Namespace: "default", Name: "registry", Type: "kubernetes.io/dockerconfigjson", Commit: shaDeployed,
		Vault: &api.VaultSource{Engine: api.VaultEngineKV, Path: "secret/data/registry", Version: 2},
		Nodes: []api.SecretNodeView{{Node: "node-a", Pods: []string{"web-5d8f9c7b6a-abcde"}, Version: 2, Keys: []string{".dockerconfigjson"}, ReadAt: ago(10 * time.Minute)}},
	}, {
		Namespace: "default", Name: "unread", Type: "Opaque", Commit: shaDeployed,
		Vault: &api.VaultSource{Engine: api.VaultEngineKV, Path: "secret/data/unread"},
		Nodes: []api.SecretNodeView{{Node: "node-c", Pods: []string{"p"}}},
	}, {
		Namespace: "shop", Name: "db-dynamic", Type: "Opaque", Commit: shaHead,
		Vault: &api.VaultSource{Engine: api.VaultEngineLease, Path: "database/creds/shop-ro"},
		Nodes: []api.SecretNodeView{{Node: "node-a", Pods: []string{"api-1"}, Version: testNow.Add(-time.Hour).Unix(), Keys: []string{"password", "username"},
			LeaseExpires: testNow.Add(20 * time.Minute), ReadAt: ago(30 * time.Second)}},
	}, {
		Namespace: "shop", Name: "dev", Type: "Opaque", Commit: shaHead, PlainKeys: []string{"id", "token"},
	}}
}

func TestGetSecretsGolden(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr bool
	}{
		{"secrets", []string{"get", "secrets"}, false},
		{"secrets-all-namespaces-wide", []string{"get", "secret", "-A", "-o", "wide"}, false},
		{"secret-yaml", []string{"get", "secret/db", "-o", "yaml"}, false},
		{"secrets-name", []string{"get", "secrets", "-n", "shop", "-o", "name"}, false},
		{"secret-not-found", []string{"get", "secret", "nope"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runRoot(t, fakeGet(fixtures()), tc.args...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v\n%s", err, tc.wantErr, got)
			}
			checkGolden(t, "get-"+tc.name, []byte(got))
		})
	}
}

// TestSecretOutputHoldsNoValues: nothing the CLI prints about a Secret can
// hold a value, since views carry none; the plain Secret shows key names.
func TestSecretOutputHoldsNoValues(t *testing.T) {
	got, err := runRoot(t, fakeGet(fixtures()), "get", "secrets", "-A", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"keys": [`, `"id"`, `"token"`, `"vault.moor.dev/path": "secret/data/shop/db"`, `"vault.moor.dev/key.password": "pass"`} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, `"data"`) || strings.Contains(got, `"stringData"`) {
		t.Errorf("output has a data field:\n%s", got)
	}
}
