package webhook

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/containerd/errdefs"
)

func TestConfigValidate(t *testing.T) {
	ok := func() Config {
		return Config{Branch: "main", Secrets: map[Provider]string{GitHub: "x"}, Trigger: NewTrigger(nil, nil)}
	}
	tests := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"no branch", func(c *Config) { c.Branch = "" }, false},
		{"full ref", func(c *Config) { c.Branch = "refs/heads/main" }, false},
		{"no trigger", func(c *Config) { c.Trigger = nil }, false},
		{"no secrets", func(c *Config) { c.Secrets = nil }, false},
		{"only empty secrets", func(c *Config) { c.Secrets = map[Provider]string{GitLab: ""} }, false},
		{"unknown provider", func(c *Config) { c.Secrets["gogs"] = "x" }, false},
		{"negative body cap", func(c *Config) { c.MaxBody = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok()
			tt.edit(&c)
			err := c.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errdefs.IsInvalidArgument(err) {
				t.Fatalf("error %v is not invalid-argument", err)
			}
			if tt.ok && (c.MaxBody != DefaultMaxBody || c.ReadTimeout != DefaultReadTimeout || c.DedupSize != DefaultDedupSize || c.Log == nil || c.Now == nil) {
				t.Fatalf("defaults not filled: %+v", c)
			}
		})
	}
}

func TestLoadSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := map[string]string{"MOOR_WEBHOOK_GITLAB_SECRET": " from-env \n", "MOOR_WEBHOOK_GENERIC_SECRET": ""}
	getenv := func(k string) string { return env[k] }

	yml := write("secrets.yaml", "github: \"It's a Secret to Everybody\"\ngitlab: from-file\nBitbucket: bb\ngitea: \"\"\n", 0o600)
	got, err := LoadSecrets(yml, getenv)
	if err != nil {
		t.Fatal(err)
	}
	want := map[Provider]string{GitHub: "It's a Secret to Everybody", GitLab: "from-env", Bitbucket: "bb"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadSecrets = %v, want %v", got, want)
	}

	js := write("secrets.json", `{"forgejo": "fj"}`, 0o400)
	if got, err := LoadSecrets(js, nil); err != nil || got[Forgejo] != "fj" {
		t.Fatalf("LoadSecrets(json) = %v, %v", got, err)
	}
	if got, err := LoadSecrets("", getenv); err != nil || !reflect.DeepEqual(got, map[Provider]string{GitLab: "from-env"}) {
		t.Fatalf("LoadSecrets(env only) = %v, %v", got, err)
	}

	if _, err := LoadSecrets(write("open.yaml", "github: x\n", 0o644), nil); !errdefs.IsPermissionDenied(err) {
		t.Fatalf("group-readable file: err = %v, want permission denied", err)
	}
	if _, err := LoadSecrets(write("bad.yaml", "gogs: x\n", 0o600), nil); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("unknown provider: err = %v, want invalid argument", err)
	}
	if _, err := LoadSecrets(write("list.yaml", "- x\n", 0o600), nil); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("not a map: err = %v, want invalid argument", err)
	}
	if _, err := LoadSecrets(filepath.Join(dir, "missing"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: err = %v", err)
	}
}
