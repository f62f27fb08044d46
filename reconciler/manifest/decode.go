package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// rawDoc is one document of a file, converted to JSON, or the reason it
// could not be.
type rawDoc struct {
	json    []byte
	problem *problem // nil when json holds the document
}

// problem is one error inside an object, before it gets its location.
type problem struct {
	field string
	msg   string
}

// fromFieldErrors converts Kubernetes validation errors. Errors of one field
// come from map iteration (labels, annotations), so each run of them is
// sorted to keep the output deterministic.
func fromFieldErrors(errs field.ErrorList) []problem {
	out := make([]problem, 0, len(errs))
	for _, e := range errs {
		out = append(out, problem{field: e.Field, msg: e.ErrorBody()})
	}
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && out[j].field == out[i].field {
			j++
		}
		sort.Slice(out[i:j], func(a, b int) bool { return out[i+a].msg < out[i+b].msg })
		i = j
	}
	return out
}

// splitYAML cuts a YAML stream at lines starting with "---" followed by
// nothing, blanks or a comment, or by content that then begins the next
// document ("--- {a: 1}"). Each part is converted to JSON on its own:
// sigs.k8s.io/yaml reads only the first document of a stream, so leaving two
// documents in one part would silently drop the second. Documents that are
// empty or hold only comments are dropped.
func splitYAML(b []byte) []rawDoc {
	var docs []rawDoc
	var cur []byte
	start := 1 // line number of cur's first line
	flush := func() {
		if d, ok := yamlDoc(cur, start); ok {
			docs = append(docs, d)
		}
	}
	line := 1
	for len(b) > 0 {
		n := bytes.IndexByte(b, '\n') + 1
		if n == 0 {
			n = len(b)
		}
		l := b[:n]
		if marker(l, "---") {
			flush()
			// Keep what follows the marker, at its column, as the first
			// line of the next document.
			cur = append([]byte("   "), l[3:]...)
			start = line
		} else {
			cur = append(cur, l...)
		}
		b = b[n:]
		line++
	}
	flush()
	return docs
}

// marker reports whether line begins with the document marker m ("---" or
// "...") followed by a blank or the end of the line.
func marker(line []byte, m string) bool {
	if !bytes.HasPrefix(line, []byte(m)) {
		return false
	}
	rest := line[len(m):]
	return len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\r' || rest[0] == '\n'
}

// yamlDoc converts one YAML document; ok is false for empty documents.
func yamlDoc(b []byte, startLine int) (rawDoc, bool) {
	n := startLine
	for l := range bytes.Lines(b) {
		if marker(l, "...") {
			return rawDoc{problem: &problem{msg: fmt.Sprintf(
				"invalid YAML: line %d: the document end marker \"...\" is not supported; separate documents with a line holding only \"---\"", n)}}, true
		}
		n++
	}
	j, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		return rawDoc{problem: &problem{msg: "invalid YAML: " + yamlMessage(err, startLine-1)}}, true
	}
	if isNull(j) {
		return rawDoc{}, false
	}
	return rawDoc{json: j}, true
}

var yamlLine = regexp.MustCompile(`\bline (\d+)\b`)

// yamlMessage flattens a YAML error to one line and makes its line numbers
// relative to the file instead of the document.
func yamlMessage(err error, offset int) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors: ")
	return yamlLine.ReplaceAllStringFunc(msg, func(s string) string {
		n, err := strconv.Atoi(s[len("line "):])
		if err != nil {
			return s
		}
		return "line " + strconv.Itoa(n+offset)
	})
}

func isNull(j []byte) bool {
	j = bytes.TrimSpace(j)
	return len(j) == 0 || string(j) == "null"
}

// jsonDoc checks a JSON file: one value, valid JSON, no duplicate keys.
// ok is false for an empty file.
func jsonDoc(b []byte) (rawDoc, bool) {
	if isNull(b) {
		return rawDoc{}, false
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		msg := err.Error()
		var se *json.SyntaxError
		if errors.As(err, &se) {
			msg = fmt.Sprintf("line %d: %s", 1+bytes.Count(b[:min(int(se.Offset), len(b))], []byte("\n")), msg)
		}
		return rawDoc{problem: &problem{msg: "invalid JSON: " + msg}}, true
	}
	if p := jsonDuplicates(b); p != nil {
		return rawDoc{problem: p}, true
	}
	return rawDoc{json: b}, true
}

// jsonDuplicates finds the first key set twice in one object of valid JSON;
// encoding/json would silently keep the last.
func jsonDuplicates(b []byte) *problem {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []*jsonFrame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &problem{msg: "invalid JSON: " + err.Error()}
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				stack[len(stack)-1].advance()
			}
			continue
		}
		if top != nil && top.keys != nil && top.wantKey {
			k, _ := tok.(string)
			if top.keys[k] {
				return &problem{field: childPath(top.path, k).String(), msg: "duplicate key; each key may appear once in an object"}
			}
			top.keys[k], top.key, top.wantKey = true, k, false
			continue
		}
		var path *field.Path
		switch {
		case top == nil:
		case top.keys != nil:
			path = childPath(top.path, top.key)
		default:
			path = top.path.Index(top.index)
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &jsonFrame{path: path, keys: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &jsonFrame{path: path})
		default:
			if top != nil {
				top.advance()
			}
		}
	}
}

// jsonFrame is an open object or array while scanning for duplicate keys.
type jsonFrame struct {
	path    *field.Path
	keys    map[string]bool // keys seen so far; nil for an array
	key     string          // the key whose value comes next
	wantKey bool            // the next token of an object is a key
	index   int             // the index of an array's next element
}

// advance moves past one complete value.
func (f *jsonFrame) advance() {
	if f.keys != nil {
		f.wantKey = true
	} else {
		f.index++
	}
}
