package nodeagent

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func requireRootForMount(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping tmpfs projection test: needs root (it mounts tmpfs)")
	}
}

// mounted reports whether dir is a mount point in /proc/self/mountinfo.
func mounted(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

func TestTmpfsProjector(t *testing.T) {
	requireRootForMount(t)
	dir := filepath.Join(t.TempDir(), "pods", "uid", "volumes", "secret", "creds")
	p := TmpfsProjector{}
	t.Cleanup(func() { _ = p.Remove(dir) })

	files := []ProjectedFile{
		{Path: "password", Data: []byte("v1"), Mode: 0o400},
		{Path: "tls/cert.pem", Data: []byte("cert1"), Mode: 0o644},
	}
	if changed, err := p.Project(dir, files); err != nil || !changed {
		t.Fatalf("Project = %v, %v", changed, err)
	}
	var fsst unix.Statfs_t
	if err := unix.Statfs(dir, &fsst); err != nil || fsst.Type != unix.TMPFS_MAGIC {
		t.Fatalf("%s is not a tmpfs (type %#x, err %v)", dir, fsst.Type, err)
	}
	if !mounted(t, dir) {
		t.Fatalf("%s not in mountinfo", dir)
	}
	for path, want := range map[string]string{"password": "v1", "tls/cert.pem": "cert1"} {
		if b, err := os.ReadFile(filepath.Join(dir, path)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", path, b, err, want)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "password")); err != nil || st.Mode().Perm() != 0o400 {
		t.Errorf("password mode %v, %v; want 0400", st.Mode(), err)
	}

	// Unchanged files: no new version.
	before, _ := os.Readlink(filepath.Join(dir, dataLink))
	if changed, err := p.Project(dir, files); err != nil || changed {
		t.Fatalf("Project of the same files = %v, %v; want no change", changed, err)
	}
	if after, _ := os.Readlink(filepath.Join(dir, dataLink)); after != before {
		t.Errorf("projecting the same files swapped ..data: %s → %s", before, after)
	}

	// A file dropped and a top-level entry gone.
	if _, err := p.Project(dir, []ProjectedFile{{Path: "password", Data: []byte("v2"), Mode: 0o644}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "tls")); !os.IsNotExist(err) {
		t.Errorf("tls still there after it left the Secret: %v", err)
	}
	if vs, _ := filepath.Glob(filepath.Join(dir, versionGlob)); len(vs) != 2 {
		t.Errorf("versions %v, want the current and the previous", vs)
	}

	if err := p.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if mounted(t, dir) {
		t.Error("still mounted after Remove")
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("dir left after Remove: %v", err)
	}
	if err := p.Remove(dir); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

// TestTmpfsProjectorAtomicUpdate has a reader read the file while it is
// updated: every read gives a complete version, never an error, an empty
// or a mixed file.
func TestTmpfsProjectorAtomicUpdate(t *testing.T) {
	requireRootForMount(t)
	dir := filepath.Join(t.TempDir(), "vol")
	p := TmpfsProjector{}
	t.Cleanup(func() { _ = p.Remove(dir) })
	content := func(v int) []byte { return bytes.Repeat([]byte{byte('a' + v)}, 64<<10) }
	project := func(v int) {
		t.Helper()
		if _, err := p.Project(dir, []ProjectedFile{{Path: "key", Data: content(v), Mode: 0o644}}); err != nil {
			t.Fatal(err)
		}
	}
	project(0)

	const versions = 26
	var seen atomic.Int64 // the version the reader read last
	stop := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(filepath.Join(dir, "key"))
			if err != nil {
				errs <- err
				return
			}
			v := int(b[0] - 'a')
			if len(b) != 64<<10 || !bytes.Equal(b, content(v)) {
				errs <- fmt.Errorf("torn read: %d bytes starting %q", len(b), b[:1])
				return
			}
			seen.Store(int64(v))
		}
	}()
	for v := 1; v < versions; v++ {
		project(v)
		// Wait for the reader to see this version before the next: a
		// reader is then at most one swap behind, which the kept previous
		// version covers.
		deadline := time.Now().Add(10 * time.Second)
		for seen.Load() != int64(v) {
			select {
			case err := <-errs:
				t.Fatalf("reader after version %d: %v", v, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("reader never saw version %d", v)
			}
			time.Sleep(time.Millisecond)
		}
	}
	close(stop)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}
