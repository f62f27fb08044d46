package manifest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// checkTypes checks that v, a generic JSON value, fits Go type t, all the
// way down, so that every type error is reported at its exact path (the
// JSON decoder reports only the first, without list indices).
func checkTypes(v any, t reflect.Type, path *field.Path, out *fieldProblems) {
	if t == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if msg := typeMismatch(v, t); msg != "" {
		out.types = append(out.types, problem{field: pathString(path), msg: msg})
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return // custom types decode themselves
	}
	switch x := v.(type) {
	case []any:
		if t.Kind() != reflect.Slice {
			return
		}
		for i, e := range x {
			checkTypes(e, t.Elem(), path.Index(i), out)
		}
	case map[string]any:
		if t.Kind() != reflect.Map {
			return // a struct under a leaf rule: left to the decoder
		}
		for _, k := range sortedKeys(x) {
			checkTypes(x[k], t.Elem(), path.Key(k), out)
		}
	}
}

// typeMismatch says why v does not fit t, or returns "".
func typeMismatch(v any, t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil || reflect.PointerTo(t).Implements(unmarshalerType) {
		return "" // null fits anything; custom types decode themselves
	}
	want, ok := "", false
	switch t.Kind() {
	case reflect.String:
		_, ok = v.(string)
		want = "a string"
	case reflect.Bool:
		_, ok = v.(bool)
		want = "a boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n, isNum := v.(json.Number); isNum {
			if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
				return fmt.Sprintf("invalid value: %s is not an integer that fits in %s", n, t.Kind())
			}
			return ""
		}
		want = "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n, isNum := v.(json.Number); isNum {
			if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
				return fmt.Sprintf("invalid value: %s is not an integer that fits in %s", n, t.Kind())
			}
			return ""
		}
		want = "an integer"
	case reflect.Float32, reflect.Float64:
		_, ok = v.(json.Number)
		want = "a number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			_, ok = v.(string) // []byte is base64
			want = "a base64 string"
		} else {
			_, ok = v.([]any)
			want = "a list"
		}
	case reflect.Map, reflect.Struct:
		_, ok = v.(map[string]any)
		want = "an object"
	default:
		return ""
	}
	if ok {
		return ""
	}
	msg := fmt.Sprintf("invalid value: got %s, want %s", jsonKind(v), want)
	if t.Kind() == reflect.String {
		switch v.(type) {
		case json.Number, bool:
			msg += `; quote it in YAML (e.g. "1", "true")`
		}
	}
	return msg
}
