package nodeagent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

func TestAwaitVersions(t *testing.T) {
	pinned := vaultRef("shop", "pinned", nil)
	pinned.Vault.Version = 3
	lease := vaultRef("shop", "lease", nil)
	lease.Vault.Engine = api.VaultEngineLease
	refs := []api.SecretRef{vaultRef("shop", "db", nil), vaultRef("shop", "api", nil), pinned, lease,
		plainRef("shop", "plain", "Opaque", "k", "v")}
	tests := []struct {
		name       string
		versions   string // AnnotationSecretVersions; "" for none
		failDB     bool
		noSource   bool
		wantHold   bool
		wantGets   []string
		wantInMsg  []string
		afterLimit bool // the pod first held longer than the limit ago
	}{
		{name: "no annotation", wantGets: []string{}},
		{name: "versions known", versions: "db=2", wantGets: []string{}},
		{name: "version 0 holds", versions: "api=4,db=0", wantHold: true, wantGets: []string{"shop/db@0"},
			wantInMsg: []string{"waiting for the server to learn the version of Secret shop/db (this node read version 2)", api.AnnotationSecretVersions}},
		{name: "two at version 0", versions: "api=0,db=0", wantHold: true, wantGets: []string{"shop/api@0", "shop/db@0"},
			wantInMsg: []string{"Secret shop/api (this node read version 7), Secret shop/db (this node read version 2)"}},
		{name: "unreadable Secret does not hold", versions: "db=0", failDB: true, wantGets: []string{"shop/db@0"}},
		{name: "pinned, leased, plain and unknown Secrets do not hold", versions: "pinned=0,lease=0,plain=0,nope=0", wantGets: []string{}},
		{name: "no Vault access", versions: "db=0", noSource: true},
		{name: "limit passed", versions: "db=0", afterLimit: true, wantGets: []string{"shop/db@0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource()
			src.set("shop/db", 2, "password", secretValue)
			src.set("shop/api", 7, "token", secretValue)
			if tt.failDB {
				src.fail("shop/db", fmt.Errorf("Vault is sealed: %w", errdefs.ErrUnavailable))
			}
			now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
			res := &secretResolver{source: src, refs: func() []api.SecretRef { return refs }}
			res.waits.now = func() time.Time { return now }
			if tt.noSource {
				res.source = nil
			}
			pod := &api.Pod{Namespace: "shop", Name: "web", UID: "u1"}
			if tt.versions != "" {
				pod.Annotations = map[string]string{api.AnnotationSecretVersions: tt.versions}
			}
			if tt.afterLimit {
				if err := res.awaitVersions(context.Background(), &prestartRequest{Pod: pod}); err == nil {
					t.Fatal("the first attempt did not hold")
				}
				now = now.Add(versionWaitLimit)
				src.gets = nil
			}
			err := res.awaitVersions(context.Background(), &prestartRequest{Pod: pod})
			if !tt.wantHold {
				if err != nil {
					t.Fatalf("held: %v", err)
				}
				if len(res.waits.holding()) != 0 {
					t.Errorf("pods still holding: %v", res.waits.holding())
				}
			} else {
				if err == nil || reasonOf(err) != reasonContainerCreating {
					t.Fatalf("err %v, want a ContainerCreating hold", err)
				}
				for _, m := range tt.wantInMsg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("message %q lacks %q", err, m)
					}
				}
				if strings.Contains(err.Error(), secretValue) {
					t.Errorf("message %q holds a value", err)
				}
				if !res.waits.holding()["u1"] {
					t.Error("the pod is not recorded as holding")
				}
			}
			if tt.wantGets != nil {
				if src.gets == nil {
					src.gets = []string{}
				}
				if !slices.Equal(src.gets, tt.wantGets) {
					t.Errorf("gets %q, want %q", src.gets, tt.wantGets)
				}
			}
		})
	}
}

// TestVersionWaitsLimitCountsFromFirstHold: later attempts do not extend
// the wait; a pod that no longer needs to wait is released; the first
// hold of a pod wakes the secrets loop once.
func TestVersionWaitsLimitCountsFromFirstHold(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	w := &versionWaits{limit: 10 * time.Second, now: func() time.Time { return now }}
	began := w.beganCh()
	if hold, until := w.hold("a"); !hold || !until.Equal(now.Add(10*time.Second)) {
		t.Fatalf("first hold: %v until %v", hold, until)
	}
	select {
	case <-began:
	default:
		t.Error("the first hold did not wake the loop")
	}
	now = now.Add(9 * time.Second)
	if hold, _ := w.hold("a"); !hold {
		t.Error("released before the limit")
	}
	select {
	case <-began:
		t.Error("a repeated hold woke the loop again")
	default:
	}
	now = now.Add(time.Second)
	if hold, _ := w.hold("a"); hold {
		t.Error("still holding at the limit")
	}
	if w.holding()["a"] {
		t.Error("listed as holding after the limit")
	}
	w.hold("b")
	w.release("b")
	if len(w.holding()) != 0 {
		t.Errorf("holding %v after release", w.holding())
	}
	w.prune(func(uid string) bool { return uid == "b" })
	if _, ok := w.pods["a"]; ok {
		t.Error("pruned pod kept")
	}
	if _, ok := w.pods["b"]; !ok {
		t.Error("kept pod pruned")
	}
}

func TestReadableAgain(t *testing.T) {
	st := func(key, err string) api.SecretStatus {
		ns, name, _ := strings.Cut(key, "/")
		return api.SecretStatus{Namespace: ns, Name: name, Version: 1, Error: err}
	}
	failing := map[string]bool{}
	steps := []struct {
		statuses []api.SecretStatus
		want     []string
	}{
		{[]api.SecretStatus{st("a/x", ""), st("a/y", "sealed")}, nil},
		{[]api.SecretStatus{st("a/x", "sealed"), st("a/y", "sealed"), st("a/z", "denied")}, nil},
		{[]api.SecretStatus{st("a/x", ""), st("a/y", ""), st("a/z", "denied")}, []string{"a/x", "a/y"}},
		{[]api.SecretStatus{st("a/x", ""), st("a/y", "")}, nil},       // a/z forgotten
		{[]api.SecretStatus{st("a/x", ""), st("a/z", "")}, nil},       // a/z is new, never failed here
		{[]api.SecretStatus{st("a/x", "sealed"), st("a/z", "")}, nil}, // a/x fails again
		{[]api.SecretStatus{st("a/x", "")}, []string{"a/x"}},
	}
	for i, s := range steps {
		if got := readableAgain(s.statuses, failing); !slices.Equal(got, s.want) {
			t.Errorf("step %d: %q, want %q", i, got, s.want)
		}
	}
}

func TestPodUsesSecrets(t *testing.T) {
	keys := map[string]bool{"shop/db": true}
	tests := []struct {
		name string
		spec corev1.PodSpec
		want bool
	}{
		{"none", corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Env: []corev1.EnvVar{{Name: "X", Value: "db"}}}}}, false},
		{"env", corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Env: []corev1.EnvVar{secretEnv("X", "db", "k", nil)}}}}, true},
		{"other Secret", corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Env: []corev1.EnvVar{secretEnv("X", "api", "k", nil)}}}}, false},
		{"envFrom", corev1.PodSpec{Containers: []corev1.Container{{Name: "a", EnvFrom: []corev1.EnvFromSource{secretEnvFrom("db", "", nil)}}}}, true},
		{"init container", corev1.PodSpec{InitContainers: []corev1.Container{{Name: "i", EnvFrom: []corev1.EnvFromSource{secretEnvFrom("db", "", nil)}}}}, true},
		{"volume", corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}}}}, true},
		{"image pull secret", corev1.PodSpec{ImagePullSecrets: []corev1.LocalObjectReference{{Name: "db"}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &api.Pod{Namespace: "shop", Name: "web", Spec: tt.spec}
			if got := podUsesSecrets(p, keys); got != tt.want {
				t.Errorf("podUsesSecrets = %v, want %v", got, tt.want)
			}
			p.Namespace = "other"
			if podUsesSecrets(p, keys) {
				t.Error("a pod of another namespace uses the Secret")
			}
		})
	}
}
