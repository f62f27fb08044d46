package nodeagent_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/nodeagent"
	"github.com/moor-dev/moor/nodeagent/fakeruntime"
)

// envPod is pod web (uid) reading PASSWORD from Secret db through env,
// with AnnotationSecretVersions set to versions unless empty.
func envPod(uid, versions string) api.Pod {
	p := testPod("web", uid, "app")
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}}
	if versions != "" {
		p.Annotations = map[string]string{api.AnnotationSecretVersions: versions}
	}
	p.SpecHash = api.HashObject(p.Spec)
	return p
}

// slowBackoff gives cfg a crash backoff far longer than the tests wait, so
// that only the secrets loop can make a waiting container try again soon.
func slowBackoff(cfg nodeagent.Config) nodeagent.Config {
	cfg.RestartBackoff, cfg.MaxRestartBackoff = 30*time.Second, time.Minute
	return cfg
}

// waiting returns the waiting state of pod name's first container in the
// last report, or nil.
func waiting(srv *fakeServer, name string) *corev1.ContainerStateWaiting {
	ps := podStatus(srv, name)
	if ps == nil || len(ps.Status.ContainerStatuses) == 0 {
		return nil
	}
	return ps.Status.ContainerStatuses[0].State.Waiting
}

// reportedVersion is the version of Secret key the last report carries.
func reportedVersion(srv *fakeServer, key string) int64 {
	st := srv.LastStatus()
	if st == nil {
		return -1
	}
	for _, s := range st.Secrets {
		if s.Key() == key {
			return s.Version
		}
	}
	return -1
}

// TestSecretVersionZeroHoldsForTheDocument: a pod whose annotation names
// its env Secret at version 0 does not start; the node reads the Secret,
// reports its version at once, and retries the pod often (not with the
// crash backoff) until the next document replaces it with a pod annotated with
// the version, which starts. The first pod never creates a container.
func TestSecretVersionZeroHoldsForTheDocument(t *testing.T) {
	srv := newFakeServer(t, node)
	rt := fakeruntime.New()
	src := newSecretSource()
	src.set("default/db", 1, "password", dbPassword)
	p0 := envPod("uid-v0", "db=0")
	srv.setDesiredSecrets("c1", []api.SecretRef{dbRef()}, p0)
	cfg := slowBackoff(testConfig(t, srv, t.TempDir()))
	cfg.ReportInterval = time.Hour // only a prompt report tells the server
	startWithSecrets(t, cfg, rt, src, func(a *nodeagent.Agent) {
		nodeagent.SetVersionWait(a, time.Minute, 50*time.Millisecond)
	})

	var msg string
	eventually(t, "the pod holds with ContainerCreating and the report names version 1", func() bool {
		w := waiting(srv, "web")
		if w == nil || w.Reason != "ContainerCreating" || w.Message == "" {
			return false
		}
		msg = w.Message
		return reportedVersion(srv, "default/db") == 1
	})
	for _, want := range []string{"waiting for the server to learn the version of Secret default/db", "read version 1", api.AnnotationSecretVersions} {
		if !strings.Contains(msg, want) {
			t.Errorf("waiting message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, dbPassword) {
		t.Errorf("waiting message %q holds the value", msg)
	}
	// Retried every 50ms, not after the 30s crash backoff.
	n := len(src.getTimes())
	eventually(t, "retries while holding", func() bool { return len(src.getTimes()) >= n+3 })
	if exists(rt, cid(p0, "app")) {
		t.Fatal("container created while its pod holds for the Secret version")
	}

	p1 := envPod("uid-v1", "db=1")
	srv.setDesiredSecrets("c1", []api.SecretRef{dbRef()}, p1)
	eventually(t, "the pod annotated with version 1 runs", func() bool { return running(rt, cid(p1, "app")) })
	spec, _ := rt.Spec(cid(p1, "app"))
	if !slices.Contains(spec.Env, "PASSWORD="+dbPassword) {
		t.Errorf("env %q lacks the Secret's value", spec.Env)
	}
	if n := countCalls(rt.Calls(), "create "+cid(p0, "app")); n != 0 {
		t.Errorf("the version-0 pod's container was created %d times", n)
	}
}

// TestSecretVersionZeroStartsAfterLimit: without a new document the
// holding pod starts once the limit has passed, with what the node read.
func TestSecretVersionZeroStartsAfterLimit(t *testing.T) {
	srv := newFakeServer(t, node)
	rt := fakeruntime.New()
	src := newSecretSource()
	src.set("default/db", 1, "password", dbPassword)
	p := envPod("uid-v0", "db=0")
	srv.setDesiredSecrets("c1", []api.SecretRef{dbRef()}, p)
	const limit = 400 * time.Millisecond
	begin := time.Now()
	startWithSecrets(t, slowBackoff(testConfig(t, srv, t.TempDir())), rt, src, func(a *nodeagent.Agent) {
		nodeagent.SetVersionWait(a, limit, 50*time.Millisecond)
	})
	eventually(t, "the pod runs after the limit", func() bool { return running(rt, cid(p, "app")) })
	if d := time.Since(begin); d < limit {
		t.Errorf("the pod started %v after the agent, before the %v limit", d, limit)
	}
	spec, _ := rt.Spec(cid(p, "app"))
	if !slices.Contains(spec.Env, "PASSWORD="+dbPassword) {
		t.Errorf("env %q lacks the Secret's value", spec.Env)
	}
	if n := countCalls(rt.Calls(), "create "+cid(p, "app")); n != 1 {
		t.Errorf("container created %d times, want 1", n)
	}
}

// TestSecretReadableAgainEndsBackoff: a container waiting with
// CreateContainerConfigError while Vault is away is tried again as soon as
// the Secret is readable again, not after its crash backoff: on a change
// the source reports, or on its status error clearing.
func TestSecretReadableAgainEndsBackoff(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change bool
	}{
		{"change reported", true},
		{"status error cleared", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, node)
			rt := fakeruntime.New()
			src := newSecretSource()
			src.fail("default/db", fmt.Errorf("Vault is unreachable: %w", errdefs.ErrUnavailable))
			p := envPod("uid-1", "db=1")
			srv.setDesiredSecrets("c1", []api.SecretRef{dbRef()}, p)
			startWithSecrets(t, slowBackoff(testConfig(t, srv, t.TempDir())), rt, src)

			eventually(t, "CreateContainerConfigError in status", func() bool {
				w := waiting(srv, "web")
				return w != nil && w.Reason == "CreateContainerConfigError"
			})
			attempts := len(src.getTimes())
			readable := time.Now()
			if tc.change {
				src.set("default/db", 1, "password", dbPassword)
				src.changes <- "default/db"
			} else {
				// The secrets loop (20ms ticks) sees the error go.
				src.setLagging("default/db", 300*time.Millisecond, 1, "password", dbPassword)
			}
			eventually(t, "container running", func() bool { return running(rt, cid(p, "app")) })
			// The next attempt of the backoff was 30s away.
			if d := time.Since(readable); d > 5*time.Second {
				t.Errorf("started %v after the Secret became readable", d)
			}
			if got := len(src.getTimes()); got <= attempts {
				t.Errorf("no new read after the Secret became readable (%d reads)", got)
			}
		})
	}
}
