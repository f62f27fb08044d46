package planner

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
)

const secretsYAML = `apiVersion: v1
kind: Secret
metadata:
  name: db
  annotations:
    vault.moor.dev/path: secret/data/shop/db
    vault.moor.dev/key.password: pass
---
apiVersion: v1
kind: Secret
metadata:
  name: pinned
  annotations: {vault.moor.dev/path: secret/data/pinned, vault.moor.dev/version: "7"}
---
apiVersion: v1
kind: Secret
metadata:
  name: lease
  annotations: {vault.moor.dev/path: database/creds/ro, vault.moor.dev/engine: lease}
---
apiVersion: v1
kind: Secret
metadata:
  name: registry
  annotations: {vault.moor.dev/path: secret/data/registry}
type: kubernetes.io/dockerconfigjson
---
apiVersion: v1
kind: Secret
metadata:
  name: files
  annotations: {vault.moor.dev/path: secret/data/files}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      imagePullSecrets: [{name: registry}]
      containers:
      - name: web
        image: registry.example.com/web:1
        envFrom: [{secretRef: {name: pinned}}]
        env:
        - name: DB_PASSWORD
          valueFrom: {secretKeyRef: {name: db, key: password}}
---
apiVersion: v1
kind: Pod
metadata: {name: bare}
spec:
  nodeSelector: {kubernetes.io/hostname: node-a}
  volumes:
  - {name: f, secret: {secretName: files}}
  - {name: gone, secret: {secretName: not-in-git, optional: true}}
  containers:
  - name: c
    image: busybox
    volumeMounts: [{name: f, mountPath: /f}, {name: gone, mountPath: /g}]
    env:
    - name: DB
      valueFrom: {secretKeyRef: {name: db, key: password}}
    - name: CREDS
      valueFrom: {secretKeyRef: {name: lease, key: username}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec:
      restartPolicy: Never
      nodeSelector: {kubernetes.io/hostname: node-b}
      containers:
      - name: c
        image: busybox
        envFrom: [{secretRef: {name: db}}]
`

func loadObjects(t testing.TB, src string) *manifest.Objects {
	t.Helper()
	objs, err := manifest.Load(map[string][]byte{"m.yaml": []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func secretsInput(t testing.TB, versions map[string]int64) Input {
	return Input{Commit: "c1", Objects: loadObjects(t, secretsYAML), Now: now, SecretVersions: versions,
		Nodes: []Node{{Name: "node-a", Ready: true}, {Name: "node-b", Ready: true}}}
}

// TestSecretsGolden plans Secrets used every way and records each node's
// document: the Secrets it lists and the pods' annotations.
func TestSecretsGolden(t *testing.T) {
	out := Plan(secretsInput(t, map[string]int64{"default/db": 4, "default/pinned": 9, "default/lease": 1700000000}))
	var b bytes.Buffer
	for _, n := range sortedKeys(out.Nodes) {
		d := out.Nodes[n]
		secrets, err := json.MarshalIndent(d.Secrets, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("== " + n + " secrets\n" + string(secrets) + "\n== " + n + " pods\n")
		for _, p := range d.Pods {
			b.WriteString(p.Key() + " " + p.UID + " " + p.Annotations[api.AnnotationSecretVersions] + "\n")
		}
	}
	vs, _ := json.Marshal(out.SecretVersions)
	b.WriteString("== versions\n" + string(vs) + "\n")
	golden(t, "testdata/secrets.golden", b.Bytes())

	for _, d := range out.Nodes {
		for _, s := range d.Secrets {
			if s.Data != nil || s.Vault == nil {
				t.Errorf("node %s: %+v", d.Node, s)
			}
		}
	}
}

// golden compares got with file, or rewrites it under -update.
func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./reconciler/planner -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", file, diff)
	}
}

// TestPlainSecretRefs: a plain Secret (development servers) reaches the
// nodes with its values.
func TestPlainSecretRefs(t *testing.T) {
	src := "apiVersion: v1\nkind: Secret\nmetadata: {name: dev}\nstringData: {k: v}\n---\n" +
		"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: busybox\n" +
		"    envFrom: [{secretRef: {name: dev}}]\n"
	objs, err := manifest.LoadWithOptions(map[string][]byte{"m.yaml": []byte(src)}, manifest.Options{AllowPlainSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	out := Plan(Input{Objects: objs, Nodes: []Node{{Name: "n", Ready: true}}, Now: now})
	d := out.Nodes["n"]
	want := []api.SecretRef{{Namespace: "default", Name: "dev", Type: "Opaque", Data: map[string][]byte{"k": []byte("v")}}}
	if diff := cmp.Diff(want, d.Secrets); diff != "" {
		t.Errorf("secrets (-want +got):\n%s", diff)
	}
	if a := d.Pods[0].Annotations[api.AnnotationSecretVersions]; a != "" {
		t.Errorf("a plain Secret is versioned: %q", a)
	}
}

func TestSecretVersions(t *testing.T) {
	objs := loadObjects(t, secretsYAML)
	got := secretVersions(objs, map[string]int64{"default/db": 4, "default/pinned": 9, "default/lease": 5, "default/files": -1, "other/db": 8})
	want := map[string]int64{"default/db": 4, "default/pinned": 7, "default/registry": 0, "default/files": 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	if got := secretVersions(nil, nil); len(got) != 0 {
		t.Errorf("no objects: %v", got)
	}
}

func TestEnvSecretVersions(t *testing.T) {
	objs := loadObjects(t, secretsYAML)
	versions := secretVersions(objs, map[string]int64{"default/db": 4})
	for _, tt := range []struct {
		name string
		spec *corev1.PodSpec
		want map[string]int64
	}{
		{"deployment: env and envFrom", &objs.Deployments[0].Spec.Template.Spec, map[string]int64{"db": 4, "pinned": 7}},
		{"pod: volumes and leases are not versioned", &objs.Pods[0].Spec, map[string]int64{"db": 4}},
		{"none", &corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}, nil},
	} {
		if diff := cmp.Diff(tt.want, envSecretVersions("", tt.spec, versions)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	if got := envSecretVersions("other", &objs.Pods[0].Spec, versions); got != nil {
		t.Errorf("another namespace's Secret counted: %v", got)
	}
}

// TestSecretTemplate: a template reading no Secret through env hashes as
// before; a new version changes the hash; the Deployment is not modified.
func TestSecretTemplate(t *testing.T) {
	objs := loadObjects(t, secretsYAML)
	d := &objs.Deployments[0]
	before := api.HashObject(&d.Spec.Template)
	v4 := secretTemplate(d.Namespace, &d.Spec.Template, secretVersions(objs, map[string]int64{"default/db": 4}))
	v5 := secretTemplate(d.Namespace, &d.Spec.Template, secretVersions(objs, map[string]int64{"default/db": 5}))
	if got := v4.Annotations[api.AnnotationSecretVersions]; got != "db=4,pinned=7" {
		t.Errorf("annotation = %q", got)
	}
	if h4, h5 := api.HashObject(v4), api.HashObject(v5); h4 == h5 || h4 == before {
		t.Errorf("hashes: before %s, v4 %s, v5 %s", before, h4, h5)
	}
	if api.HashObject(&d.Spec.Template) != before || d.Spec.Template.Annotations != nil {
		t.Errorf("template modified: %+v", d.Spec.Template.ObjectMeta)
	}
	plain := &objs.Pods[0]
	tmpl := &corev1.PodTemplateSpec{Spec: *plain.Spec.DeepCopy()}
	tmpl.Spec.Containers[0].Env = nil
	if got := secretTemplate("default", tmpl, secretVersions(objs, nil)); got != tmpl {
		t.Error("a template without env Secrets was copied")
	}
}

// TestSecretVersionPods: a bare Pod's UID follows the versions, a Job
// pod's does not, Deployment pods are left to their template.
func TestSecretVersionPods(t *testing.T) {
	in := secretsInput(t, nil)
	jobs := planBatch(&in, in.Objects)
	base, _ := expandWith(in.Objects, jobs.pods)
	uids := map[string]string{}
	for _, p := range base {
		uids[p.Key()] = p.UID
	}
	seen := map[string]string{}
	for _, v := range []int64{0, 4, 5} {
		pods, _ := expandWith(in.Objects, jobs.pods)
		secretVersionPods(pods, secretVersions(in.Objects, map[string]int64{"default/db": v}))
		for _, p := range pods {
			a := p.Annotations[api.AnnotationSecretVersions]
			switch {
			case p.Owner == "":
				if want := "db=" + itoa(v); a != want || p.UID == uids[p.Key()] || seen[p.UID] != "" {
					t.Errorf("v%d: bare pod %s: annotation %q (want %q), uid %s (before %s)", v, p.Name, a, want, p.UID, uids[p.Key()])
				}
				seen[p.UID] = p.Name
			case strings.HasPrefix(p.Owner, "Job/"):
				if want := "db=" + itoa(v); a != want || p.UID != uids[p.Key()] {
					t.Errorf("v%d: job pod %s: annotation %q (want %q), uid %s (before %s)", v, p.Name, a, want, p.UID, uids[p.Key()])
				}
			default:
				if a != "" || p.UID != uids[p.Key()] {
					t.Errorf("v%d: deployment pod %s changed: %q %s", v, p.Name, a, p.UID)
				}
			}
		}
	}
}

func itoa(v int64) string { return api.FormatSecretVersions(map[string]int64{"x": v})[2:] }

// TestSecretRotationThroughPlan: a higher version rolls the
// Deployment (new pod names) and restarts the bare Pod (new UID), while
// the Job pod keeps its UID; a version of a volume-only Secret changes
// nothing but the document's Secrets.
func TestSecretRotationThroughPlan(t *testing.T) {
	keys := func(out *Output) map[string]string {
		m := map[string]string{}
		for _, d := range out.Nodes {
			for _, p := range d.Pods {
				m[p.Key()] = p.UID + " " + p.Annotations[api.AnnotationSecretVersions]
			}
		}
		return m
	}
	v4 := keys(Plan(secretsInput(t, map[string]int64{"default/db": 4})))
	v4files := keys(Plan(secretsInput(t, map[string]int64{"default/db": 4, "default/files": 2})))
	if diff := cmp.Diff(v4, v4files); diff != "" {
		t.Errorf("a volume-only Secret's version changed pods (-v4 +v4files):\n%s", diff)
	}
	v5 := keys(Plan(secretsInput(t, map[string]int64{"default/db": 5})))
	for k, a := range v4 {
		b, still := v5[k]
		switch {
		case strings.HasPrefix(k, "default/web-"):
			if still {
				t.Errorf("deployment pod %s survived the rotation", k)
			}
		case k == "default/bare":
			if a == b || !strings.HasSuffix(b, "db=5") {
				t.Errorf("bare pod: %q -> %q", a, b)
			}
		default: // the Job's pod
			if strings.Fields(a)[0] != strings.Fields(b)[0] || !strings.HasSuffix(b, "db=5") {
				t.Errorf("job pod %s: %q -> %q", k, a, b)
			}
		}
	}
}
