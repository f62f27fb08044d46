package manifest

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// SecretUse is one place a pod spec refers to a Secret of its namespace.
type SecretUse struct {
	// Name is the Secret's name.
	Name string
	// Key is the key used by env[].valueFrom.secretKeyRef and by one item
	// of a secret volume; empty when every key is used (envFrom, a volume
	// without items, imagePullSecrets).
	Key string
	// Optional is the reference's optional flag: a missing Secret (or key)
	// is then no error.
	Optional bool
	// Env is set for env[].valueFrom.secretKeyRef and envFrom[].secretRef:
	// the values are read when a container starts and never again.
	Env bool
	// ImagePull is set for spec.imagePullSecrets.
	ImagePull bool
	// Field is the path of the field naming the Secret, e.g.
	// spec.containers[0].env[1].valueFrom.secretKeyRef.name, under the path
	// given to SecretUses; nil when that path was nil.
	Field *field.Path
	// KeyField is the path of the key (secretKeyRef.key, items[i].key);
	// nil when Key is empty or no path was given.
	KeyField *field.Path
}

// SecretUses lists every reference of spec to a Secret, in spec order:
// containers' env and envFrom, then volumes, then imagePullSecrets. path
// is where spec sits in its object (spec, spec.template.spec, ...); with a
// nil path no field paths are built (the planner's hot path).
func SecretUses(spec *corev1.PodSpec, path *field.Path) []SecretUse {
	var out []SecretUse
	at := func(p *field.Path, f func(*field.Path) *field.Path) *field.Path {
		if p == nil {
			return nil
		}
		return f(p)
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		cp := at(path, func(p *field.Path) *field.Path { return p.Child("containers").Index(i) })
		for j := range c.Env {
			ref := c.Env[j].ValueFrom
			if ref == nil || ref.SecretKeyRef == nil {
				continue
			}
			sel := at(cp, func(p *field.Path) *field.Path { return p.Child("env").Index(j).Child("valueFrom", "secretKeyRef") })
			out = append(out, SecretUse{Name: ref.SecretKeyRef.Name, Key: ref.SecretKeyRef.Key, Optional: isTrue(ref.SecretKeyRef.Optional), Env: true,
				Field:    at(sel, func(p *field.Path) *field.Path { return p.Child("name") }),
				KeyField: at(sel, func(p *field.Path) *field.Path { return p.Child("key") })})
		}
		for j := range c.EnvFrom {
			ref := c.EnvFrom[j].SecretRef
			if ref == nil {
				continue
			}
			out = append(out, SecretUse{Name: ref.Name, Optional: isTrue(ref.Optional), Env: true,
				Field: at(cp, func(p *field.Path) *field.Path { return p.Child("envFrom").Index(j).Child("secretRef", "name") })})
		}
	}
	for i := range spec.Volumes {
		sv := spec.Volumes[i].Secret
		if sv == nil {
			continue
		}
		vp := at(path, func(p *field.Path) *field.Path { return p.Child("volumes").Index(i).Child("secret") })
		use := SecretUse{Name: sv.SecretName, Optional: isTrue(sv.Optional),
			Field: at(vp, func(p *field.Path) *field.Path { return p.Child("secretName") })}
		if len(sv.Items) == 0 {
			out = append(out, use)
		}
		for j, item := range sv.Items {
			u := use
			u.Key = item.Key
			u.KeyField = at(vp, func(p *field.Path) *field.Path { return p.Child("items").Index(j).Child("key") })
			out = append(out, u)
		}
	}
	for i, r := range spec.ImagePullSecrets {
		out = append(out, SecretUse{Name: r.Name, ImagePull: true,
			Field: at(path, func(p *field.Path) *field.Path { return p.Child("imagePullSecrets").Index(i).Child("name") })})
	}
	return out
}

func isTrue(b *bool) bool { return b != nil && *b }
