package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

// secretVolumeHook mounts a pod's secret volumes (volumes[].secret) into
// each container that lists them under volumeMounts, read-only. Each
// volume is projected by a Projector into podDir/<uid>/volumes/secret/
// <volume> (a tmpfs) before the container is created; the agent's secrets
// loop (Agent.runSecrets) re-projects it in place when the Secret changes
// and removes the volumes of pods that are gone.
//
// A missing Secret or key fails the container with
// CreateContainerConfigError unless the volume (or the item) is optional:
// an optional volume whose Secret is missing is mounted empty.
type secretVolumeHook struct {
	secrets *secretResolver
	proj    Projector
	podDir  string

	// mu orders projections of the hook, the rotation and the collection
	// of volumes, so a volume is never removed while it is written.
	mu sync.Mutex
}

var _ prestartHook = (*secretVolumeHook)(nil)

func (h *secretVolumeHook) Name() string { return "secret-volumes" }

func (h *secretVolumeHook) Prestart(ctx context.Context, req *prestartRequest, _ *prestartResponse) error {
	p, c := req.Pod, req.Container
	for _, m := range c.VolumeMounts {
		vol := podVolume(p, m.Name)
		if vol == nil || vol.Secret == nil {
			continue // not a secret volume: another hook's
		}
		dir := secretVolumeDir(h.podDir, p.UID, vol.Name)
		var version int64
		files, err := h.files(vol.Secret, func(name string) (secret, error) {
			s, err := h.secrets.read(ctx, req, name)
			version = s.Version
			return s, err
		})
		if err != nil {
			return secretConfigError("container %q: volume %q: %w", c.Name, vol.Name, err)
		}
		if _, err := h.project(dir, files); err != nil {
			return &waitingError{Reason: reasonCreateContainerError, Err: fmt.Errorf("container %q: volume %q: %w", c.Name, vol.Name, err)}
		}
		// A rotation announced while this volume was read and written
		// skipped it (rotate updates projected volumes only), and the source
		// had the new version before it announced it: check once more now
		// that the volume exists, so it never stays on the old version.
		if err := h.catchUp(ctx, p, vol, dir, version); err != nil {
			return &waitingError{Reason: reasonCreateContainerError, Err: fmt.Errorf("container %q: volume %q: %w", c.Name, vol.Name, err)}
		}
		src := dir
		if m.SubPath != "" {
			if err := checkVolumePath(m.SubPath); err != nil {
				return secretConfigError("container %q: volume mount %q: subPath: %w", c.Name, m.MountPath, err)
			}
			src = filepath.Join(dir, m.SubPath) // a snapshot, as in Kubernetes: not rotated
		}
		req.Spec.Mounts = append(req.Spec.Mounts, Mount{Source: src, Destination: m.MountPath, ReadOnly: true})
	}
	return nil
}

// catchUp re-projects vol into dir when its Secret's current version is
// not the version projected; a Secret that cannot be read now keeps the
// files just written (the next change updates them).
func (h *secretVolumeHook) catchUp(ctx context.Context, p *api.Pod, vol *corev1.Volume, dir string, projected int64) error {
	now, err := h.secrets.get(ctx, p, vol.Secret.SecretName)
	if err != nil || now.Version == projected {
		return nil
	}
	files, err := h.files(vol.Secret, func(string) (secret, error) { return now, nil })
	if err != nil {
		return nil
	}
	_, err = h.project(dir, files)
	return err
}

// project writes files into dir, under the hook's lock.
func (h *secretVolumeHook) project(dir string, files []ProjectedFile) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.proj.Project(dir, files)
}

// files are the volume's files from the values of its Secret, read with
// get.
func (h *secretVolumeHook) files(src *corev1.SecretVolumeSource, get func(name string) (secret, error)) ([]ProjectedFile, error) {
	optional := src.Optional != nil && *src.Optional
	mode, err := fileMode(src.DefaultMode, corev1.SecretVolumeSourceDefaultMode)
	if err != nil {
		return nil, fmt.Errorf("defaultMode: %w", err)
	}
	s, err := get(src.SecretName)
	if err != nil {
		if optional && isSecretMissing(err) {
			return nil, nil
		}
		return nil, err
	}
	var files []ProjectedFile
	if len(src.Items) == 0 {
		for k, v := range s.Data {
			files = append(files, ProjectedFile{Path: k, Data: v, Mode: mode})
		}
	}
	for _, it := range src.Items {
		v, err := s.value(it.Key)
		if err != nil {
			if optional {
				continue
			}
			return nil, err
		}
		m := mode
		if it.Mode != nil {
			if m, err = fileMode(it.Mode, 0); err != nil {
				return nil, fmt.Errorf("item %q: mode: %w", it.Key, err)
			}
		}
		files = append(files, ProjectedFile{Path: it.Path, Data: v, Mode: m})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for _, f := range files {
		if err := checkVolumePath(f.Path); err != nil {
			return nil, fmt.Errorf("%s: %w", describeSecret(&s.Ref), err)
		}
	}
	return files, nil
}

// fileMode is a Kubernetes file mode (*int32, 0-0777), def when unset.
func fileMode(m *int32, def int32) (fs.FileMode, error) {
	v := def
	if m != nil {
		v = *m
	}
	if v < 0 || v > 0o777 {
		return 0, fmt.Errorf("%#o is not a file mode between 0 and 0777", v)
	}
	return fs.FileMode(v), nil
}

// podVolume is p's volume name, or nil.
func podVolume(p *api.Pod, name string) *corev1.Volume {
	for i := range p.Spec.Volumes {
		if p.Spec.Volumes[i].Name == name {
			return &p.Spec.Volumes[i]
		}
	}
	return nil
}

// secretVolumeDir is where pod uid's secret volume name is projected.
func secretVolumeDir(podDir, uid, name string) string {
	return filepath.Join(podDir, uid, "volumes", "secret", name)
}

// rotate re-projects, in place, the secret volumes of the given pods that
// use Secret key ("namespace/name") and are projected already (their pod
// has started a container). It returns the volumes whose files changed and
// the errors of those it could not update; those keep their previous
// files.
func (h *secretVolumeHook) rotate(ctx context.Context, key string, pods []api.Pod) (updated []string, errs []error) {
	for i := range pods {
		p := &pods[i]
		for j := range p.Spec.Volumes {
			vol := &p.Spec.Volumes[j]
			if vol.Secret == nil || p.Namespace+"/"+vol.Secret.SecretName != key {
				continue
			}
			dir := secretVolumeDir(h.podDir, p.UID, vol.Name)
			if _, err := os.Lstat(filepath.Join(dir, dataLink)); err != nil {
				continue // not projected yet: the prestart hook will
			}
			files, err := h.files(vol.Secret, func(name string) (secret, error) { return h.secrets.get(ctx, p, name) })
			var changed bool
			if err == nil {
				changed, err = h.project(dir, files)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("pod %s volume %q: %w", p.Key(), vol.Name, err))
				continue
			}
			if changed {
				updated = append(updated, p.Key()+"/"+vol.Name)
			}
		}
	}
	return updated, errs
}

// projectedPods returns the UIDs of the pods with secret volumes on disk,
// including those of a previous run of the agent.
func (h *secretVolumeHook) projectedPods() []string {
	dirs, _ := filepath.Glob(filepath.Join(h.podDir, "*", "volumes", "secret"))
	uids := make([]string, 0, len(dirs))
	for _, d := range dirs {
		uids = append(uids, filepath.Base(filepath.Dir(filepath.Dir(d))))
	}
	return uids
}

// collect removes the secret volumes of the pods in uids for which keep
// says no, under the hook's lock (keep is asked under it too, so a pod
// cannot start a container in between).
func (h *secretVolumeHook) collect(uids []string, keep func(uid string) bool) (removed []string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	for _, uid := range uids {
		if keep(uid) {
			continue
		}
		if err := h.teardown(uid); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, uid)
	}
	return removed, errors.Join(errs...)
}

// teardown unmounts and removes every secret volume of pod uid, then the
// volume directories if they are empty (h.mu held).
func (h *secretVolumeHook) teardown(uid string) error {
	base := filepath.Join(h.podDir, uid, "volumes", "secret")
	dirs, _ := filepath.Glob(filepath.Join(base, "*"))
	for _, d := range dirs {
		if err := h.proj.Remove(d); err != nil {
			return fmt.Errorf("pod %s: %w", uid, err)
		}
	}
	// Only empty directories go: the network hook's files may remain.
	for _, d := range []string{base, filepath.Dir(base), filepath.Join(h.podDir, uid)} {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	return nil
}
