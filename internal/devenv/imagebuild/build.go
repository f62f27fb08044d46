package imagebuild

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is a built image: its blobs and manifest, ready to push.
type Image struct {
	Layer          []byte // gzip-compressed tar
	LayerDigest    digest.Digest
	DiffID         digest.Digest // digest of the uncompressed tar
	Config         []byte
	ConfigDigest   digest.Digest
	Manifest       []byte
	ManifestDigest digest.Digest
}

// epoch is the mtime of every layer entry, so builds are reproducible.
var epoch = time.Unix(0, 0).UTC()

// Build reads the host busybox named by s.Busybox, lists its applets and
// builds the image. It runs the busybox binary once (`busybox --list`).
func Build(ctx context.Context, s Spec) (*Image, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	bb := s.Busybox
	if bb == "" {
		bb = DefaultBusybox
	}
	bin, err := os.ReadFile(bb)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: read busybox (install busybox-static, or run hack/install-deps.sh): %w", err)
	}
	out, err := exec.CommandContext(ctx, bb, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("imagebuild: %s --list: %w", bb, err)
	}
	var applets []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if a := strings.TrimSpace(sc.Text()); a != "" {
			applets = append(applets, a)
		}
	}
	return build(s, bin, applets, runtime.GOARCH)
}

// build is the pure core of Build: the same inputs give the same bytes.
func build(s Spec, busybox []byte, applets []string, arch string) (*Image, error) {
	tarball, err := layerTar(s.Files, busybox, applets)
	if err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz) // zero header: no name, no mtime
	if _, err := zw.Write(tarball); err != nil {
		return nil, fmt.Errorf("imagebuild: gzip layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("imagebuild: gzip layer: %w", err)
	}
	img := &Image{
		Layer:       gz.Bytes(),
		LayerDigest: digest.FromBytes(gz.Bytes()),
		DiffID:      digest.FromBytes(tarball),
	}
	if img.Config, err = imageConfig(s, img.DiffID, arch); err != nil {
		return nil, err
	}
	img.ConfigDigest = digest.FromBytes(img.Config)
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageConfig,
			Digest:    img.ConfigDigest,
			Size:      int64(len(img.Config)),
		},
		Layers: []ocispec.Descriptor{{
			MediaType: ocispec.MediaTypeImageLayerGzip,
			Digest:    img.LayerDigest,
			Size:      int64(len(img.Layer)),
		}},
	}
	if img.Manifest, err = json.Marshal(m); err != nil {
		return nil, fmt.Errorf("imagebuild: encode manifest: %w", err)
	}
	img.ManifestDigest = digest.FromBytes(img.Manifest)
	return img, nil
}

func imageConfig(s Spec, diffID digest.Digest, arch string) ([]byte, error) {
	env := append([]string(nil), s.Env...)
	hasPath := false
	for _, e := range env {
		hasPath = hasPath || strings.HasPrefix(e, "PATH=")
	}
	if !hasPath {
		env = append([]string{DefaultPath}, env...)
	}
	created := epoch
	c := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{Architecture: arch, OS: "linux"},
		Config: ocispec.ImageConfig{
			Env:        env,
			Entrypoint: s.Entrypoint,
			Cmd:        s.Cmd,
			WorkingDir: s.WorkingDir,
		},
		RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		History: []ocispec.History{{Created: &created, CreatedBy: "moor imagebuild: busybox-static + files"}},
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("imagebuild: encode config: %w", err)
	}
	return b, nil
}

// entry is one tar member; content is nil for directories and symlinks.
type entry struct {
	typ     byte
	mode    int64
	content []byte
	link    string
}

// layerTar renders the layer's uncompressed tar with sorted entries, fixed
// mtimes and root ownership.
func layerTar(files map[string]File, busybox []byte, applets []string) ([]byte, error) {
	dir := entry{typ: tar.TypeDir, mode: 0o755}
	es := map[string]entry{
		"bin": dir, "dev": dir, "etc": dir, "proc": dir, "sys": dir,
		"usr": dir, "usr/bin": dir, "root": {typ: tar.TypeDir, mode: 0o700},
		"tmp":         {typ: tar.TypeDir, mode: 0o1777},
		"bin/busybox": {typ: tar.TypeReg, mode: 0o755, content: busybox},
		"etc/passwd":  {typ: tar.TypeReg, mode: 0o644, content: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		"etc/group":   {typ: tar.TypeReg, mode: 0o644, content: []byte("root:x:0:\nnogroup:x:65534:\n")},
	}
	for _, a := range applets {
		if a == "busybox" || strings.ContainsAny(a, "/ ") {
			continue
		}
		es["bin/"+a] = entry{typ: tar.TypeSymlink, mode: 0o777, link: "busybox"}
	}
	for p, f := range files {
		name, err := cleanPath(p)
		if err != nil {
			return nil, err
		}
		mode := int64(f.Mode.Perm())
		if mode == 0 {
			mode = 0o644
		}
		es[name] = entry{typ: tar.TypeReg, mode: mode, content: f.Content}
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if e, ok := es[d]; ok && e.typ != tar.TypeDir {
				return nil, fmt.Errorf("imagebuild: file %q needs directory /%s, which is already a file or link", p, d)
			}
			if _, ok := es[d]; !ok {
				es[d] = dir
			}
		}
	}
	names := make([]string, 0, len(es))
	for n := range es {
		names = append(names, n)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if err := writeEntry(tw, n, es[n]); err != nil {
			return nil, fmt.Errorf("imagebuild: write layer entry %s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("imagebuild: close layer: %w", err)
	}
	return buf.Bytes(), nil
}

func writeEntry(tw *tar.Writer, name string, e entry) error {
	h := &tar.Header{
		Typeflag: e.typ,
		Name:     name,
		Mode:     e.mode,
		ModTime:  epoch,
		Linkname: e.link,
		// Format left to the writer: USTAR, or PAX for long names.
	}
	if e.typ == tar.TypeDir {
		h.Name += "/"
	}
	if e.typ == tar.TypeReg {
		h.Size = int64(len(e.content))
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if e.typ == tar.TypeReg {
		_, err := tw.Write(e.content)
		return err
	}
	return nil
}
