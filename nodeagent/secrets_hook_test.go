package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

// fakeSource is a SecretSource over a map "ns/name" → values.
type fakeSource struct {
	mu      sync.Mutex
	data    map[string]SecretData
	errs    map[string]error
	gets    []string // "ns/name@minVersion"
	changes chan string
	status  []api.SecretStatus
}

var _ SecretSource = (*fakeSource)(nil)

func newFakeSource() *fakeSource {
	return &fakeSource{data: map[string]SecretData{}, errs: map[string]error{}, changes: make(chan string, 16)}
}

func (f *fakeSource) set(key string, version int64, kv ...string) {
	d := SecretData{Version: version, Data: map[string][]byte{}}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Data[kv[i]] = []byte(kv[i+1])
	}
	f.mu.Lock()
	f.data[key] = d
	delete(f.errs, key)
	f.mu.Unlock()
}

func (f *fakeSource) fail(key string, err error) {
	f.mu.Lock()
	f.errs[key] = err
	f.mu.Unlock()
}

func (f *fakeSource) Get(_ context.Context, ref api.SecretRef, minVersion int64) (SecretData, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets = append(f.gets, fmt.Sprintf("%s@%d", ref.Key(), minVersion))
	if err := f.errs[ref.Key()]; err != nil {
		return SecretData{}, err
	}
	d, ok := f.data[ref.Key()]
	if !ok {
		return SecretData{}, fmt.Errorf("no secret at %s: %w", ref.Vault.Path, errdefs.ErrNotFound)
	}
	if d.Version < minVersion {
		return SecretData{}, fmt.Errorf("version %d is older than %d: %w", d.Version, minVersion, errdefs.ErrUnavailable)
	}
	return d, nil
}

func (f *fakeSource) Watch([]api.SecretRef) {}

func (f *fakeSource) Changes() <-chan string { return f.changes }

func (f *fakeSource) Status() []api.SecretStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.status)
}

func vaultRef(ns, name string, keys map[string]string) api.SecretRef {
	return api.SecretRef{Namespace: ns, Name: name, Type: "Opaque",
		Vault: &api.VaultSource{Engine: api.VaultEngineKV, Path: "secret/data/" + ns + "/" + name, Keys: keys}}
}

func plainRef(ns, name, typ string, kv ...string) api.SecretRef {
	r := api.SecretRef{Namespace: ns, Name: name, Type: typ, Data: map[string][]byte{}}
	for i := 0; i+1 < len(kv); i += 2 {
		r.Data[kv[i]] = []byte(kv[i+1])
	}
	return r
}

func optional() *bool { b := true; return &b }

func secretEnv(name, secret, key string, opt *bool) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key, Optional: opt}}}
}

func secretEnvFrom(secret, prefix string, opt *bool) corev1.EnvFromSource {
	return corev1.EnvFromSource{Prefix: prefix, SecretRef: &corev1.SecretEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Optional: opt}}
}

const secretValue = "s3cr3t-value"

func TestEnvHookSecrets(t *testing.T) {
	sealed := fmt.Errorf("Vault is sealed: %w", errdefs.ErrUnavailable)
	tests := []struct {
		name        string
		env         []corev1.EnvVar
		envFrom     []corev1.EnvFromSource
		annotations map[string]string
		sourceErr   error // for shop/db
		noSource    bool
		wantEnv     []string
		wantGets    []string
		wantReason  string
		wantMsg     []string // substrings of the waiting message
	}{
		{
			name:     "secretKeyRef between literals",
			env:      []corev1.EnvVar{{Name: "A", Value: "1"}, secretEnv("PASS", "db", "password", nil), {Name: "B", Value: "2"}},
			wantEnv:  []string{"A=1", "PASS=" + secretValue, "B=2"},
			wantGets: []string{"shop/db@0"},
		},
		{
			name:     "mapped key",
			env:      []corev1.EnvVar{secretEnv("USER", "db", "username", nil)},
			wantEnv:  []string{"USER=admin"},
			wantGets: []string{"shop/db@0"},
		},
		{
			name:    "plain Secret from the document, no source needed",
			env:     []corev1.EnvVar{secretEnv("TOKEN", "plain", "token", nil)},
			wantEnv: []string{"TOKEN=plain-token"}, noSource: true,
		},
		{
			name:    "envFrom with prefix skips invalid names, env wins after it",
			envFrom: []corev1.EnvFromSource{secretEnvFrom("plain", "P_", nil)},
			env:     []corev1.EnvVar{{Name: "P_token", Value: "override"}},
			wantEnv: []string{"P_token=plain-token", "P_x.y=dotted", "P_token=override"},
		},
		{
			name:        "annotation gives the minimum version",
			env:         []corev1.EnvVar{secretEnv("PASS", "db", "password", nil)},
			annotations: map[string]string{api.AnnotationSecretVersions: "db=3,other=9"},
			wantEnv:     []string{"PASS=" + secretValue},
			wantGets:    []string{"shop/db@3"},
		},
		{
			name:        "version not yet readable waits",
			env:         []corev1.EnvVar{secretEnv("PASS", "db", "password", nil)},
			annotations: map[string]string{api.AnnotationSecretVersions: "db=4"},
			wantReason:  reasonCreateContainerConfigError,
			wantMsg:     []string{`env PASS`, `Secret "shop/db"`, `secret/data/shop/db`, `"password"`, "older than 4"},
		},
		{
			name:     "optional missing Secret and key are skipped",
			env:      []corev1.EnvVar{secretEnv("X", "nope", "k", optional()), secretEnv("Y", "db", "nokey", optional()), {Name: "Z", Value: "z"}},
			envFrom:  []corev1.EnvFromSource{secretEnvFrom("nope", "", optional())},
			wantEnv:  []string{"Z=z"},
			wantGets: []string{"shop/db@0"},
		},
		{
			name:       "missing Secret waits",
			env:        []corev1.EnvVar{secretEnv("X", "nope", "k", nil)},
			wantReason: reasonCreateContainerConfigError,
			wantMsg:    []string{`env X`, `Secret "shop/nope" not found`},
		},
		{
			name:       "missing key waits naming Secret, path and key",
			env:        []corev1.EnvVar{secretEnv("X", "db", "nokey", nil)},
			wantReason: reasonCreateContainerConfigError,
			wantMsg:    []string{`env X`, `Secret "shop/db" (Vault path "secret/data/shop/db") has no key "nokey"`},
		},
		{
			name:       "Vault sealed waits, even when optional",
			env:        []corev1.EnvVar{secretEnv("PASS", "db", "password", optional())},
			sourceErr:  sealed,
			wantReason: reasonCreateContainerConfigError,
			wantMsg:    []string{`env PASS from key "password" of Secret "shop/db" (Vault path "secret/data/shop/db"): Vault is sealed`},
		},
		{
			name:       "missing Vault path waits",
			envFrom:    []corev1.EnvFromSource{secretEnvFrom("db", "", nil)},
			sourceErr:  fmt.Errorf("no secret at secret/data/shop/db: %w", errdefs.ErrNotFound),
			wantReason: reasonCreateContainerConfigError,
			wantMsg:    []string{`envFrom[0]: Secret "shop/db" (Vault path "secret/data/shop/db"): no secret at`},
		},
		{
			name:       "no Vault access on the node",
			env:        []corev1.EnvVar{secretEnv("PASS", "db", "password", nil)},
			noSource:   true,
			wantReason: reasonCreateContainerConfigError,
			wantMsg:    []string{`Secret "shop/db"`, "no Vault access"},
		},
		{
			name:       "fieldRef is still refused, naming the variable",
			env:        []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
			wantReason: reasonCreateContainerConfigError,
			wantMsg:    []string{"env NODE uses valueFrom.fieldRef"},
		},
		{
			name:       "configMapRef envFrom is refused",
			envFrom:    []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}},
			wantReason: reasonCreateContainerConfigError,
			wantMsg:    []string{"envFrom[0] uses configMapRef cm"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource()
			src.set("shop/db", 3, "password", secretValue, "username", "admin")
			if tt.sourceErr != nil {
				src.fail("shop/db", tt.sourceErr)
			}
			refs := []api.SecretRef{
				vaultRef("shop", "db", nil),
				plainRef("shop", "plain", "Opaque", "token", "plain-token", "x.y", "dotted", "bad key", "skipped"),
			}
			if tt.name == "mapped key" {
				src.set("shop/db", 3, "username", "admin") // the source applies the mapping
				refs[0].Vault.Keys = map[string]string{"username": "user"}
			}
			res := &secretResolver{source: src, refs: func() []api.SecretRef { return refs }}
			if tt.noSource {
				res.source = nil
			}
			pod := &api.Pod{Namespace: "shop", Name: "web", UID: "u1"}
			pod.Annotations = tt.annotations
			c := &corev1.Container{Name: "app", Env: tt.env, EnvFrom: tt.envFrom}
			spec := &ContainerSpec{}
			err := (&envHook{secrets: res}).Prestart(context.Background(), &prestartRequest{Pod: pod, Container: c, Spec: spec}, &prestartResponse{})
			if tt.wantReason != "" {
				if err == nil || reasonOf(err) != tt.wantReason {
					t.Fatalf("err %v, want reason %s", err, tt.wantReason)
				}
				for _, m := range tt.wantMsg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("message %q does not contain %q", err, m)
					}
				}
				if strings.Contains(err.Error(), secretValue) {
					t.Errorf("message %q contains the value", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(spec.Env, tt.wantEnv) {
				t.Errorf("env %q, want %q", spec.Env, tt.wantEnv)
			}
			if src.gets == nil {
				src.gets = []string{}
			}
			if tt.wantGets == nil {
				tt.wantGets = []string{}
			}
			if !slices.Equal(src.gets, tt.wantGets) {
				t.Errorf("gets %q, want %q", src.gets, tt.wantGets)
			}
		})
	}
}

func TestSecretErrorsAreClassified(t *testing.T) {
	res := &secretResolver{refs: func() []api.SecretRef { return nil }}
	_, err := res.get(context.Background(), &api.Pod{Namespace: "a"}, "b")
	if !errdefs.IsNotFound(err) {
		t.Errorf("missing Secret: %v, want NotFound", err)
	}
	var nilRes *secretResolver
	if _, err := nilRes.get(context.Background(), &api.Pod{Namespace: "a"}, "b"); !errdefs.IsNotFound(err) {
		t.Errorf("nil resolver: %v, want NotFound", err)
	}
	je := joinErrors([]error{errors.New("one"), errdefs.ErrNotFound})
	if je.Error() != "one; not found" || !errdefs.IsNotFound(je) {
		t.Errorf("joinErrors = %q", je)
	}
}
