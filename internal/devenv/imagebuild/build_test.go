package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func testSpec() Spec {
	return Spec{
		Registry:   "127.0.0.1:5310",
		Repository: "moor/test",
		Tag:        "1",
		Entrypoint: []string{"/bin/sh", "-c"},
		Cmd:        []string{"echo hi"},
		Env:        []string{"A=b"},
		WorkingDir: "/srv",
		Files: map[string]File{
			"/srv/www/index.html": {Content: []byte("hi\n")},
			"/usr/local/bin/run":  {Content: []byte("#!/bin/sh\necho run\n"), Mode: 0o755},
			"/bin/ls":             {Content: []byte("not a link\n"), Mode: 0o755},
		},
	}
}

var fakeApplets = []string{"busybox", "ls", "sh", "sleep"}

// listing renders a gzip tar layer as one line per entry.
func listing(t *testing.T, layer []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var b strings.Builder
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		content, _ := io.ReadAll(tr)
		fmt.Fprintf(&b, "%c %04o %d:%d %s %s", h.Typeflag, h.Mode, h.Uid, h.Gid, h.ModTime.UTC().Format("2006-01-02"), h.Name)
		if h.Linkname != "" {
			fmt.Fprintf(&b, " -> %s", h.Linkname)
		}
		if h.Typeflag == tar.TypeReg {
			fmt.Fprintf(&b, " %q", content)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s mismatch (go test -update to accept):\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestBuildGolden(t *testing.T) {
	img, err := build(testSpec(), []byte("BUSYBOX"), fakeApplets, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "layer.txt", []byte(listing(t, img.Layer)))
	golden(t, "config.json", append(img.Config, '\n'))
	golden(t, "manifest.json", append(img.Manifest, '\n'))
}

func TestBuildDeterministic(t *testing.T) {
	a, err := build(testSpec(), []byte("BUSYBOX"), fakeApplets, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		b, err := build(testSpec(), []byte("BUSYBOX"), fakeApplets, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		if a.ManifestDigest != b.ManifestDigest || !bytes.Equal(a.Layer, b.Layer) {
			t.Fatalf("build %d differs: %s vs %s", i, a.ManifestDigest, b.ManifestDigest)
		}
	}
	s := testSpec()
	s.Cmd = []string{"echo other"}
	c, err := build(s, []byte("BUSYBOX"), fakeApplets, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if c.ManifestDigest == a.ManifestDigest {
		t.Fatal("different Cmd gave the same digest")
	}
	if c.LayerDigest != a.LayerDigest {
		t.Fatal("Cmd changed the layer")
	}
}

func TestBuildDefaultPath(t *testing.T) {
	s := testSpec()
	img, err := build(s, []byte("x"), nil, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(img.Config, []byte(`"Env":["`+DefaultPath+`","A=b"]`)) {
		t.Errorf("config lacks default PATH first: %s", img.Config)
	}
	s.Env = []string{"PATH=/bin"}
	img, err = build(s, []byte("x"), nil, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(img.Config, []byte(`"Env":["PATH=/bin"]`)) {
		t.Errorf("config did not keep the caller's PATH: %s", img.Config)
	}
}

func TestBuildFileUnderFile(t *testing.T) {
	s := testSpec()
	s.Files = map[string]File{"/etc/passwd/x": {Content: []byte("x")}}
	_, err := build(s, []byte("x"), nil, "amd64")
	if err == nil {
		t.Fatal("want an error for a file below /etc/passwd")
	}
}

func TestValidate(t *testing.T) {
	mod := func(f func(*Spec)) Spec { s := testSpec(); f(&s); return s }
	tests := []struct {
		name    string
		spec    Spec
		wantErr error // nil: valid; errBadPath: that class; other: any error
	}{
		{"ok", testSpec(), nil},
		{"demo", DemoSpec("127.0.0.1:5310"), nil},
		{"scheme", mod(func(s *Spec) { s.Registry = "http://127.0.0.1:5310" }), errAny},
		{"no port", mod(func(s *Spec) { s.Registry = "127.0.0.1" }), errAny},
		{"upper repo", mod(func(s *Spec) { s.Repository = "Moor/demo" }), errAny},
		{"empty tag", mod(func(s *Spec) { s.Tag = "" }), errAny},
		{"dash tag", mod(func(s *Spec) { s.Tag = "-x" }), errAny},
		{"env", mod(func(s *Spec) { s.Env = []string{"NOEQ"} }), errAny},
		{"workdir", mod(func(s *Spec) { s.WorkingDir = "srv" }), errAny},
		{"relative file", mod(func(s *Spec) { s.Files = map[string]File{"etc/x": {}} }), errBadPath},
		{"dotdot file", mod(func(s *Spec) { s.Files = map[string]File{"/etc/../x": {}} }), errBadPath},
		{"root file", mod(func(s *Spec) { s.Files = map[string]File{"/": {}} }), errBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != nil && err == nil:
				t.Fatal("Validate() = nil, want an error")
			case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestDemoSpecRef(t *testing.T) {
	if got, want := DemoSpec("127.0.0.1:5310").Ref(), "127.0.0.1:5310/moor/demo:1"; got != want {
		t.Fatalf("Ref() = %q, want %q", got, want)
	}
}
