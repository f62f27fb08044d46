package cli

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moor-dev/moor/api"
)

func writeConfig(t *testing.T, path string, cfg *api.ClientConfig) {
	t.Helper()
	b, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// configFor is a config whose only context points at server.
func configFor(server string) *api.ClientConfig {
	return api.NewAdminConfig(server, []byte("ca"), []byte("cert"), []byte("key"))
}

func TestConfigDiscoveryOrder(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	flagPath, envPath := filepath.Join(dir, "flag.conf"), filepath.Join(dir, "env.conf")
	writeConfig(t, flagPath, configFor("https://flag:1"))
	writeConfig(t, envPath, configFor("https://env:1"))
	writeConfig(t, filepath.Join(home, ".moor", "config"), configFor("https://home:1"))

	cases := []struct {
		name       string
		flag, env  string
		wantServer string
	}{
		{"flag wins", flagPath, envPath, "https://flag:1"},
		{"env next", "", envPath, "https://env:1"},
		{"home last", "", "", "https://home:1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HOME", home)
			t.Setenv(EnvConfig, tc.env)
			rc, err := LoadContext(Options{ConfigPath: tc.flag})
			if err != nil {
				t.Fatal(err)
			}
			if rc.Cluster.Server != tc.wantServer {
				t.Errorf("server = %s, want %s", rc.Cluster.Server, tc.wantServer)
			}
		})
	}
}

func TestConfigMissingTellsWhereToLook(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, flag, env string
		want            []string
	}{
		{"default", "", "", []string{filepath.Join(dir, ".moor", "config"), "(from ~/.moor/config)", "$MOOR_CONFIG", "<data-dir>/admin.conf"}},
		{"env", "", filepath.Join(dir, "nope.conf"), []string{"nope.conf (from $MOOR_CONFIG)", "<data-dir>/admin.conf"}},
		{"flag", filepath.Join(dir, "f.conf"), "", []string{"f.conf (from --config)", "--config <data-dir>/admin.conf"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HOME", dir)
			t.Setenv(EnvConfig, tc.env)
			_, err := LoadContext(Options{ConfigPath: tc.flag})
			if !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("err = %v, want fs.ErrNotExist", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestConfigNoHome(t *testing.T) {
	_, err := locateConfig("", func(string) string { return "" }, func() (string, error) { return "", errors.New("$HOME is not defined") })
	if err == nil || !strings.Contains(err.Error(), "admin.conf") {
		t.Errorf("err = %v, want a hint at admin.conf", err)
	}
}

func TestConfigInvalidAndContexts(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.conf")
	cfg := configFor("https://a:1")
	cfg.Contexts = append(cfg.Contexts, api.NamedContext{Name: "other", Context: api.Context{Cluster: "moor", User: "admin"}})
	writeConfig(t, good, cfg)

	if _, err := LoadContext(Options{ConfigPath: bad}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("invalid config: err = %v, want it to name the file", err)
	}
	if _, err := LoadContext(Options{ConfigPath: good, Context: "missing"}); err == nil || !strings.Contains(err.Error(), `context "missing" not found`) {
		t.Errorf("missing context: err = %v", err)
	}
	cases := []struct {
		name   string
		o      Options
		wantNS string
	}{
		{"context namespace", Options{ConfigPath: good}, "default"},
		{"flag namespace", Options{ConfigPath: good, Namespace: "team"}, "team"},
		{"no context namespace", Options{ConfigPath: good, Context: "other"}, DefaultNamespace},
		{"all namespaces", Options{ConfigPath: good, AllNamespaces: true}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := LoadContext(tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if rc.Namespace != tc.wantNS {
				t.Errorf("namespace = %q, want %q", rc.Namespace, tc.wantNS)
			}
		})
	}
}
