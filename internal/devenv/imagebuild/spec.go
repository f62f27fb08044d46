// Package imagebuild builds small OCI images without Docker and pushes them
// to a registry over the distribution HTTP API v2 (plain HTTP, loopback).
//
// An image is one gzip layer holding the host's static busybox, a symlink
// per applet in /bin, a minimal /etc/passwd and /etc/group, /tmp and the
// caller's files. Building is deterministic: the same Spec on the same host
// busybox gives the same bytes and so the same manifest digest.
//
// It owns the layer, config and manifest encodings and the push protocol.
// It does not run registries (see registry) or talk to containerd.
package imagebuild

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path"
	"regexp"
	"strings"
)

// DefaultBusybox is the host's busybox-static binary copied into images.
const DefaultBusybox = "/bin/busybox"

// DefaultPath is the PATH set in the image config when Env has none.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Spec describes an image and where to push it.
type Spec struct {
	Registry   string // host:port of a plain-HTTP registry, e.g. 127.0.0.1:5310
	Repository string // e.g. moor/demo
	Tag        string // e.g. 1
	Entrypoint []string
	Cmd        []string
	Env        []string // KEY=VALUE; PATH defaults to DefaultPath
	WorkingDir string
	// Files are added to the layer, keyed by absolute path in the image.
	// Parent directories are created; a file replaces a busybox applet
	// link or a default /etc file of the same path.
	Files map[string]File
	// Busybox is the static busybox copied to /bin/busybox; default
	// DefaultBusybox.
	Busybox string
}

// File is a regular file's content and permission bits.
type File struct {
	Content []byte
	Mode    fs.FileMode // permission bits; 0 means 0644
}

// Ref is the image reference, "registry/repository:tag".
func (s Spec) Ref() string { return s.Registry + "/" + s.Repository + ":" + s.Tag }

// Same grammar as the distribution spec.
var (
	repoRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
)

// Validate reports a Spec that cannot be built or pushed.
func (s Spec) Validate() error {
	if _, _, err := net.SplitHostPort(s.Registry); err != nil || strings.Contains(s.Registry, "/") {
		return fmt.Errorf("imagebuild: Registry %q: want host:port such as 127.0.0.1:5310 (no scheme)", s.Registry)
	}
	if !repoRE.MatchString(s.Repository) {
		return fmt.Errorf("imagebuild: Repository %q: want lowercase path components such as moor/demo", s.Repository)
	}
	if !tagRE.MatchString(s.Tag) {
		return fmt.Errorf("imagebuild: Tag %q: want 1-128 of [A-Za-z0-9_.-], not starting with . or -", s.Tag)
	}
	for _, e := range s.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("imagebuild: Env entry %q: want KEY=VALUE", e)
		}
	}
	if s.WorkingDir != "" && !path.IsAbs(s.WorkingDir) {
		return fmt.Errorf("imagebuild: WorkingDir %q must be absolute", s.WorkingDir)
	}
	for p := range s.Files {
		if _, err := cleanPath(p); err != nil {
			return err
		}
	}
	return nil
}

var errBadPath = errors.New("bad path")

// cleanPath turns an absolute image path into a tar name without a leading
// slash, refusing the root, relative paths and "..".
func cleanPath(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("imagebuild: file %q: %w: must be absolute, like /etc/motd", p, errBadPath)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", fmt.Errorf("imagebuild: file %q: %w: must not contain ..", p, errBadPath)
		}
	}
	c := strings.TrimPrefix(path.Clean(p), "/")
	if c == "" {
		return "", fmt.Errorf("imagebuild: file %q: %w: names the root directory", p, errBadPath)
	}
	return c, nil
}

// DemoSpec is the demo image `moor up` pushes as registry/moor/demo:1 and
// repo-example/ runs. Its default command prints a line every 5 s; the
// manifests override it with busybox shell one-liners (httpd, loops).
func DemoSpec(registry string) Spec {
	return Spec{
		Registry:   registry,
		Repository: "moor/demo",
		Tag:        "1",
		Cmd:        []string{"/bin/sh", "-c", `while true; do echo "moor demo on $(hostname) at $(date -u +%FT%TZ)"; sleep 5; done`},
		Env:        []string{DefaultPath, "MOOR_DEMO=1"},
		WorkingDir: "/",
		Files: map[string]File{
			"/www/index.html": {Content: []byte("<h1>hello from moor</h1>\n")},
			"/etc/motd":       {Content: []byte("moor demo image: static busybox, nothing else\n")},
		},
	}
}
