package nodeagent_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/nodeagent"
	"github.com/moor-dev/moor/nodeagent/fakeruntime"
)

// secretSource is a fake nodeagent.SecretSource: values by "ns/name",
// scripted errors, and the time of every Get. Status reports the Secrets
// read so far as a Manager would: the version, or the error while one is
// scripted.
type secretSource struct {
	mu   sync.Mutex
	data map[string]nodeagent.SecretData
	errs map[string]error
	gets []time.Time
	read map[string]bool // keys Get was asked for
	// lagging keeps showing an error in Status until the time given, as
	// a Manager does until its next background read succeeds.
	lagging map[string]time.Time
	watched []string // keys of the last Watch
	changes chan string
}

func newSecretSource() *secretSource {
	return &secretSource{data: map[string]nodeagent.SecretData{}, errs: map[string]error{}, read: map[string]bool{}, lagging: map[string]time.Time{}, changes: make(chan string, 8)}
}

func (s *secretSource) set(key string, version int64, kv ...string) {
	d := nodeagent.SecretData{Version: version, Data: map[string][]byte{}}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Data[kv[i]] = []byte(kv[i+1])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[key] = d
	delete(s.errs, key)
}

// setLagging is set, with Status showing an error for lag more, as when
// Get read the values before the background read cleared the error.
func (s *secretSource) setLagging(key string, lag time.Duration, version int64, kv ...string) {
	s.mu.Lock()
	s.lagging[key] = time.Now().Add(lag)
	s.mu.Unlock()
	s.set(key, version, kv...)
}

func (s *secretSource) fail(key string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs[key] = err
}

func (s *secretSource) Get(_ context.Context, ref api.SecretRef, minVersion int64) (nodeagent.SecretData, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets = append(s.gets, time.Now())
	s.read[ref.Key()] = true
	if err := s.errs[ref.Key()]; err != nil {
		return nodeagent.SecretData{}, err
	}
	d, ok := s.data[ref.Key()]
	if !ok {
		return nodeagent.SecretData{}, fmt.Errorf("nothing at %s: %w", ref.Vault.Path, errdefs.ErrNotFound)
	}
	if d.Version < minVersion {
		return nodeagent.SecretData{}, fmt.Errorf("version %d < %d: %w", d.Version, minVersion, errdefs.ErrUnavailable)
	}
	return d, nil
}

func (s *secretSource) Watch(refs []api.SecretRef) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watched = []string{}
	for i := range refs {
		s.watched = append(s.watched, refs[i].Key())
	}
}

func (s *secretSource) watching() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.watched)
}

func (s *secretSource) Changes() <-chan string { return s.changes }

func (s *secretSource) Status() []api.SecretStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []api.SecretStatus
	for key := range s.read {
		ns, name, _ := strings.Cut(key, "/")
		st := api.SecretStatus{Namespace: ns, Name: name}
		if err := s.errs[key]; err != nil {
			st.Error = err.Error()
		} else if time.Now().Before(s.lagging[key]) {
			st.Error = "not read again yet"
		} else {
			st.Version = s.data[key].Version
		}
		out = append(out, st)
	}
	return out
}

func (s *secretSource) getTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.gets)
}

// lockedBuffer collects the agent's logs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	t  *testing.T
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimSpace(string(p)))
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// setDesiredSecrets publishes pods and secrets as the node's desired state.
func (s *fakeServer) setDesiredSecrets(commit string, secrets []api.SecretRef, pods ...api.Pod) {
	d := api.NodeDesired{Node: s.node, Commit: commit, Pods: pods, Secrets: secrets}
	b, digest, err := d.Encode()
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc, s.digest = b, digest
	close(s.changed)
	s.changed = make(chan struct{})
}

// startWithSecrets runs an agent with src (Run runs its secrets loop) and
// returns its logs. setup runs before the agent does.
func startWithSecrets(t *testing.T, cfg nodeagent.Config, rt nodeagent.Runtime, src nodeagent.SecretSource, setup ...func(*nodeagent.Agent)) *lockedBuffer {
	t.Helper()
	logs := &lockedBuffer{t: t}
	cfg.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Secrets = src
	a, err := nodeagent.New(cfg, rt)
	if err != nil {
		t.Fatal(err)
	}
	nodeagent.SetRetryBackoff(a, 20*time.Millisecond, 200*time.Millisecond)
	for _, f := range setup {
		f(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := a.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return logs
}

func dbRef() api.SecretRef {
	return api.SecretRef{Namespace: "default", Name: "db", Type: "Opaque",
		Vault: &api.VaultSource{Engine: api.VaultEngineKV, Path: "secret/data/shop/db"}}
}

const dbPassword = "pa55-w0rd-in-vault"

// TestSecretEnvWaitsForVaultAndRecovers: while Vault is sealed the
// container waits with CreateContainerConfigError naming the Secret, path
// and key, retried with backoff; once Vault answers it starts with the
// value, which never reaches state.json or the logs.
func TestSecretEnvWaitsForVaultAndRecovers(t *testing.T) {
	srv := newFakeServer(t, node)
	rt := fakeruntime.New()
	src := newSecretSource()
	src.fail("default/db", fmt.Errorf("Vault is sealed: %w", errdefs.ErrUnavailable))
	p := testPod("web", "uid-env", "app")
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}}
	p.SpecHash = api.HashObject(p.Spec)
	plain := api.SecretRef{Namespace: "default", Name: "plain", Type: "Opaque", Data: map[string][]byte{"k": []byte("v")}}
	srv.setDesiredSecrets("c1", []api.SecretRef{dbRef(), plain}, p)
	dir := t.TempDir()
	logs := startWithSecrets(t, testConfig(t, srv, dir), rt, src)

	var msg string
	eventually(t, "CreateContainerConfigError in status", func() bool {
		ps := podStatus(srv, "web")
		if ps == nil || len(ps.Status.ContainerStatuses) == 0 {
			return false
		}
		w := ps.Status.ContainerStatuses[0].State.Waiting
		if w == nil || w.Reason != "CreateContainerConfigError" {
			return false
		}
		msg = w.Message
		return true
	})
	for _, want := range []string{`env DB_PASSWORD`, `Secret "default/db"`, `Vault path "secret/data/shop/db"`, `key "password"`, "Vault is sealed"} {
		if !strings.Contains(msg, want) {
			t.Errorf("waiting message %q does not contain %q", msg, want)
		}
	}
	eventually(t, "the source watches the Vault Secret", func() bool {
		return slices.Equal(src.watching(), []string{"default/db"})
	})
	// No retry storm: attempts follow the restart backoff (200ms, then
	// 400ms), not the 20ms resync.
	eventually(t, "three attempts", func() bool { return len(src.getTimes()) >= 3 })
	if g := src.getTimes(); g[2].Sub(g[0]) < 500*time.Millisecond {
		t.Errorf("3 attempts within %v: not backing off", g[2].Sub(g[0]))
	}
	if exists(rt, cid(p, "app")) {
		t.Error("container created while its Secret is unreadable")
	}

	src.set("default/db", 1, "password", dbPassword)
	eventually(t, "container running once Vault answers", func() bool { return running(rt, cid(p, "app")) })
	spec, _ := rt.Spec(cid(p, "app"))
	if !slices.Contains(spec.Env, "DB_PASSWORD="+dbPassword) {
		t.Errorf("env %q lacks the Secret's value", spec.Env)
	}
	eventually(t, "status running", func() bool {
		ps := podStatus(srv, "web")
		return ps != nil && ps.Status.Phase == corev1.PodRunning
	})
	state, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(state), dbPassword) {
		t.Error("state.json holds the Secret's value")
	}
	if strings.Contains(logs.String(), dbPassword) {
		t.Error("the logs hold the Secret's value")
	}
}

// TestSecretVolumeRotatesInPlace mounts a Secret volume (a real tmpfs),
// updates it when the source reports a change without restarting the
// container, and removes it when the pod goes; a leftover of a pod that
// no longer exists is removed at start.
func TestSecretVolumeRotatesInPlace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: secret volumes mount tmpfs, which needs root")
	}
	srv := newFakeServer(t, node)
	rt := fakeruntime.New()
	src := newSecretSource()
	src.set("default/db", 1, "password", "v1")
	dir := t.TempDir()
	leftover := filepath.Join(dir, "pods", "uid-gone", "volumes", "secret", "old")
	if _, err := (nodeagent.TmpfsProjector{}).Project(leftover, []nodeagent.ProjectedFile{{Path: "k", Data: []byte("x"), Mode: 0o644}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nodeagent.TmpfsProjector{}.Remove(leftover) })

	p := testPod("web", "uid-vol", "app")
	p.Spec.Volumes = []corev1.Volume{{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}}}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "creds", MountPath: "/etc/creds"}}
	p.SpecHash = api.HashObject(p.Spec)
	srv.setDesiredSecrets("c1", []api.SecretRef{dbRef()}, p)
	startWithSecrets(t, testConfig(t, srv, dir), rt, src)

	eventually(t, "leftover volume removed", func() bool {
		_, err := os.Stat(filepath.Join(dir, "pods", "uid-gone"))
		return os.IsNotExist(err)
	})
	id := cid(p, "app")
	eventually(t, "container running", func() bool { return running(rt, id) })
	spec, _ := rt.Spec(id)
	var vol string
	for _, m := range spec.Mounts {
		if m.Destination == "/etc/creds" && m.ReadOnly {
			vol = m.Source
		}
	}
	if vol == "" {
		t.Fatalf("no read-only mount at /etc/creds: %+v", spec.Mounts)
	}
	t.Cleanup(func() { _ = nodeagent.TmpfsProjector{}.Remove(vol) })
	if b, err := os.ReadFile(filepath.Join(vol, "password")); err != nil || string(b) != "v1" {
		t.Fatalf("password = %q, %v", b, err)
	}

	src.set("default/db", 2, "password", "v2")
	src.changes <- "default/db"
	eventually(t, "file rotated", func() bool {
		b, _ := os.ReadFile(filepath.Join(vol, "password"))
		return string(b) == "v2"
	})
	if n := countCalls(rt.Calls(), "create "+id); n != 1 {
		t.Errorf("container created %d times; rotation must not restart it", n)
	}

	srv.setDesiredSecrets("c2", nil)
	eventually(t, "volume unmounted and removed with its pod", func() bool {
		_, err := os.Stat(vol)
		return !exists(rt, id) && os.IsNotExist(err)
	})
}

// TestImagePullSecretCredentials passes the credentials of a
// dockerconfigjson Secret to the runtime for the image's registry.
func TestImagePullSecretCredentials(t *testing.T) {
	srv := newFakeServer(t, node)
	rt := fakeruntime.New()
	p := testPod("web", "uid-pull", "app")
	p.Spec.Containers[0].Image = "127.0.0.1:5000/shop/app:1"
	p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
	p.SpecHash = api.HashObject(p.Spec)
	regcred := api.SecretRef{Namespace: "default", Name: "regcred", Type: "kubernetes.io/dockerconfigjson",
		Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"127.0.0.1:5000":{"username":"ci","password":"pw"}}}`)}}
	srv.setDesiredSecrets("c1", []api.SecretRef{regcred}, p)
	startWithSecrets(t, testConfig(t, srv, t.TempDir()), rt, nil)
	eventually(t, "container running", func() bool { return running(rt, cid(p, "app")) })
	if !hasCall(rt.Calls(), "auth 127.0.0.1:5000 ci") {
		t.Errorf("no authenticated pull: %q", rt.Calls())
	}
}
