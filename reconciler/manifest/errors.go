package manifest

import (
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid classifies every error Load returns: errors.Is(err, ErrInvalid)
// holds for a FieldError and for an ErrorList.
var ErrInvalid = errors.New("invalid manifest")

// NoItem is FieldError.Item for a document that is not a v1 List.
const NoItem = -1

// FieldError is one problem in one document of a commit.
type FieldError struct {
	// File is the slash path relative to the manifest directory.
	File string
	// Index is the 0-based index of the document in File, counting only
	// documents with content (empty and comment-only ones are skipped).
	Index int
	// Item is the 0-based index in the items of a v1 List document, or
	// NoItem when the document is not a List.
	Item int
	// Kind, Namespace and Name identify the object as far as they could be
	// read; any of them may be empty. Namespace is defaulted to "default"
	// for namespaced kinds.
	Kind, Namespace, Name string
	// Field is the path of the offending field, e.g.
	// "spec.template.spec.containers[0].image"; empty for the whole object.
	Field string
	// Message says what is wrong and how to fix it.
	Message string
}

// Error renders one line, e.g.
// "apps/web.yaml: document 1: Deployment shop/web: spec.replicas: Invalid value: -1: must be greater than or equal to 0".
// Every part that comes from the input is escaped so the line stays one line.
func (e *FieldError) Error() string {
	parts := []string{clean(e.File), "document " + strconv.Itoa(e.Index)}
	if e.Item != NoItem {
		parts = append(parts, "items["+strconv.Itoa(e.Item)+"]")
	}
	if obj := e.object(); obj != "" {
		parts = append(parts, obj)
	}
	if e.Field != "" {
		parts = append(parts, clean(e.Field))
	}
	parts = append(parts, clean(e.Message))
	return strings.Join(parts, ": ")
}

// object renders "Kind namespace/name", "Kind name" or "Kind".
func (e *FieldError) object() string {
	s := clean(e.Kind)
	if e.Name == "" {
		return s
	}
	name := clean(e.Name)
	if e.Namespace != "" {
		name = clean(e.Namespace) + "/" + name
	}
	if s == "" {
		return name
	}
	return s + " " + name
}

// Unwrap makes errors.Is(e, ErrInvalid) hold.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// ErrorList is every problem Load found, ordered by file, document and
// List item, then by field within an object.
type ErrorList []*FieldError

// Error renders one line per problem.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, so errors.Is(l, ErrInvalid) holds and
// errors.As finds a *FieldError.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// clean escapes control and other non-printable characters (and so line
// breaks) the way strconv.Quote would, without adding quotes.
func clean(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
