package manifest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzLoad feeds arbitrary bytes as a YAML and as a JSON file (and twice,
// to reach the checks between files). Load must not panic, must classify
// every error as ErrInvalid with one line per problem, and must return
// objects that keep its promises when it succeeds.
func FuzzLoad(f *testing.F) {
	err := filepath.WalkDir("testdata", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		f.Add(b)
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, files := range []map[string][]byte{
			{"f.yaml": data},
			{"f.json": data},
			{"a.yaml": data, "b/c.yml": data},
		} {
			objs, err := Load(files)
			if err != nil {
				if objs != nil {
					t.Fatal("objects returned with an error")
				}
				checkErrorClass(t, err)
				continue
			}
			checkObjects(t, objs)
		}
	})
}

// checkObjects asserts the promises of a successful Load.
func checkObjects(t *testing.T, objs *Objects) {
	t.Helper()
	if objs == nil {
		t.Fatal("nil Objects without error")
	}
	declared := map[string]bool{"default": true}
	for _, n := range objs.Namespaces {
		declared[n.Name] = true
	}
	var keys []string
	for _, p := range objs.Pods {
		keys = append(keys, p.Namespace+"/"+p.Name)
		if !declared[p.Namespace] {
			t.Errorf("pod %s/%s in undeclared namespace", p.Namespace, p.Name)
		}
		if len(p.Spec.Containers) == 0 {
			t.Errorf("pod %s/%s without containers", p.Namespace, p.Name)
		}
	}
	if !slices.IsSorted(keys) {
		t.Errorf("pods not sorted: %v", keys)
	}
	keys = nil
	for _, d := range objs.Deployments {
		keys = append(keys, d.Namespace+"/"+d.Name)
		if !declared[d.Namespace] {
			t.Errorf("deployment %s/%s in undeclared namespace", d.Namespace, d.Name)
		}
		if d.Spec.Selector == nil {
			t.Errorf("deployment %s/%s without selector", d.Namespace, d.Name)
		}
	}
	if !slices.IsSorted(keys) {
		t.Errorf("deployments not sorted: %v", keys)
	}
	checkBatchObjects(t, objs)
	checkSecretObjects(t, objs)
}
