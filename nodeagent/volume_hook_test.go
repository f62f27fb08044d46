package nodeagent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

// memProjector is a Projector in memory; it marks a projected volume on
// disk with an empty dir/..data file so rotate and collect find it.
type memProjector struct {
	mu   sync.Mutex
	vols map[string][]ProjectedFile
}

func (m *memProjector) Project(dir string, files []ProjectedFile) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.vols == nil {
		m.vols = map[string][]ProjectedFile{}
	}
	old, ok := m.vols[dir]
	changed := !ok || !slices.EqualFunc(old, files, func(a, b ProjectedFile) bool {
		return a.Path == b.Path && string(a.Data) == string(b.Data) && a.Mode == b.Mode
	})
	m.vols[dir] = slices.Clone(files)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	return changed, os.WriteFile(filepath.Join(dir, dataLink), nil, 0o644)
}

func (m *memProjector) Remove(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.vols, dir)
	return os.RemoveAll(dir)
}

func (m *memProjector) files(dir string) map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for _, f := range m.vols[dir] {
		out[f.Path] = fmt.Sprintf("%s %o", f.Data, f.Mode)
	}
	return out
}

func mode(m int32) *int32 { return &m }

func secretVolume(name, secret string, items []corev1.KeyToPath, defaultMode *int32, opt *bool) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName: secret, Items: items, DefaultMode: defaultMode, Optional: opt}}}
}

func TestSecretVolumeHook(t *testing.T) {
	tests := []struct {
		name       string
		vol        corev1.Volume
		mount      corev1.VolumeMount
		wantFiles  map[string]string
		wantSource string // relative to the volume dir
		wantReason string
		wantMsg    string
	}{
		{
			name:      "every key, default mode 0644",
			vol:       secretVolume("creds", "db", nil, nil, nil),
			wantFiles: map[string]string{"password": secretValue + " 644", "username": "admin 644"},
		},
		{
			name: "items with paths and modes, defaultMode",
			vol: secretVolume("creds", "db", []corev1.KeyToPath{
				{Key: "password", Path: "db/pass", Mode: mode(0o400)}, {Key: "username", Path: "user"},
			}, mode(0o440), nil),
			wantFiles: map[string]string{"db/pass": secretValue + " 400", "user": "admin 440"},
		},
		{
			name:       "subPath mounts one file",
			vol:        secretVolume("creds", "db", nil, nil, nil),
			mount:      corev1.VolumeMount{SubPath: "password"},
			wantFiles:  map[string]string{"password": secretValue + " 644", "username": "admin 644"},
			wantSource: "password",
		},
		{
			name:      "optional volume of a missing Secret is empty",
			vol:       secretVolume("creds", "nope", nil, nil, optional()),
			wantFiles: map[string]string{},
		},
		{
			name:      "optional volume skips missing items",
			vol:       secretVolume("creds", "db", []corev1.KeyToPath{{Key: "nokey", Path: "x"}, {Key: "username", Path: "u"}}, nil, optional()),
			wantFiles: map[string]string{"u": "admin 644"},
		},
		{
			name:       "missing Secret waits",
			vol:        secretVolume("creds", "nope", nil, nil, nil),
			wantReason: reasonCreateContainerConfigError,
			wantMsg:    `volume "creds": Secret "shop/nope" not found`,
		},
		{
			name:       "missing item key waits naming Secret, path and key",
			vol:        secretVolume("creds", "db", []corev1.KeyToPath{{Key: "nokey", Path: "x"}}, nil, nil),
			wantReason: reasonCreateContainerConfigError,
			wantMsg:    `Secret "shop/db" (Vault path "secret/data/shop/db") has no key "nokey"`,
		},
		{
			name:       "item path leaving the volume",
			vol:        secretVolume("creds", "db", []corev1.KeyToPath{{Key: "username", Path: "../etc/passwd"}}, nil, nil),
			wantReason: reasonCreateContainerConfigError,
			wantMsg:    `must not start with '..'`,
		},
		{
			name:       "bad mode",
			vol:        secretVolume("creds", "db", nil, mode(0o1777), nil),
			wantReason: reasonCreateContainerConfigError,
			wantMsg:    "defaultMode: 01777 is not a file mode",
		},
		{
			name:       "subPath leaving the volume",
			vol:        secretVolume("creds", "db", nil, nil, nil),
			mount:      corev1.VolumeMount{SubPath: "a/../../x"},
			wantReason: reasonCreateContainerConfigError,
			wantMsg:    "subPath",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource()
			src.set("shop/db", 3, "password", secretValue, "username", "admin")
			refs := []api.SecretRef{vaultRef("shop", "db", nil)}
			proj := &memProjector{}
			podDir := t.TempDir()
			h := &secretVolumeHook{secrets: &secretResolver{source: src, refs: func() []api.SecretRef { return refs }}, proj: proj, podDir: podDir}
			pod := &api.Pod{Namespace: "shop", Name: "web", UID: "uid-1"}
			pod.Spec.Volumes = []corev1.Volume{tt.vol, {Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			m := tt.mount
			m.Name, m.MountPath = tt.vol.Name, "/etc/creds"
			c := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{m, {Name: "scratch", MountPath: "/scratch"}}}
			spec := &ContainerSpec{}
			err := h.Prestart(context.Background(), &prestartRequest{Pod: pod, Container: c, Spec: spec}, &prestartResponse{})
			if tt.wantReason != "" {
				if reasonOf(err) != tt.wantReason || !strings.Contains(fmt.Sprint(err), tt.wantMsg) {
					t.Fatalf("err %v, want %s with %q", err, tt.wantReason, tt.wantMsg)
				}
				if strings.Contains(err.Error(), secretValue) {
					t.Errorf("message %q contains the value", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			dir := secretVolumeDir(podDir, "uid-1", "creds")
			want := []Mount{{Source: filepath.Join(dir, tt.wantSource), Destination: "/etc/creds", ReadOnly: true}}
			if !slices.Equal(spec.Mounts, want) {
				t.Errorf("mounts %+v, want %+v (the emptyDir is not this hook's)", spec.Mounts, want)
			}
			if got := proj.files(dir); fmt.Sprint(got) != fmt.Sprint(tt.wantFiles) {
				t.Errorf("files %v, want %v", got, tt.wantFiles)
			}
		})
	}
}

func TestSecretVolumeRotateAndCollect(t *testing.T) {
	src := newFakeSource()
	src.set("shop/db", 1, "password", "v1")
	refs := []api.SecretRef{vaultRef("shop", "db", nil), vaultRef("shop", "other", nil)}
	proj := &memProjector{}
	podDir := t.TempDir()
	h := &secretVolumeHook{secrets: &secretResolver{source: src, refs: func() []api.SecretRef { return refs }}, proj: proj, podDir: podDir}
	newPod := func(name, uid string) api.Pod {
		p := api.Pod{Namespace: "shop", Name: name, UID: uid}
		p.Spec.Volumes = []corev1.Volume{secretVolume("creds", "db", nil, nil, nil), secretVolume("o", "other", nil, nil, optional())}
		return p
	}
	started, notStarted := newPod("a", "uid-a"), newPod("b", "uid-b")
	c := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{{Name: "creds", MountPath: "/c"}}}
	if err := h.Prestart(context.Background(), &prestartRequest{Pod: &started, Container: c, Spec: &ContainerSpec{}}, &prestartResponse{}); err != nil {
		t.Fatal(err)
	}
	dirA := secretVolumeDir(podDir, "uid-a", "creds")

	src.set("shop/db", 2, "password", "v2")
	pods := []api.Pod{started, notStarted}
	updated, errs := h.rotate(context.Background(), "shop/db", pods)
	if len(errs) > 0 || !slices.Equal(updated, []string{"shop/a/creds"}) {
		t.Fatalf("rotate = %v, %v; want only the started pod's volume", updated, errs)
	}
	if got := proj.files(dirA)["password"]; got != "v2 644" {
		t.Errorf("after rotation: %q", got)
	}
	if updated, errs := h.rotate(context.Background(), "shop/db", pods); len(errs) > 0 || len(updated) > 0 {
		t.Errorf("rotate without a change = %v, %v; want nothing updated", updated, errs)
	}
	if _, err := os.Stat(secretVolumeDir(podDir, "uid-b", "creds")); !os.IsNotExist(err) {
		t.Errorf("rotation projected a pod that has not started: %v", err)
	}

	src.fail("shop/db", fmt.Errorf("permission denied: %w", errdefs.ErrPermissionDenied))
	if _, errs := h.rotate(context.Background(), "shop/db", pods); len(errs) != 1 || !errdefs.IsPermissionDenied(errs[0]) {
		t.Errorf("rotate with Vault refusing = %v", errs)
	}
	if got := proj.files(dirA)["password"]; got != "v2 644" {
		t.Errorf("a failed rotation changed the files: %q", got)
	}

	// A leftover of a previous run, and the started pod: only what keep
	// refuses goes.
	if err := os.MkdirAll(secretVolumeDir(podDir, "uid-old", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := h.projectedPods(); !slices.Equal(got, []string{"uid-a", "uid-old"}) {
		t.Fatalf("projectedPods = %v", got)
	}
	removed, err := h.collect(h.projectedPods(), func(uid string) bool { return uid == "uid-a" })
	if err != nil || !slices.Equal(removed, []string{"uid-old"}) {
		t.Fatalf("collect = %v, %v", removed, err)
	}
	if _, err := os.Stat(filepath.Join(podDir, "uid-old")); !os.IsNotExist(err) {
		t.Errorf("pod dir of the removed pod is left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dirA, dataLink)); err != nil {
		t.Errorf("kept pod's volume is gone: %v", err)
	}
}

func TestCheckVolumePath(t *testing.T) {
	for p, ok := range map[string]bool{
		"a": true, "a/b": true, ".hidden": true, "a..b": true,
		"": false, "/abs": false, "..": false, "..data": false, "a/../b": false, "a/..": false, "a//b": false, "./a": false, "a/": false,
	} {
		if err := checkVolumePath(p); (err == nil) != ok {
			t.Errorf("checkVolumePath(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}

// TestSecretVolumeCatchesUpWithARotationDuringStart: a Secret read for a
// container start (v1), then rotated (v2) before its volume exists, which
// rotate skips: the start must not leave the volume on v1.
func TestSecretVolumeCatchesUpWithARotationDuringStart(t *testing.T) {
	src := newFakeSource()
	src.set("shop/db", 1, "password", "v1")
	refs := []api.SecretRef{vaultRef("shop", "db", nil)}
	proj := &memProjector{}
	podDir := t.TempDir()
	h := &secretVolumeHook{secrets: &secretResolver{source: src, refs: func() []api.SecretRef { return refs }}, proj: proj, podDir: podDir}
	p := api.Pod{Namespace: "shop", Name: "a", UID: "uid-a"}
	p.Spec.Volumes = []corev1.Volume{secretVolume("creds", "db", nil, nil, nil)}
	c := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{{Name: "creds", MountPath: "/c"}}}
	req := &prestartRequest{Pod: &p, Container: c, Spec: &ContainerSpec{}}

	if _, err := h.secrets.read(context.Background(), req, "db"); err != nil { // an earlier hook of this start
		t.Fatal(err)
	}
	src.set("shop/db", 2, "password", "v2")
	if updated, errs := h.rotate(context.Background(), "shop/db", []api.Pod{p}); len(updated)+len(errs) > 0 {
		t.Fatalf("rotate before the volume exists = %v, %v; want it skipped", updated, errs)
	}
	if err := h.Prestart(context.Background(), req, &prestartResponse{}); err != nil {
		t.Fatal(err)
	}
	if got := proj.files(secretVolumeDir(podDir, "uid-a", "creds"))["password"]; got != "v2 644" {
		t.Errorf("volume after a start that read v1 while v2 was announced: %q, want v2", got)
	}
}
