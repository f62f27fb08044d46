package podnet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// createNetNS creates a new network namespace and bind-mounts it at path,
// without changing the namespace of the calling goroutine: the work runs
// on a dedicated, locked OS thread, which is thrown away (never unlocked)
// if it cannot be moved back.
func createNetNS(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create netns dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("create netns file %s: %w", path, err)
	}
	f.Close()
	err = onNetNSThread(
		func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("unshare netns: %w", err)
			}
			return nil
		},
		func() error {
			self := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
			if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("bind-mount netns at %s: %w", path, err)
			}
			return nil
		})
	if err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// isNetNS reports whether path is a mounted network namespace (and not the
// empty file a reboot leaves behind).
func isNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// deleteNetNS unmounts and removes a namespace made by createNetNS; a
// missing or unmounted file is not an error. The namespace itself lives on
// while processes (containers) still run in it.
func deleteNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}

// handleAt returns a netlink handle whose sockets live in the namespace at
// path ("" = the current one) and a func to release it.
func handleAt(path string) (*netlink.Handle, func(), error) {
	if path == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, nil, fmt.Errorf("open netlink: %w", err)
		}
		return h, h.Close, nil
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open netns %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, nil, fmt.Errorf("open netlink in netns %s: %w", path, err)
	}
	return h, h.Close, nil
}

// writeSysctl writes value to /proc/sys/<key> as seen from the namespace at
// path ("" = the current one); /proc/sys/net is per network namespace of
// the opening thread, so the open happens on a thread moved there.
func writeSysctl(path, key, value string) error {
	file := filepath.Join("/proc/sys", key)
	return RunInNetNS(path, func() error { return os.WriteFile(file, []byte(value), 0o644) })
}

// RunInNetNS runs fn on an OS thread moved into the network namespace at
// path ("" runs fn directly); sockets fn opens stay in that namespace. The
// caller's goroutine never changes namespace: fn runs on a dedicated,
// locked thread, which is thrown away if it cannot be moved back.
func RunInNetNS(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer target.Close()
	return onNetNSThread(func() error {
		if err := netns.Set(target); err != nil {
			return fmt.Errorf("enter netns %s: %w", path, err)
		}
		return nil
	}, fn)
}

// onNetNSThread runs fn on a dedicated, locked OS thread that enter moved
// into another network namespace, and then moves the thread back. The
// caller's goroutine never changes namespace. A thread that enter failed
// to move is released as it is; one that cannot be moved back is thrown
// away: left locked, the runtime ends it with its goroutine, so no other
// goroutine runs in the wrong namespace.
func onNetNSThread(enter, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := enter(); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("restore netns: %w", err)) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
