package manifest

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// readRepo reads every file under dir, keyed by slash path relative to dir.
func readRepo(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// golden compares got with the file, or rewrites it under -update.
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
		t.Fatalf("%v (run go test ./reconciler/manifest -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", file, diff)
	}
}

func TestLoadValidRepo(t *testing.T) {
	objs, err := Load(readRepo(t, "testdata/valid"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(objs.Namespaces) != 2 || len(objs.Pods) != 3 || len(objs.Deployments) != 3 || len(objs.Services) != 4 ||
		len(objs.Jobs) != 1 || len(objs.CronJobs) != 1 {
		t.Fatalf("got %d namespaces, %d pods, %d deployments, %d services; want 2, 3, 3, 4",
			len(objs.Namespaces), len(objs.Pods), len(objs.Deployments), len(objs.Services))
	}
	out, err := yaml.Marshal(objs)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/valid.golden", out)
}

// TestLoadErrors loads each entry of testdata/errors as a repository of its
// own (a file, or a directory of files) and compares the formatted errors.
func TestLoadErrors(t *testing.T) {
	entries, err := os.ReadDir("testdata/errors")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".golden") {
			continue
		}
		name := strings.TrimSuffix(e.Name(), filepath.Ext(e.Name()))
		t.Run(name, func(t *testing.T) {
			p := filepath.Join("testdata/errors", e.Name())
			var files map[string][]byte
			if e.IsDir() {
				files = readRepo(t, p)
			} else {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				files = map[string][]byte{e.Name(): b}
			}
			objs, err := Load(files)
			if err == nil {
				t.Fatalf("Load succeeded with %+v; want errors", objs)
			}
			if objs != nil {
				t.Errorf("Load returned objects along with errors")
			}
			checkErrorClass(t, err)
			golden(t, filepath.Join("testdata/errors", name+".golden"), []byte(err.Error()+"\n"))
		})
	}
}

// checkErrorClass asserts what every error of Load must satisfy.
func checkErrorClass(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("errors.Is(err, ErrInvalid) = false for %v", err)
	}
	var list ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		t.Fatalf("error is not a non-empty ErrorList: %#v", err)
	}
	for _, fe := range list {
		if !errors.Is(fe, ErrInvalid) {
			t.Errorf("errors.Is(%v, ErrInvalid) = false", fe)
		}
		if strings.ContainsAny(fe.Error(), "\n\r") {
			t.Errorf("error spans lines: %q", fe.Error())
		}
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != len(list) {
		t.Errorf("Error() has %d lines for %d errors", got, len(list))
	}
}

const podYAML = `apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
  - {name: c, image: busybox}
`

func TestLoad(t *testing.T) {
	tests := []struct {
		name  string
		files map[string][]byte
		// want is the formatted errors, one per line; empty for success.
		want string
		// check inspects the objects of a successful load.
		check func(t *testing.T, objs *Objects)
	}{{
		name:  "no files",
		files: nil,
		check: func(t *testing.T, objs *Objects) {
			if objs == nil || len(objs.Pods)+len(objs.Namespaces)+len(objs.Deployments) != 0 {
				t.Errorf("got %+v, want empty Objects", objs)
			}
		},
	}, {
		name: "other files are ignored",
		files: map[string][]byte{
			"README.md": []byte("kind: Service"), "chart/values.txt": []byte("{"), "yaml": []byte("x: y"),
		},
		check: func(t *testing.T, objs *Objects) {},
	}, {
		name:  "extensions are matched case-insensitively",
		files: map[string][]byte{"POD.YAML": []byte(podYAML)},
		check: func(t *testing.T, objs *Objects) {
			if len(objs.Pods) != 1 {
				t.Errorf("got %d pods, want 1", len(objs.Pods))
			}
		},
	}, {
		name:  "namespace defaults to default",
		files: map[string][]byte{"p.yaml": []byte(podYAML)},
		check: func(t *testing.T, objs *Objects) {
			if ns := objs.Pods[0].Namespace; ns != "default" {
				t.Errorf("namespace = %q, want default", ns)
			}
		},
	}, {
		name: "objects are sorted by namespace then name across files",
		files: map[string][]byte{
			"a.yaml":  []byte(strings.ReplaceAll(podYAML, "name: p", "name: zeta")),
			"b.yaml":  []byte(strings.ReplaceAll(podYAML, "name: p", "name: alpha\n  namespace: zz")),
			"c.yaml":  []byte(strings.ReplaceAll(podYAML, "name: p", "name: beta")),
			"ns.json": []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"zz"}}`),
		},
		check: func(t *testing.T, objs *Objects) {
			var got []string
			for _, p := range objs.Pods {
				got = append(got, p.Namespace+"/"+p.Name)
			}
			if want := []string{"default/beta", "default/zeta", "zz/alpha"}; !cmp.Equal(got, want) {
				t.Errorf("pods = %v, want %v", got, want)
			}
		},
	}, {
		name:  "empty and comment-only documents are not counted",
		files: map[string][]byte{"x.yaml": []byte("---\n# only a comment\n---\n\n---\napiVersion: v1\nkind: ReplicationController\n")},
		want:  "x.yaml: document 0: ReplicationController: kind ReplicationController (v1) is not supported by moor yet; supported kinds: v1 Namespace, v1 Pod, apps/v1 Deployment, v1 Service, batch/v1 Job, batch/v1 CronJob, v1 Secret",
	}, {
		name:  "content after --- starts the next document",
		files: map[string][]byte{"x.yaml": []byte(podYAML + "--- {apiVersion: v1, kind: Namespace, metadata: {name: Bad}}\n")},
		want:  `x.yaml: document 1: Namespace Bad: metadata.name: Invalid value: "Bad": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
	}, {
		name:  "CRLF line endings",
		files: map[string][]byte{"x.yaml": []byte(strings.ReplaceAll(podYAML+"---\n"+podYAML, "name: p", "name: q"))},
		want:  "x.yaml: document 1: Pod default/q: metadata.name: Pod default/q is defined twice: also in x.yaml document 0; define each object once per commit",
	}, {
		name:  "YAML error lines count from the start of the file",
		files: map[string][]byte{"x.yaml": []byte(podYAML + "---\napiVersion: v1\nkind: Pod\nkind: Pod\n")},
		want:  `x.yaml: document 1: invalid YAML: line 11: key "kind" already set in map`,
	}, {
		name:  "declaring namespace default is allowed",
		files: map[string][]byte{"ns.yaml": []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n"), "p.yaml": []byte(podYAML)},
		check: func(t *testing.T, objs *Objects) {
			if len(objs.Namespaces) != 1 || len(objs.Pods) != 1 {
				t.Errorf("got %+v", objs)
			}
		},
	}, {
		name:  "List item that is not an object",
		files: map[string][]byte{"x.yaml": []byte("apiVersion: v1\nkind: List\nitems:\n- - a\n- 3\n")},
		want: "x.yaml: document 0: items[0]: a manifest must be an object with apiVersion, kind and metadata, not a list\n" +
			"x.yaml: document 0: items[1]: a manifest must be an object with apiVersion, kind and metadata, not a number",
	}, {
		name:  "List items must be a list",
		files: map[string][]byte{"x.yaml": []byte("apiVersion: v1\nkind: List\nitems: {a: b}\n")},
		want:  "x.yaml: document 0: List: items: invalid value: got an object, want a list",
	}, {
		name:  "control characters are escaped",
		files: map[string][]byte{"x.yaml": []byte("apiVersion: v1\nkind: \"Ser\\nvice\"\nmetadata: {name: \"a\\tb\"}\n")},
		want:  `x.yaml: document 0: Ser\nvice a\tb: kind "Ser\nvice" (v1) is not supported by moor yet; supported kinds: v1 Namespace, v1 Pod, apps/v1 Deployment, v1 Service, batch/v1 Job, batch/v1 CronJob, v1 Secret`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "CRLF line endings" {
				for k, v := range tt.files {
					tt.files[k] = []byte(strings.ReplaceAll(string(v), "\n", "\r\n"))
				}
			}
			objs, err := Load(tt.files)
			if tt.want != "" {
				if err == nil {
					t.Fatalf("Load succeeded; want %s", tt.want)
				}
				checkErrorClass(t, err)
				if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
					t.Errorf("errors (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, objs)
		})
	}
}

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		e    FieldError
		want string
	}{{
		e: FieldError{File: "apps/web.yaml", Index: 1, Item: NoItem, Kind: "Deployment", Namespace: "shop", Name: "web",
			Field: "spec.template.spec.containers[0].resources", Message: "not supported by moor yet"},
		want: "apps/web.yaml: document 1: Deployment shop/web: spec.template.spec.containers[0].resources: not supported by moor yet",
	}, {
		e:    FieldError{File: "list.yaml", Index: 2, Item: 1, Kind: "Pod", Namespace: "default", Name: "p", Message: "bad"},
		want: "list.yaml: document 2: items[1]: Pod default/p: bad",
	}, {
		e:    FieldError{File: "ns.yaml", Item: NoItem, Kind: "Namespace", Name: "shop", Message: "bad"},
		want: "ns.yaml: document 0: Namespace shop: bad",
	}, {
		e:    FieldError{File: "x.yaml", Item: NoItem, Field: "kind", Message: "required"},
		want: "x.yaml: document 0: kind: required",
	}, {
		e:    FieldError{File: "a\nb.yaml", Item: NoItem, Kind: "Pod", Message: "x\x00y"},
		want: `a\nb.yaml: document 0: Pod: x\x00y`,
	}}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

func TestErrorListUnwrap(t *testing.T) {
	_, err := Load(map[string][]byte{"x.yaml": []byte("kind: Pod\n---\napiVersion: v1\n")})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "apiVersion" {
		t.Fatalf("errors.As(*FieldError) = %v, %+v", err, fe)
	}
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 || len(list.Unwrap()) != 2 {
		t.Fatalf("want an ErrorList of 2, got %v", err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Error("errors.Is(err, ErrInvalid) = false")
	}
}
