package manifest

import (
	"fmt"
	"path"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Pod spec fields that use Secrets, checked within one pod spec. Whether
// the Secrets exist is checked across the commit (crosscheck_secret.go).

// FieldRefPaths are the fields env[].valueFrom.fieldRef.fieldPath may
// name. The node agent resolves them when it starts the container:
// spec.nodeName is the node the pod runs on, also for workload pods whose
// planned spec leaves it empty.
var FieldRefPaths = []string{"metadata.name", "metadata.namespace", "spec.nodeName", "status.podIP"}

// maxFileMode is the largest file mode of a secret volume (0777).
const maxFileMode = 0o777

// validatePodSecrets checks env[].valueFrom, envFrom, volumes,
// volumeMounts and imagePullSecrets of a pod spec at path.
func validatePodSecrets(spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	errs, volumes := validateVolumes(spec.Volumes, p.Child("volumes"))
	for i := range spec.Containers {
		c := &spec.Containers[i]
		cp := p.Child("containers").Index(i)
		errs = append(errs, validateEnvFrom(c, cp)...)
		errs = append(errs, validateVolumeMounts(c.VolumeMounts, volumes, cp.Child("volumeMounts"))...)
	}
	for i, r := range spec.ImagePullSecrets {
		errs = append(errs, validateSecretName(r.Name, p.Child("imagePullSecrets").Index(i).Child("name"))...)
	}
	return errs
}

// validateSecretName checks a reference to a Secret by name.
func validateSecretName(name string, p *field.Path) field.ErrorList {
	return validateRequired(name, p, "name the Secret (metadata.name of a v1 Secret in this namespace)", validation.IsDNS1123Subdomain)
}

// validateSecretKey checks a reference to a key of a Secret.
func validateSecretKey(key string, p *field.Path) field.ErrorList {
	return validateRequired(key, p, "name the key of the Secret", validation.IsConfigMapKey)
}

// validateRequired checks a value that must be set: empty, it is
// required (hint says what to set); else check's complaints about it.
func validateRequired(v string, p *field.Path, hint string, check func(string) []string) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(p, hint)}
	}
	var errs field.ErrorList
	for _, msg := range check(v) {
		errs = append(errs, field.Invalid(p, v, msg))
	}
	return errs
}

// validateEnvFrom checks env[].valueFrom and envFrom[] of a container.
func validateEnvFrom(c *corev1.Container, cp *field.Path) field.ErrorList {
	var errs field.ErrorList
	for j := range c.Env {
		e := &c.Env[j]
		if e.ValueFrom == nil {
			continue
		}
		vp := cp.Child("env").Index(j).Child("valueFrom")
		if e.Value != "" {
			errs = append(errs, field.Invalid(vp, "", "may not be specified when `value` is not empty; set one of them"))
		}
		src := e.ValueFrom
		switch {
		case src.SecretKeyRef != nil && src.FieldRef != nil:
			errs = append(errs, field.Invalid(vp, "", "may not have more than one source; set secretKeyRef or fieldRef"))
		case src.SecretKeyRef != nil:
			errs = append(errs, validateSecretName(src.SecretKeyRef.Name, vp.Child("secretKeyRef", "name"))...)
			errs = append(errs, validateSecretKey(src.SecretKeyRef.Key, vp.Child("secretKeyRef", "key"))...)
		case src.FieldRef != nil:
			errs = append(errs, validateFieldRef(src.FieldRef, vp.Child("fieldRef"))...)
		case src.ConfigMapKeyRef != nil || src.ResourceFieldRef != nil || src.FileKeyRef != nil:
			// rejected by the allow-list
		default:
			errs = append(errs, field.Required(vp, "set secretKeyRef: {name: SECRET, key: KEY} (or fieldRef)"))
		}
	}
	for j := range c.EnvFrom {
		ef := &c.EnvFrom[j]
		p := cp.Child("envFrom").Index(j)
		if ef.Prefix != "" {
			for _, msg := range validation.IsEnvVarName(ef.Prefix) {
				errs = append(errs, field.Invalid(p.Child("prefix"), ef.Prefix, msg))
			}
		}
		if ef.SecretRef == nil {
			if ef.ConfigMapRef != nil {
				continue // rejected by the allow-list
			}
			errs = append(errs, field.Required(p.Child("secretRef"), "set secretRef: {name: SECRET}; moor takes environment variables from Secrets only"))
			continue
		}
		errs = append(errs, validateSecretName(ef.SecretRef.Name, p.Child("secretRef", "name"))...)
	}
	return errs
}

func validateFieldRef(ref *corev1.ObjectFieldSelector, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if ref.APIVersion != "" && ref.APIVersion != "v1" {
		errs = append(errs, field.NotSupported(p.Child("apiVersion"), ref.APIVersion, []string{"v1"}))
	}
	for _, f := range FieldRefPaths {
		if ref.FieldPath == f {
			return errs
		}
	}
	if ref.FieldPath == "" {
		return append(errs, field.Required(p.Child("fieldPath"), "moor supports "+strings.Join(FieldRefPaths, ", ")))
	}
	return append(errs, field.NotSupported(p.Child("fieldPath"), ref.FieldPath, FieldRefPaths))
}

// validateVolumes checks spec.volumes and returns their names.
func validateVolumes(vols []corev1.Volume, p *field.Path) (field.ErrorList, sets.Set[string]) {
	var errs field.ErrorList
	names := sets.New[string]()
	for i := range vols {
		v := &vols[i]
		vp := p.Index(i)
		switch {
		case v.Name == "":
			errs = append(errs, field.Required(vp.Child("name"), "every volume needs a name for volumeMounts to refer to"))
		case names.Has(v.Name):
			errs = append(errs, field.Duplicate(vp.Child("name"), v.Name))
		default:
			for _, msg := range validation.IsDNS1123Label(v.Name) {
				errs = append(errs, field.Invalid(vp.Child("name"), v.Name, msg))
			}
		}
		names.Insert(v.Name)
		if v.Secret == nil {
			if !hasVolumeSource(&v.VolumeSource) { // other sources are rejected by the allow-list
				errs = append(errs, field.Required(vp.Child("secret"), "every volume needs a source, and moor mounts secret volumes: secret: {secretName: SECRET}"))
			}
			continue
		}
		errs = append(errs, validateSecretVolume(v.Secret, vp.Child("secret"))...)
	}
	return errs, names
}

func validateSecretVolume(sv *corev1.SecretVolumeSource, p *field.Path) field.ErrorList {
	errs := validateSecretName(sv.SecretName, p.Child("secretName"))
	errs = append(errs, validateFileMode(sv.DefaultMode, p.Child("defaultMode"))...)
	paths := sets.New[string]()
	for j, item := range sv.Items {
		ip := p.Child("items").Index(j)
		errs = append(errs, validateSecretKey(item.Key, ip.Child("key"))...)
		if msg := checkItemPath(item.Path); msg != "" {
			errs = append(errs, field.Invalid(ip.Child("path"), item.Path, msg))
		} else if paths.Has(path.Clean(item.Path)) {
			errs = append(errs, field.Duplicate(ip.Child("path"), item.Path))
		}
		paths.Insert(path.Clean(item.Path))
		errs = append(errs, validateFileMode(item.Mode, ip.Child("mode"))...)
	}
	return errs
}

// hasVolumeSource reports whether any source of vs is set.
func hasVolumeSource(vs *corev1.VolumeSource) bool {
	v := reflect.ValueOf(vs).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			return true
		}
	}
	return false
}

// checkItemPath says what is wrong with the file path of a volume item.
func checkItemPath(p string) string {
	switch {
	case p == "":
		return "name the file the key is written to, relative to the mount path"
	case strings.HasPrefix(p, "/"):
		return "must be relative to the mount path"
	}
	for _, s := range strings.Split(p, "/") {
		if s == ".." {
			return `must not contain ".."`
		}
	}
	return ""
}

func validateFileMode(mode *int32, p *field.Path) field.ErrorList {
	if mode == nil || (*mode >= 0 && *mode <= maxFileMode) {
		return nil
	}
	return field.ErrorList{field.Invalid(p, *mode, "must be a file mode between 0 and 0777 (octal) or 0 and 511 (decimal)")}
}

// validateVolumeMounts checks a container's mounts against the pod's
// volumes: every mount names a declared volume at an absolute path, each
// path once.
func validateVolumeMounts(mounts []corev1.VolumeMount, volumes sets.Set[string], p *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := map[string]int{}
	for j := range mounts {
		m := &mounts[j]
		mp := p.Index(j)
		switch {
		case m.Name == "":
			errs = append(errs, field.Required(mp.Child("name"), "name the volume to mount (spec.volumes[].name)"))
		case !volumes.Has(m.Name):
			errs = append(errs, field.Invalid(mp.Child("name"), m.Name, "no volume of this pod has this name; declare it in spec.volumes"))
		}
		switch {
		case m.MountPath == "":
			errs = append(errs, field.Required(mp.Child("mountPath"), "the absolute path in the container to mount the volume at"))
			continue
		case !strings.HasPrefix(m.MountPath, "/"):
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be an absolute path"))
			continue
		case strings.Contains("/"+m.MountPath+"/", "/../"):
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, `must not contain ".."`))
			continue
		}
		clean := path.Clean(m.MountPath)
		if first, dup := paths[clean]; dup {
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, fmt.Sprintf("must be unique: volumeMounts[%d] mounts at the same path", first)))
			continue
		}
		paths[clean] = j
	}
	return errs
}
