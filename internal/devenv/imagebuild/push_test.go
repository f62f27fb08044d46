package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/moor-dev/moor/internal/devenv/registry"
)

// startRegistry starts a throwaway registry, skipping when the binaries
// this test needs are missing.
func startRegistry(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(registry.DefaultBinary); err != nil {
		t.Skipf("needs %s (apt-get install docker-registry): %v", registry.DefaultBinary, err)
	}
	if out, err := exec.Command("file", "-L", DefaultBusybox).Output(); err != nil || !bytes.Contains(out, []byte("statically linked")) {
		t.Skipf("needs a static %s (apt-get install busybox-static): %s %v", DefaultBusybox, out, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := registry.Start(ctx, registry.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop() })
	return r.Addr()
}

func get(t *testing.T, url, accept string) ([]byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d: %s", url, resp.StatusCode, b)
	}
	return b, resp.Header
}

func TestPushRoundTrip(t *testing.T) {
	addr := startRegistry(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	s := DemoSpec(addr)
	d1, err := Push(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := Push(ctx, s)
	if err != nil {
		t.Fatalf("second push: %v", err)
	}
	if d1 != d2 {
		t.Fatalf("same Spec pushed twice: %s then %s", d1, d2)
	}

	base := "http://" + addr + "/v2/" + s.Repository
	body, h := get(t, base+"/manifests/"+s.Tag, ocispec.MediaTypeImageManifest)
	if got := digest.FromBytes(body).String(); got != d1 {
		t.Fatalf("fetched manifest digest %s, Push returned %s", got, d1)
	}
	if got := h.Get("Docker-Content-Digest"); got != d1 {
		t.Fatalf("Docker-Content-Digest %s, want %s", got, d1)
	}
	if ct := h.Get("Content-Type"); ct != ocispec.MediaTypeImageManifest {
		t.Fatalf("manifest Content-Type %q", ct)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	cfg, _ := get(t, base+"/blobs/"+m.Config.Digest.String(), "")
	var img ocispec.Image
	if err := json.Unmarshal(cfg, &img); err != nil {
		t.Fatal(err)
	}
	if img.OS != "linux" || len(img.RootFS.DiffIDs) != 1 || len(img.Config.Cmd) == 0 {
		t.Fatalf("unexpected config: %s", cfg)
	}
	layer, _ := get(t, base+"/blobs/"+m.Layers[0].Digest.String(), "")
	checkLayer(t, layer, img.RootFS.DiffIDs[0])

	// A different tag of the same content reuses the blobs and digest.
	s.Tag = "again"
	if d3, err := Push(ctx, s); err != nil || d3 != d1 {
		t.Fatalf("push as another tag = %s, %v; want %s", d3, err, d1)
	}
}

// checkLayer verifies the diff ID and that busybox and its links are there.
func checkLayer(t *testing.T, layer []byte, diffID digest.Digest) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if got := digest.FromBytes(raw); got != diffID {
		t.Fatalf("layer diff ID %s, config says %s", got, diffID)
	}
	host, err := os.ReadFile(DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[h.Name] = h
		if h.Name == "bin/busybox" {
			b, _ := io.ReadAll(tr)
			if !bytes.Equal(b, host) {
				t.Fatal("bin/busybox differs from the host's")
			}
		}
	}
	for _, want := range []string{"bin/busybox", "bin/sh", "bin/httpd", "bin/sleep", "etc/passwd", "tmp/", "www/index.html"} {
		if seen[want] == nil {
			t.Errorf("layer lacks %s", want)
		}
	}
	if h := seen["bin/sh"]; h != nil && (h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox") {
		t.Errorf("bin/sh = type %c -> %q, want symlink to busybox", h.Typeflag, h.Linkname)
	}
}

func TestPushRegistryDown(t *testing.T) {
	if _, err := os.Stat(DefaultBusybox); err != nil {
		t.Skipf("needs %s: %v", DefaultBusybox, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Push(ctx, DemoSpec("127.0.0.1:1")); err == nil {
		t.Fatal("push to a closed port succeeded")
	}
}
