package manifest

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// rule is an entry of an allow-list tree (see allowlist.go).
type rule interface{ isRule() }

// fields allows an object with these keys; applied to every element when
// the value is a list. Keys not listed are rejected: as unknown when the
// Kubernetes type has no such field, as not supported by moor otherwise.
type fields map[string]rule

// leaf allows any value; its contents are not inspected here (labels,
// strings, numbers) but by the typed decoder and validation.
type leaf struct{}

// unsupported is a Kubernetes field moor rejects with this message, for
// fields whose default message would not help the user.
type unsupported string

// rejected is like unsupported but rejects empty values too, for fields
// whose empty value means something (a volume's emptyDir: {}).
type rejected string

func (fields) isRule()      {}
func (leaf) isRule()        {}
func (unsupported) isRule() {}
func (rejected) isRule()    {}

// value is the leaf rule.
var value = leaf{}

// notSupported is the message for Kubernetes fields moor does not implement.
const notSupported = "not supported by moor yet; remove it or run this workload on Kubernetes (moor never ignores a field silently)"

// fieldProblems are the problems checkFields finds.
type fieldProblems struct {
	keys  []problem // keys not allowed
	types []problem // allowed values of the wrong JSON type
	// pruned is set when empty values of fields moor does not implement
	// were removed from the walked value (see isEmpty).
	pruned bool
}

func (f fieldProblems) all() []problem { return append(f.keys, f.types...) }

// checkFields walks v, the generic form of a document (numbers as
// json.Number), against the allow-list r and the Go type t the document
// decodes into. It reports every key that is not allowed and every allowed
// value whose JSON type does not fit, each at its exact path.
//
// A Kubernetes field moor does not implement is accepted, and deleted from
// v, when its value is empty (see isEmpty): `kubectl create --dry-run -o
// yaml` writes `creationTimestamp: null`, `resources: {}` and `status: {}`,
// which mean nothing. Unknown fields are rejected even when empty.
func checkFields(v any, r fields, t reflect.Type, path *field.Path) fieldProblems {
	var out fieldProblems
	walkFields(v, r, t, path, &out)
	return out
}

func walkFields(v any, r fields, t reflect.Type, path *field.Path, out *fieldProblems) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return
	}
	if msg := typeMismatch(v, t); msg != "" {
		out.types = append(out.types, problem{field: pathString(path), msg: msg})
		return
	}
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			walkFields(e, r, t.Elem(), path.Index(i), out)
		}
	case map[string]any:
		known := jsonFields(t)
		for _, k := range sortedKeys(x) {
			p := childPath(path, k)
			switch rr := r[k].(type) {
			case fields:
				walkFields(x[k], rr, known[k], p, out)
			case leaf:
				checkTypes(x[k], known[k], p, out)
			case unsupported:
				if isEmpty(x[k]) {
					delete(x, k)
					out.pruned = true
					continue
				}
				out.keys = append(out.keys, problem{field: pathString(p), msg: string(rr)})
			case rejected:
				out.keys = append(out.keys, problem{field: pathString(p), msg: string(rr)})
			default:
				if _, ok := known[k]; ok && isEmpty(x[k]) {
					delete(x, k)
					out.pruned = true
				} else if ok {
					out.keys = append(out.keys, problem{field: pathString(p), msg: notSupported})
				} else {
					out.keys = append(out.keys, problem{field: pathString(p), msg: unknownField(k, known)})
				}
			}
		}
	}
}

// isEmpty reports whether v carries no meaning: null, an empty list, or an
// object whose values are all empty ({}, {loadBalancer: {}}). Scalars,
// even "" and 0, are never empty: they may mean something.
func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case []any:
		return len(x) == 0
	case map[string]any:
		for _, e := range x {
			if !isEmpty(e) {
				return false
			}
		}
		return true
	}
	return false
}

// unknownField explains a key the Kubernetes type does not have.
func unknownField(k string, known map[string]reflect.Type) string {
	msg := "unknown field: Kubernetes has no such field here; check its spelling and indentation"
	for name := range known {
		if strings.EqualFold(name, k) {
			return fmt.Sprintf("%s (did you mean %q?)", msg, name)
		}
	}
	return msg
}

var jsonFieldsCache sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields returns the JSON names of struct type t's fields and their
// types, following embedded and inline structs as encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := jsonFieldsCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" && (f.Anonymous || strings.Contains(opts, "inline")) {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					m[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	jsonFieldsCache.Store(t, m)
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// childPath appends key k to p; keys that are not plain identifiers (they
// come from the input) are shown quoted in brackets.
func childPath(p *field.Path, k string) *field.Path {
	plain := k != ""
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '$') {
			plain = false
			break
		}
	}
	if plain {
		return p.Child(k)
	}
	return p.Key(strconv.Quote(k))
}

// pathString is p.String(), empty for the whole object.
func pathString(p *field.Path) string {
	if p == nil {
		return ""
	}
	return p.String()
}
