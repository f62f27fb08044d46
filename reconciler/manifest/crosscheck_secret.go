package manifest

import (
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/moor-dev/moor/api"
)

// PodSpecOf returns the pod spec of a Pod, Deployment, Job or CronJob and
// the path it sits at; nil for other objects.
func PodSpecOf(obj metav1.Object) (*corev1.PodSpec, *field.Path) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return &o.Spec, field.NewPath("spec")
	case *appsv1.Deployment:
		return &o.Spec.Template.Spec, field.NewPath("spec", "template", "spec")
	case *batchv1.Job:
		return &o.Spec.Template.Spec, field.NewPath("spec", "template", "spec")
	case *batchv1.CronJob:
		return &o.Spec.JobTemplate.Spec.Template.Spec, field.NewPath("spec", "jobTemplate", "spec", "template", "spec")
	}
	return nil, nil
}

// crossCheckSecrets checks every reference of a pod spec to a Secret
// against the Secrets of the commit: a Secret that is not optional must
// exist in the pod's namespace, with the key used when its keys are known
// (a key mapping, a plain Secret), and imagePullSecrets must be of type
// kubernetes.io/dockerconfigjson. An invalid Secret still counts as
// existing, so that its own errors are not repeated at every reference.
func (l *loader) crossCheckSecrets() {
	secrets := map[string]*corev1.Secret{} // nil: exists but invalid
	for _, d := range l.docs {
		if d.kind.kind == "Secret" && d.kind.apiVersion == "v1" && d.name != "" {
			s, _ := d.obj.(*corev1.Secret)
			secrets[d.namespace+"/"+d.name] = s
		}
	}
	for _, d := range l.docs {
		if d.obj == nil {
			continue
		}
		spec, path := PodSpecOf(d.obj)
		if spec == nil {
			continue
		}
		for _, u := range SecretUses(spec, path) {
			if p, ok := checkSecretUse(u, d.namespace, secrets); !ok {
				l.reject(d, p)
			}
		}
	}
}

// checkSecretUse checks one reference; it returns the problem and false
// when the reference does not hold.
func checkSecretUse(u SecretUse, ns string, secrets map[string]*corev1.Secret) (problem, bool) {
	s, exists := secrets[ns+"/"+u.Name]
	switch {
	case !exists && u.Optional:
		return problem{}, true
	case !exists && u.ImagePull:
		return problem{field: pathString(u.Field), msg: fmt.Sprintf(
			"Secret %q does not exist in namespace %s in this commit; add a v1 Secret of type %s named %s",
			u.Name, ns, corev1.SecretTypeDockerConfigJson, u.Name)}, false
	case !exists:
		return problem{field: pathString(u.Field), msg: fmt.Sprintf(
			"Secret %q does not exist in namespace %s in this commit; add a v1 Secret named %s (with the annotation %s), or set optional: true",
			u.Name, ns, u.Name, api.AnnotationVaultPath)}, false
	case s == nil:
		return problem{}, true
	case u.ImagePull && s.Type != corev1.SecretTypeDockerConfigJson:
		return problem{field: pathString(u.Field), msg: fmt.Sprintf(
			"Secret %s/%s has type %s; imagePullSecrets need a Secret of type %s with the key %s",
			ns, u.Name, s.Type, corev1.SecretTypeDockerConfigJson, dockerConfigKey)}, false
	case u.Key == "" || u.Optional:
		return problem{}, true
	}
	keys, known := SecretKeys(s)
	if !known || slices.Contains(keys, u.Key) {
		return problem{}, true
	}
	from := "its " + api.AnnotationVaultKeyPrefix + "* annotations"
	if len(s.Data)+len(s.StringData) > 0 {
		from = "data and stringData"
	}
	return problem{field: pathString(u.KeyField), msg: fmt.Sprintf(
		"Secret %s/%s has no key %q: its keys are %s (%s); use one of them or set optional: true",
		ns, u.Name, u.Key, strings.Join(keys, ", "), from)}, false
}
