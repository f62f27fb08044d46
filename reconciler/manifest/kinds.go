package manifest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// kinds is every supported kind. Adding one is one entry here, a slice in
// Objects, an allow-list in allowlist.go and a validate function.
var kinds = []kindSpec{
	kindOf("v1", "Namespace", false, namespaceFields, validateNamespace,
		func(o *Objects, n *corev1.Namespace) { o.Namespaces = append(o.Namespaces, *n) }),
	kindOf("v1", "Pod", true, podFields, validatePod,
		func(o *Objects, p *corev1.Pod) { o.Pods = append(o.Pods, *p) }),
	kindOf("apps/v1", "Deployment", true, deploymentFields, validateDeployment,
		func(o *Objects, d *appsv1.Deployment) { o.Deployments = append(o.Deployments, *d) }),
	kindOf("v1", "Service", true, serviceFields, validateService,
		func(o *Objects, s *corev1.Service) { o.Services = append(o.Services, *s) }),
	kindOf("batch/v1", "Job", true, jobFields, validateJob,
		func(o *Objects, j *batchv1.Job) { o.Jobs = append(o.Jobs, *j) }),
	kindOf("batch/v1", "CronJob", true, cronJobFields, validateCronJob,
		func(o *Objects, c *batchv1.CronJob) { o.CronJobs = append(o.CronJobs, *c) }),
	kindOf("v1", "Secret", true, secretFields, validateSecret,
		func(o *Objects, s *corev1.Secret) { o.Secrets = append(o.Secrets, *s) }),
}

const (
	kindNamespace = "Namespace"
	kindList      = "List"
)

// kindSpec is what Load needs to know about one supported kind.
type kindSpec struct {
	apiVersion, kind string
	namespaced       bool
	fields           fields       // allow-list of the whole object
	goType           reflect.Type // what the object decodes into
	// decode decodes JSON into a new object; strict rejects unknown fields.
	// The object is never nil, even with an error.
	decode   func(data []byte, strict bool) (metav1.Object, error)
	validate func(obj metav1.Object, opts *Options) field.ErrorList
	add      func(objs *Objects, obj metav1.Object)
}

// kindOf builds a kindSpec for the API type T.
func kindOf[T any, P interface {
	*T
	metav1.Object
}](apiVersion, kind string, namespaced bool, f fields, validate func(P, *Options) field.ErrorList, add func(*Objects, P)) kindSpec {
	return kindSpec{
		apiVersion: apiVersion,
		kind:       kind,
		namespaced: namespaced,
		fields:     f,
		goType:     reflect.TypeFor[T](),
		decode: func(data []byte, strict bool) (metav1.Object, error) {
			obj := P(new(T))
			dec := json.NewDecoder(bytes.NewReader(data))
			if strict {
				dec.DisallowUnknownFields()
			}
			// On a type error the decoder skips only the offending value,
			// so obj is returned with err.
			return obj, dec.Decode(obj)
		},
		validate: func(obj metav1.Object, opts *Options) field.ErrorList { return validate(obj.(P), opts) },
		add:      func(objs *Objects, obj metav1.Object) { add(objs, obj.(P)) },
	}
}

// lookupKind finds a supported kind or says why there is none.
func lookupKind(apiVersion, kind string) (*kindSpec, string) {
	var other []string
	for i := range kinds {
		k := &kinds[i]
		if k.apiVersion == apiVersion && k.kind == kind {
			return k, ""
		}
		if k.kind == kind {
			other = append(other, k.apiVersion)
		}
	}
	if len(other) > 0 {
		return nil, "kind " + kind + " needs apiVersion " + strings.Join(other, " or ") + ", not " + quoteIfOdd(apiVersion)
	}
	return nil, "kind " + quoteIfOdd(kind) + " (" + quoteIfOdd(apiVersion) + ") is not supported by moor yet; supported kinds: " + supportedKinds()
}

func supportedKinds() string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = k.apiVersion + " " + k.kind
	}
	return strings.Join(s, ", ")
}

// quoteIfOdd quotes input that is not a plain word, so the message stays
// readable.
func quoteIfOdd(s string) string {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '/' || r == '.' || r == '-') {
			return strconv.Quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}
