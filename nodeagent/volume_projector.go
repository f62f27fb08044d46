package nodeagent

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// ProjectedFile is one file of a secret volume.
type ProjectedFile struct {
	// Path is relative to the volume, clean, without ".." components.
	Path string
	Data []byte
	Mode fs.FileMode // permission bits
}

// Projector keeps the files of secret volumes where containers bind-mount
// them. Implementations must never put the data on disk.
type Projector interface {
	// Project makes dir hold exactly files, creating dir (and its tmpfs)
	// on first use, and reports whether it changed anything. A reader of
	// dir/<path> sees either the old or the new content of every file,
	// never a mix or a partial file; a call with the files dir already
	// holds changes nothing.
	Project(dir string, files []ProjectedFile) (changed bool, err error)
	// Remove unmounts and deletes dir; a missing dir is not an error.
	Remove(dir string) error
}

// TmpfsProjector is the Projector on the kernel: every volume directory is
// its own tmpfs (nosuid, nodev, noexec; needs CAP_SYS_ADMIN), written the
// way the kubelet's atomic writer does. The files live in a hidden
// directory "..v<random>"; "..data" is a symlink to the current one and
// each top-level entry a symlink through "..data", so an update writes a
// new directory and swaps "..data" with one rename. The previous version
// stays until the next update, so a reader that resolved "..data" just
// before a swap still finds its files.
type TmpfsProjector struct {
	// SizeBytes caps each volume's tmpfs; 0 means DefaultSecretVolumeSize.
	SizeBytes int64
}

// DefaultSecretVolumeSize caps a secret volume's tmpfs: two versions of a
// Secret of Kubernetes' maximum size (1 MiB) and room to spare.
const DefaultSecretVolumeSize = 4 << 20

var _ Projector = TmpfsProjector{}

const (
	dataLink      = "..data"
	dataLinkTmp   = "..data_tmp"
	versionGlob   = "..v*"
	versionPrefix = "..v"
)

// Project implements Projector.
func (p TmpfsProjector) Project(dir string, files []ProjectedFile) (bool, error) {
	if err := checkProjectedFiles(files); err != nil {
		return false, err
	}
	if err := p.mount(dir); err != nil {
		return false, err
	}
	if same, err := holds(dir, files); err != nil || same {
		return false, err
	}
	if err := swapVersion(dir, files); err != nil {
		return false, fmt.Errorf("secret volume %s: %w", dir, err)
	}
	return true, nil
}

// swapVersion writes files to a new version directory, points "..data" at
// it, updates the top-level links and removes the versions before the
// previous one.
func swapVersion(dir string, files []ProjectedFile) error {
	prev, _ := os.Readlink(filepath.Join(dir, dataLink))
	vdir, err := os.MkdirTemp(dir, versionPrefix)
	if err != nil {
		return err
	}
	if err := os.Chmod(vdir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if err := writeProjected(vdir, f); err != nil {
			_ = os.RemoveAll(vdir)
			return err
		}
	}
	if err := swapLink(dir, dataLink, filepath.Base(vdir)); err != nil {
		_ = os.RemoveAll(vdir)
		return err
	}
	if err := linkTopLevel(dir, files); err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(dir, versionGlob))
	for _, o := range old {
		if b := filepath.Base(o); b != filepath.Base(vdir) && b != prev {
			if err := os.RemoveAll(o); err != nil {
				return fmt.Errorf("remove old version: %w", err)
			}
		}
	}
	return nil
}

// Remove implements Projector.
func (p TmpfsProjector) Remove(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	mounted, err := isMountPoint(dir)
	if err != nil {
		return fmt.Errorf("secret volume %s: %w", dir, err)
	}
	if mounted {
		// Lazy: containers still running keep their own bind of the tmpfs
		// until they exit.
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount secret volume %s: %w", dir, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove secret volume %s: %w", dir, err)
	}
	return nil
}

// mount creates dir and mounts a fresh tmpfs on it unless one is there.
func (p TmpfsProjector) mount(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("secret volume %s: %w", dir, err)
	}
	mounted, err := isMountPoint(dir)
	if err != nil || mounted {
		return err
	}
	size := p.SizeBytes
	if size <= 0 {
		size = DefaultSecretVolumeSize
	}
	opts := fmt.Sprintf("mode=0755,size=%d", size)
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return fmt.Errorf("mount tmpfs for secret volume %s (the agent needs CAP_SYS_ADMIN): %w", dir, err)
	}
	return nil
}

// isMountPoint reports whether dir is the root of a mount: its device
// differs from its parent's. (A bind mount of a directory onto itself
// would fool it; the agent makes none.)
func isMountPoint(dir string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return false, fmt.Errorf("stat %s: %w", dir, err)
	}
	if err := unix.Lstat(filepath.Dir(dir), &parent); err != nil {
		return false, fmt.Errorf("stat %s: %w", filepath.Dir(dir), err)
	}
	return st.Dev != parent.Dev, nil
}

// checkProjectedFiles rejects paths that would leave the volume or clash.
func checkProjectedFiles(files []ProjectedFile) error {
	seen := map[string]bool{}
	for _, f := range files {
		if err := checkVolumePath(f.Path); err != nil {
			return err
		}
		if seen[f.Path] {
			return fmt.Errorf("secret volume: two files at path %q: %w", f.Path, errdefs.ErrInvalidArgument)
		}
		seen[f.Path] = true
		if f.Mode&^fs.ModePerm != 0 {
			return fmt.Errorf("secret volume: file %q: mode %o has more than permission bits: %w", f.Path, f.Mode, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// checkVolumePath enforces Kubernetes' rule for volume item paths:
// relative, no ".." element, not starting with "..".
func checkVolumePath(p string) error {
	switch {
	case p == "" || path.IsAbs(p):
		return fmt.Errorf("volume path %q must be a non-empty relative path: %w", p, errdefs.ErrInvalidArgument)
	case strings.HasPrefix(p, ".."):
		return fmt.Errorf("volume path %q must not start with '..': %w", p, errdefs.ErrInvalidArgument)
	case path.Clean(p) != p || strings.Contains(p, "\x00"):
		return fmt.Errorf("volume path %q must be clean (no //, ./ or trailing /): %w", p, errdefs.ErrInvalidArgument)
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return fmt.Errorf("volume path %q must not contain '..': %w", p, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// holds reports whether the current version in dir has exactly files.
func holds(dir string, files []ProjectedFile) (bool, error) {
	cur, err := os.Readlink(filepath.Join(dir, dataLink))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("secret volume %s: %w", dir, err)
	}
	vdir := filepath.Join(dir, cur)
	n := 0
	err = filepath.WalkDir(vdir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if err != nil || n != len(files) {
		return false, nil
	}
	for _, f := range files {
		st, err := os.Lstat(filepath.Join(vdir, f.Path))
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != f.Mode {
			return false, nil
		}
		b, err := os.ReadFile(filepath.Join(vdir, f.Path))
		if err != nil || !bytes.Equal(b, f.Data) {
			return false, nil
		}
	}
	return true, nil
}

// writeProjected writes f under vdir with its mode, creating directories.
func writeProjected(vdir string, f ProjectedFile) error {
	p := filepath.Join(vdir, filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, f.Data, f.Mode); err != nil {
		return err
	}
	return os.Chmod(p, f.Mode) // WriteFile's mode is subject to the umask
}

// swapLink points dir/name at target atomically: a new symlink renamed over
// the old one.
func swapLink(dir, name, target string) error {
	tmp := filepath.Join(dir, dataLinkTmp)
	if name != dataLink {
		tmp = filepath.Join(dir, "..tmp_"+name)
	}
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}

// linkTopLevel makes each top-level entry of files a symlink through
// "..data" and removes top-level entries files no longer have.
func linkTopLevel(dir string, files []ProjectedFile) error {
	want := map[string]bool{}
	for _, f := range files {
		top, _, _ := strings.Cut(f.Path, "/")
		want[top] = true
	}
	tops := make([]string, 0, len(want))
	for t := range want {
		tops = append(tops, t)
	}
	sort.Strings(tops)
	for _, t := range tops {
		target := filepath.Join(dataLink, t)
		if cur, err := os.Readlink(filepath.Join(dir, t)); err == nil && cur == target {
			continue
		}
		if err := swapLink(dir, t, target); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") || want[e.Name()] {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, syscall.ENOENT) {
			return err
		}
	}
	return nil
}
