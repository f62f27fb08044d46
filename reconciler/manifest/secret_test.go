package manifest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/moor-dev/moor/api"
)

// TestLoadSecretsRepo loads Secrets of every form and workloads using
// them; the golden file holds the objects and the references the nodes
// would get.
func TestLoadSecretsRepo(t *testing.T) {
	objs, err := Load(readRepo(t, "testdata/secrets/valid"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	checkObjects(t, objs)
	refs := make([]api.SecretRef, 0, len(objs.Secrets))
	for i := range objs.Secrets {
		refs = append(refs, SecretRefOf(&objs.Secrets[i]))
	}
	out, err := yaml.Marshal(map[string]any{"secrets": objs.Secrets, "refs": refs})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/secrets/valid.golden", out)
	if len(objs.Secrets) != 5 || len(objs.Pods) != 1 || len(objs.Deployments) != 1 || len(objs.Jobs) != 1 || len(objs.CronJobs) != 1 {
		t.Errorf("got %d secrets, %d pods, %d deployments, %d jobs, %d cronjobs; want 5, 1, 1, 1, 1",
			len(objs.Secrets), len(objs.Pods), len(objs.Deployments), len(objs.Jobs), len(objs.CronJobs))
	}
}

const plainSecret = `apiVersion: v1
kind: Secret
metadata: {name: dev}
type: %TYPE%
%BODY%
`

// TestPlainSecrets: with AllowPlainSecrets, data and stringData are
// accepted and carried in the reference, merged as Kubernetes merges them;
// no error ever echoes a value.
func TestPlainSecrets(t *testing.T) {
	const value = "s3cr3t-value"
	for _, tt := range []struct {
		name, typ, body string
		allow           bool
		want            string            // errors; empty for success
		data            map[string]string // the reference's values
	}{{
		name: "rejected by default", typ: "Opaque", body: "stringData: {password: " + value + "}",
		want: "s.yaml: document 0: Secret default/dev: stringData: Forbidden: Secret values do not belong in Git: they would stay in its history and pass through the reconciler. " +
			"moor's nodes read Secret values from Vault instead: store them there (vault kv put secret/default/dev KEY=VALUE ...), remove data and stringData and add the annotation vault.moor.dev/path: secret/data/default/dev. " +
			"(A development server started with --allow-plain-secrets accepts plain Secrets.)",
	}, {
		name: "merged", typ: "Opaque", allow: true,
		body: "data: {a: YQ==, b: Yg==}\nstringData: {b: " + value + ", c: c}",
		data: map[string]string{"a": "a", "b": value, "c": "c"},
	}, {
		name: "not with vault", typ: "Opaque", allow: true,
		body: "stringData: {a: " + value + "}\nmetadata: {name: dev, annotations: {vault.moor.dev/path: secret/data/x}}",
		want: "s.yaml: document 0: Secret default/dev: metadata.annotations: Forbidden: a Secret takes its values either from Vault (vault.moor.dev/* annotations) or from data and stringData, not both; remove one",
	}, {
		name: "bad key", typ: "Opaque", allow: true, body: "stringData: {\"a b\": " + value + "}",
		want: `s.yaml: document 0: Secret default/dev: stringData: Invalid value: "a b": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`,
	}, {
		name: "docker config", typ: "kubernetes.io/dockerconfigjson", allow: true,
		body: `stringData: {.dockerconfigjson: '{"auths": {}}'}`,
		data: map[string]string{".dockerconfigjson": `{"auths": {}}`},
	}, {
		name: "docker config not JSON", typ: "kubernetes.io/dockerconfigjson", allow: true,
		body: "stringData: {.dockerconfigjson: " + value + "}",
		want: `s.yaml: document 0: Secret default/dev: data[.dockerconfigjson]: Invalid value: must be a JSON document ({"auths": {...}}), as ` + "`docker login`" + ` writes to ~/.docker/config.json`,
	}, {
		name: "docker config missing", typ: "kubernetes.io/dockerconfigjson", allow: true, body: "stringData: {a: " + value + "}",
		want: "s.yaml: document 0: Secret default/dev: data[.dockerconfigjson]: Required value: a kubernetes.io/dockerconfigjson Secret needs the key .dockerconfigjson",
	}, {
		name: "too large", typ: "Opaque", allow: true, body: "stringData: {a: " + strings.Repeat("x", maxSecretSize) + "}",
		want: "s.yaml: document 0: Secret default/dev: data: Too long: may not be more than 1048576 bytes",
	}} {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.NewReplacer("%TYPE%", tt.typ, "%BODY%", tt.body).Replace(plainSecret)
			if strings.Contains(tt.body, "metadata:") {
				src = strings.Replace(src, "metadata: {name: dev}\n", "", 1)
			}
			objs, err := LoadWithOptions(map[string][]byte{"s.yaml": []byte(src)}, Options{AllowPlainSecrets: tt.allow})
			got := ""
			if err != nil {
				checkErrorClass(t, err)
				got = err.Error()
				if strings.Contains(got, value) || strings.Contains(got, "xxxxxxxx") {
					t.Errorf("an error echoes a value: %s", got)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("errors (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			ref := SecretRefOf(&objs.Secrets[0])
			gotData := map[string]string{}
			for k, v := range ref.Data {
				gotData[k] = string(v)
			}
			if ref.Vault != nil || !cmp.Equal(gotData, tt.data) {
				t.Errorf("ref = %+v, data %v; want data %v", ref, gotData, tt.data)
			}
			if keys, known := SecretKeys(&objs.Secrets[0]); !known || !slices.Equal(keys, sortedKeys(tt.data)) {
				t.Errorf("SecretKeys = %v, %t", keys, known)
			}
		})
	}
}

// TestSecretPlainRefs: with AllowPlainSecrets a reference to a key a plain
// Secret does not have is an error.
func TestSecretPlainRefs(t *testing.T) {
	files := map[string][]byte{
		"s.yaml": []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: dev}\nstringData: {a: x}\n"),
		"p.yaml": []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: busybox\n" +
			"    env:\n    - name: B\n      valueFrom: {secretKeyRef: {name: dev, key: b}}\n"),
	}
	_, err := LoadWithOptions(files, Options{AllowPlainSecrets: true})
	want := `p.yaml: document 0: Pod default/p: spec.containers[0].env[0].valueFrom.secretKeyRef.key: Secret default/dev has no key "b": its keys are a (data and stringData); use one of them or set optional: true`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

func TestSecretKeys(t *testing.T) {
	for _, tt := range []struct {
		annotations map[string]string
		keys        []string
		known       bool
	}{
		{map[string]string{api.AnnotationVaultPath: "secret/data/x"}, nil, false},
		{map[string]string{api.AnnotationVaultPath: "secret/data/x", "vault.moor.dev/key.b": "B", "vault.moor.dev/key.a": "A"}, []string{"a", "b"}, true},
	} {
		s := &corev1.Secret{}
		s.Annotations = tt.annotations
		keys, known := SecretKeys(s)
		if !slices.Equal(keys, tt.keys) || known != tt.known {
			t.Errorf("SecretKeys(%v) = %v, %t; want %v, %t", tt.annotations, keys, known, tt.keys, tt.known)
		}
	}
}

// TestSecretUses lists the references of a pod spec with their paths; a
// nil path builds none.
func TestSecretUses(t *testing.T) {
	var spec corev1.PodSpec
	err := json.Unmarshal([]byte(`{
		"imagePullSecrets": [{"name": "registry"}],
		"volumes": [
			{"name": "a", "secret": {"secretName": "files"}},
			{"name": "b", "secret": {"secretName": "picked", "optional": true, "items": [{"key": "k1", "path": "p1"}, {"key": "k2", "path": "p2"}]}}
		],
		"containers": [
			{"name": "c", "env": [{"name": "PLAIN", "value": "x"}, {"name": "S", "valueFrom": {"secretKeyRef": {"name": "db", "key": "user"}}}]},
			{"name": "d", "envFrom": [{"secretRef": {"name": "all", "optional": true}}, {"prefix": "X"}]}
		]}`), &spec)
	if err != nil {
		t.Fatal(err)
	}
	type use struct {
		Name, Key, Field, KeyField string
		Optional, Env, ImagePull   bool
	}
	var got []use
	for _, u := range SecretUses(&spec, field.NewPath("spec", "template", "spec")) {
		got = append(got, use{u.Name, u.Key, pathString(u.Field), pathString(u.KeyField), u.Optional, u.Env, u.ImagePull})
	}
	want := []use{
		{"db", "user", "spec.template.spec.containers[0].env[1].valueFrom.secretKeyRef.name", "spec.template.spec.containers[0].env[1].valueFrom.secretKeyRef.key", false, true, false},
		{"all", "", "spec.template.spec.containers[1].envFrom[0].secretRef.name", "", true, true, false},
		{"files", "", "spec.template.spec.volumes[0].secret.secretName", "", false, false, false},
		{"picked", "k1", "spec.template.spec.volumes[1].secret.secretName", "spec.template.spec.volumes[1].secret.items[0].key", true, false, false},
		{"picked", "k2", "spec.template.spec.volumes[1].secret.secretName", "spec.template.spec.volumes[1].secret.items[1].key", true, false, false},
		{"registry", "", "spec.template.spec.imagePullSecrets[0].name", "", false, false, true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("uses (-want +got):\n%s", diff)
	}
	for _, u := range SecretUses(&spec, nil) {
		if u.Field != nil || u.KeyField != nil {
			t.Errorf("nil path built a field path: %+v", u)
		}
	}
}

// checkSecretObjects asserts what Load promises about Secrets: each is
// defaulted, names a valid Vault source or (only with plain Secrets
// allowed, never in FuzzLoad) carries values.
func checkSecretObjects(t *testing.T, objs *Objects) {
	t.Helper()
	var keys []string
	for i := range objs.Secrets {
		s := &objs.Secrets[i]
		keys = append(keys, s.Namespace+"/"+s.Name)
		ref := SecretRefOf(s)
		if ref.Type == "" || ref.Vault == nil || ref.Vault.Path == "" || ref.Data != nil {
			t.Errorf("secret %s/%s accepted as %+v", s.Namespace, s.Name, ref)
		}
		if ref.Vault != nil && checkVaultPath(ref.Vault.Path, ref.Vault.Engine) != "" {
			t.Errorf("secret %s/%s accepted with path %q", s.Namespace, s.Name, ref.Vault.Path)
		}
	}
	if !slices.IsSorted(keys) {
		t.Errorf("secrets not sorted: %v", keys)
	}
}
