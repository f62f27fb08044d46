package source

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

// layout is the tree the Files tests read.
var layout = map[string]string{
	"README.md":                 "readme\n",
	"deploy/web.yaml":           "kind: Deployment\n",
	"deploy/svc/web.yaml":       "kind: Service\n",
	"deploy/nested/deep/x.yaml": "x\n",
	"deployments/other.yaml":    "not under deploy\n",
}

func TestFilesPathFiltering(t *testing.T) {
	u := newUpstream(t)
	u.commit("main", "layout", layout)
	// A symlink and a submodule under deploy/ are skipped.
	if err := os.Symlink("web.yaml", filepath.Join(u.work, "deploy", "link.yaml")); err != nil {
		t.Fatal(err)
	}
	u.git(u.work, "add", "-A")
	u.git(u.work, "update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("ab", 20)+",deploy/sub")
	u.git(u.work, "commit", "-q", "-m", "link and submodule")
	u.git(u.work, "push", "-q", "origin", "HEAD:refs/heads/main")
	head := u.git(u.work, "rev-parse", "HEAD")

	underDeploy := map[string][]byte{
		"web.yaml":           []byte("kind: Deployment\n"),
		"svc/web.yaml":       []byte("kind: Service\n"),
		"nested/deep/x.yaml": []byte("x\n"),
	}
	all := map[string][]byte{"README.md": []byte("readme\n"), "deployments/other.yaml": []byte("not under deploy\n")}
	for k, v := range underDeploy {
		all["deploy/"+k] = v
	}
	tests := []struct {
		path string
		want map[string][]byte
	}{
		{"", all},
		{".", all},
		{"/", all},
		{"deploy", underDeploy},
		{"deploy/", underDeploy},
		{"/deploy", underDeploy},
		{"./deploy/../deploy", underDeploy},
		{"deploy/nested", map[string][]byte{"deep/x.yaml": []byte("x\n")}},
	}
	for _, tt := range tests {
		t.Run("path="+tt.path, func(t *testing.T) {
			s := u.newSource(func(c *Config) { c.Path = tt.path })
			mustFetch(t, s, head, true)
			got, err := s.Files(context.Background(), head)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Files = %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestFilesErrors(t *testing.T) {
	u := newUpstream(t)
	head := u.commit("main", "layout", layout)
	tests := []struct {
		name   string
		mod    func(*Config)
		commit string
		class  func(error) bool
	}{
		{"ShortSHA", nil, head[:12], errdefs.IsInvalidArgument},
		{"NotHex", nil, strings.Repeat("z", 40), errdefs.IsInvalidArgument},
		{"UnknownCommit", nil, strings.Repeat("0", 39) + "1", errdefs.IsNotFound},
		{"MissingPath", func(c *Config) { c.Path = "nope" }, head, errdefs.IsNotFound},
		{"PathIsAFile", func(c *Config) { c.Path = "README.md" }, head, errdefs.IsNotFound},
		{"FileOverCap", func(c *Config) { c.MaxFileBytes = 10 }, head, errdefs.IsResourceExhausted},
		{"TotalOverCap", func(c *Config) { c.MaxFileBytes, c.MaxTotalBytes = 20, 30 }, head, errdefs.IsResourceExhausted},
		{"UnderCaps", func(c *Config) { c.Path, c.MaxFileBytes, c.MaxTotalBytes = "deploy", 17, 36 }, head, func(err error) bool { return err == nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := u.newSource(tt.mod)
			mustFetch(t, s, head, true)
			_, err := s.Files(context.Background(), tt.commit)
			if !tt.class(err) {
				t.Fatalf("Files: unexpected error %v", err)
			}
			t.Logf("error reads: %v", err)
		})
	}
}
