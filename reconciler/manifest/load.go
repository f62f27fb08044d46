package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"reflect"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// defaultNamespace is given to namespaced objects that name none. It needs
// no Namespace manifest.
const defaultNamespace = "default"

// Load parses and validates the manifests of one commit. files maps slash
// paths relative to the manifest directory to contents; only *.yaml, *.yml
// and *.json files are read, in sorted order. YAML files may hold several
// documents separated by "---"; any document may be a v1 List.
//
// Either every object is valid and Load returns them, defaulted and sorted,
// or it returns an ErrorList with every problem found. No manifests at all
// is valid and gives empty Objects. Services are checked against the
// default cluster configuration (see LoadWithOptions).
func Load(files map[string][]byte) (*Objects, error) {
	opts := DefaultOptions()
	return load(files, &opts)
}

func load(files map[string][]byte, opts *Options) (*Objects, error) {
	l := &loader{opts: opts}
	for _, name := range sortedKeys(files) {
		switch strings.ToLower(path.Ext(name)) {
		case ".yaml", ".yml":
			l.file(name, splitYAML(files[name]))
		case ".json":
			if d, ok := jsonDoc(files[name]); ok {
				l.file(name, []rawDoc{d})
			}
		}
	}
	l.crossCheck()
	if len(l.errs) > 0 {
		sort.SliceStable(l.errs, func(i, j int) bool { return l.errs[i].loc().less(l.errs[j].loc()) })
		return nil, l.errs
	}
	return l.objects(), nil
}

// location is where a document is: file, document index, List item.
type location struct {
	file        string
	index, item int
}

func (a location) less(b location) bool {
	if a.file != b.file {
		return a.file < b.file
	}
	if a.index != b.index {
		return a.index < b.index
	}
	return a.item < b.item
}

func (a location) String() string {
	s := a.file + " document " + fmt.Sprint(a.index)
	if a.item != NoItem {
		s += fmt.Sprintf(" items[%d]", a.item)
	}
	return s
}

func (e *FieldError) loc() location { return location{e.File, e.Index, e.Item} }

// doc is one object document that could be identified.
type doc struct {
	loc             location
	kind            *kindSpec
	namespace, name string        // namespace defaulted for namespaced kinds
	obj             metav1.Object // nil when the document is invalid
}

// loader collects the documents and problems of one commit.
type loader struct {
	opts *Options
	docs []*doc
	errs ErrorList
}

func (l *loader) file(name string, raws []rawDoc) {
	for i, raw := range raws {
		loc := location{file: name, index: i, item: NoItem}
		if raw.problem != nil {
			l.report(loc, "", "", "", *raw.problem)
			continue
		}
		l.document(loc, raw.json, true)
	}
}

// document handles one JSON document; a List is allowed only at the top.
func (l *loader) document(loc location, data []byte, top bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		l.report(loc, "", "", "", problem{msg: "invalid JSON: " + err.Error()})
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		l.report(loc, "", "", "", problem{msg: fmt.Sprintf(
			"a manifest must be an object with apiVersion, kind and metadata, not %s", jsonKind(v))})
		return
	}
	apiVersion, kind, probs := typeMeta(m)
	namespace, name := identity(m)
	if len(probs) > 0 {
		l.report(loc, kind, namespace, name, probs...)
		return
	}
	if apiVersion == "v1" && kind == kindList {
		if !top {
			l.report(loc, kind, "", "", problem{msg: "a List may not contain another List; put its items in the outer List"})
			return
		}
		l.list(loc, m)
		return
	}
	spec, why := lookupKind(apiVersion, kind)
	if spec == nil {
		l.report(loc, kind, namespace, name, problem{msg: why})
		return
	}
	switch {
	case !spec.namespaced:
		namespace = ""
	case namespace == "":
		namespace = defaultNamespace
	}
	d := &doc{loc: loc, kind: spec, namespace: namespace, name: name}
	l.docs = append(l.docs, d)
	obj, probs := checkObject(spec, m, data, l.opts)
	if len(probs) > 0 {
		l.report(loc, kind, namespace, name, probs...)
		return
	}
	d.obj = obj
}

// checkObject checks one object of a supported kind: allowed fields and
// their types on the generic form m, then the typed object decoded from
// data, defaulted, against the kind's validation.
func checkObject(spec *kindSpec, m map[string]any, data []byte, opts *Options) (metav1.Object, []problem) {
	checked := checkFields(m, spec.fields, spec.goType, nil)
	probs := checked.all()
	if checked.pruned {
		// Empty unsupported fields were dropped from m; decode what is left
		// so they leave no trace (an empty livenessProbe stays nil).
		if b, err := json.Marshal(m); err == nil {
			data = b
		}
	}
	obj, err := spec.decode(data, len(probs) == 0)
	switch {
	case len(checked.types) > 0:
		// Reported at their paths already; the object is not worth
		// validating with zero values where the input was wrong.
		return obj, probs
	case err != nil && !(len(checked.keys) > 0 && isTypeError(err)):
		return obj, append(probs, decodeProblem(err))
	}
	// A type error left after checkFields lies inside a field reported as
	// not allowed; the decoder skipped just that value.
	if spec.namespaced && obj.GetNamespace() == "" {
		obj.SetNamespace(defaultNamespace)
	}
	return obj, append(probs, fromFieldErrors(spec.validate(obj, opts))...)
}

// list checks a v1 List and then each of its items as its own document.
func (l *loader) list(loc location, m map[string]any) {
	probs := checkFields(m, listFields, reflect.TypeFor[corev1.List](), nil).all()
	items, _ := m["items"].([]any) // not a list: reported by checkFields
	if len(probs) > 0 {
		l.report(loc, kindList, "", "", probs...)
	}
	for i, item := range items {
		data, err := json.Marshal(item)
		itemLoc := location{file: loc.file, index: loc.index, item: i}
		if err != nil {
			l.report(itemLoc, "", "", "", problem{msg: "cannot encode item: " + err.Error()})
			continue
		}
		l.document(itemLoc, data, false)
	}
}

// typeMeta reads apiVersion and kind.
func typeMeta(m map[string]any) (apiVersion, kind string, probs []problem) {
	read := func(key string) string {
		v, ok := m[key]
		s, isString := v.(string)
		switch {
		case !ok || v == nil || s == "" && isString:
			probs = append(probs, problem{field: key, msg: "required; every manifest needs apiVersion and kind, e.g. apiVersion: apps/v1 and kind: Deployment"})
		case !isString:
			probs = append(probs, problem{field: key, msg: "must be a string, not " + jsonKind(v)})
		}
		return s
	}
	return read("apiVersion"), read("kind"), probs
}

// identity reads metadata.namespace and metadata.name when they are strings.
func identity(m map[string]any) (namespace, name string) {
	meta, _ := m["metadata"].(map[string]any)
	namespace, _ = meta["namespace"].(string)
	name, _ = meta["name"].(string)
	return namespace, name
}

// jsonKind names the JSON type of a generic value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}

// decodeProblem turns a typed decoding error into a problem at its field.
func decodeProblem(err error) problem {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		msg := fmt.Sprintf("invalid value: got %s, want %s", te.Value, goKind(te.Type))
		if goKind(te.Type) == "a string" && (te.Value == "number" || te.Value == "bool") {
			msg += `; quote the value in YAML (e.g. "1", "true")`
		}
		return problem{field: te.Field, msg: msg}
	}
	return problem{msg: "cannot decode: " + strings.TrimPrefix(err.Error(), "json: ")}
}

func isTypeError(err error) bool {
	var te *json.UnmarshalTypeError
	return errors.As(err, &te)
}

// goKind names what JSON a Go type takes.
func goKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer (" + t.Kind().String() + ")"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	default:
		return "an object"
	}
}

// report records problems of the object at loc.
func (l *loader) report(loc location, kind, namespace, name string, probs ...problem) {
	for _, p := range probs {
		l.errs = append(l.errs, &FieldError{
			File: loc.file, Index: loc.index, Item: loc.item,
			Kind: kind, Namespace: namespace, Name: name,
			Field: p.field, Message: p.msg,
		})
	}
}

// crossCheck finds problems between documents: the same object defined
// twice, and objects in a namespace the commit does not declare.
func (l *loader) crossCheck() {
	declared := map[string]bool{defaultNamespace: true}
	for _, d := range l.docs {
		if d.kind.kind == kindNamespace && d.kind.apiVersion == "v1" && d.name != "" {
			declared[d.name] = true
		}
	}
	seen := map[string]*doc{}
	for _, d := range l.docs {
		if d.name != "" {
			key := d.kind.apiVersion + "|" + d.kind.kind + "|" + d.namespace + "|" + d.name
			if first, ok := seen[key]; ok {
				l.reject(d, problem{field: "metadata.name", msg: fmt.Sprintf(
					"%s is defined twice: also in %s; define each object once per commit", describe(d), first.loc)})
			} else {
				seen[key] = d
			}
		}
		if d.kind.namespaced && !declared[d.namespace] {
			l.reject(d, problem{field: "metadata.namespace", msg: fmt.Sprintf(
				"namespace %q is not declared in this commit; add a Namespace manifest (apiVersion: v1, kind: Namespace, metadata.name: %s) or use namespace %q",
				d.namespace, d.namespace, defaultNamespace)})
		}
	}
	l.crossCheckServices()
	l.crossCheckSecrets() // crosscheck_secret.go
}

// crossCheckServices finds two Services claiming the same clusterIP or the
// same nodePort; the later one (in file order) gets the error, naming the
// first.
func (l *loader) crossCheckServices() {
	type claim struct {
		d    *doc
		what string
	}
	ips, ports := map[string]claim{}, map[int32]claim{}
	for _, d := range l.docs {
		svc, ok := d.obj.(*corev1.Service)
		if !ok || svc == nil {
			continue
		}
		if ip := RequestedClusterIP(&svc.Spec); ip != "" && ip != corev1.ClusterIPNone {
			f := "spec.clusterIP"
			if svc.Spec.ClusterIP == "" {
				f = "spec.clusterIPs[0]"
			}
			if first, dup := ips[ip]; dup {
				l.reject(d, problem{field: f, msg: fmt.Sprintf(
					"%s is also the clusterIP of %s (%s); give each Service its own address or leave %s empty",
					ip, describe(first.d), first.d.loc, f)})
			} else {
				ips[ip] = claim{d: d}
			}
		}
		own := map[int32]bool{}
		for i, p := range svc.Spec.Ports {
			if p.NodePort == 0 || own[p.NodePort] {
				continue // the same port for TCP and UDP of one Service is fine
			}
			own[p.NodePort] = true
			if first, dup := ports[p.NodePort]; dup {
				l.reject(d, problem{field: fmt.Sprintf("spec.ports[%d].nodePort", i), msg: fmt.Sprintf(
					"%d is also %s of %s (%s); give each Service its own node ports or leave nodePort unset",
					p.NodePort, first.what, describe(first.d), first.d.loc)})
				continue
			}
			ports[p.NodePort] = claim{d: d, what: fmt.Sprintf("spec.ports[%d].nodePort", i)}
		}
	}
}

func (l *loader) reject(d *doc, p problem) {
	d.obj = nil
	l.report(d.loc, d.kind.kind, d.namespace, d.name, p)
}

func describe(d *doc) string {
	if d.kind.namespaced {
		return fmt.Sprintf("%s %s/%s", d.kind.kind, d.namespace, d.name)
	}
	return d.kind.kind + " " + d.name
}

// objects returns the valid objects, each kind sorted by namespace, then
// name. Only called when there are no errors.
func (l *loader) objects() *Objects {
	docs := append([]*doc(nil), l.docs...)
	sort.SliceStable(docs, func(i, j int) bool {
		if docs[i].namespace != docs[j].namespace {
			return docs[i].namespace < docs[j].namespace
		}
		return docs[i].name < docs[j].name
	})
	objs := &Objects{}
	for _, d := range docs {
		d.kind.add(objs, d.obj)
	}
	return objs
}
