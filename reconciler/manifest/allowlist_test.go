package manifest

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TestAllowListNamesRealFields guards against typos in allowlist.go: every
// key it lists, allowed or rejected, must be a field of the Kubernetes type.
func TestAllowListNamesRealFields(t *testing.T) {
	for _, k := range kinds {
		checkRealFields(t, k.fields, k.goType, field.NewPath(k.kind))
	}
}

func checkRealFields(t *testing.T, r fields, typ reflect.Type, path *field.Path) {
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
		typ = typ.Elem()
	}
	if typ.Kind() != reflect.Struct {
		t.Errorf("%s: fields rule on non-struct type %s", path, typ)
		return
	}
	known := jsonFields(typ)
	for key, rr := range r {
		ft, ok := known[key]
		if !ok {
			t.Errorf("%s: %s has no field %q", path, typ, key)
			continue
		}
		if sub, ok := rr.(fields); ok {
			checkRealFields(t, sub, ft, path.Child(key))
		}
	}
}
