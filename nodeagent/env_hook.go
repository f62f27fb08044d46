package nodeagent

import (
	"context"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// envHook sets the container's environment: first the variables of its
// envFrom Secrets (prefixed, in list order, keys sorted), then its env
// entries, literal or valueFrom.secretKeyRef, so env wins on a clash as in
// Kubernetes. A Secret key that is not a valid variable name is skipped,
// as Kubernetes does. An optional Secret or key that is missing is skipped;
// any other Secret failure (Vault unreachable, permission denied, missing
// key) makes the container wait with CreateContainerConfigError, naming the
// variable, Secret, Vault path and key. Other valueFrom and envFrom kinds
// (config maps, field refs) are not supported yet and wait likewise. A pod
// whose api.AnnotationSecretVersions names a Secret at version 0 first
// holds with ContainerCreating until the server learns the version
// (secretResolver.awaitVersions).
type envHook struct {
	secrets *secretResolver
}

var _ prestartHook = (*envHook)(nil)

func (h *envHook) Name() string { return "env" }

func (h *envHook) Prestart(ctx context.Context, req *prestartRequest, _ *prestartResponse) error {
	// A pod whose Secret versions the server does not know yet holds
	// until it does, rather than start and be replaced at once.
	if err := h.secrets.awaitVersions(ctx, req); err != nil {
		return err
	}
	c := req.Container
	env := make([]string, 0, len(c.Env))
	for i := range c.EnvFrom {
		vars, err := h.envFrom(ctx, req, i)
		if err != nil {
			return err
		}
		env = append(env, vars...)
	}
	for i := range c.Env {
		e := &c.Env[i]
		if e.ValueFrom == nil {
			env = append(env, e.Name+"="+e.Value)
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		if ref == nil {
			return secretConfigError("container %q: env %s uses valueFrom.%s, which is not supported yet; give it a literal value or use secretKeyRef",
				c.Name, e.Name, valueFromKind(e.ValueFrom))
		}
		optional := ref.Optional != nil && *ref.Optional
		s, err := h.secrets.read(ctx, req, ref.Name)
		if err != nil {
			if optional && isSecretMissing(err) {
				continue
			}
			return secretConfigError("container %q: env %s from key %q of %w", c.Name, e.Name, ref.Key, err)
		}
		v, err := s.value(ref.Key)
		if err != nil {
			if optional {
				continue
			}
			return secretConfigError("container %q: env %s: %w", c.Name, e.Name, err)
		}
		env = append(env, e.Name+"="+string(v))
	}
	req.Spec.Env = append(req.Spec.Env, env...)
	return nil
}

// envFrom returns the variables of c.EnvFrom[i].
func (h *envHook) envFrom(ctx context.Context, req *prestartRequest, i int) ([]string, error) {
	c := req.Container
	src := &c.EnvFrom[i]
	if src.SecretRef == nil {
		kind := "an empty source"
		if src.ConfigMapRef != nil {
			kind = "configMapRef " + src.ConfigMapRef.Name
		}
		return nil, secretConfigError("container %q: envFrom[%d] uses %s, which is not supported yet; use secretRef or list the variables under env",
			c.Name, i, kind)
	}
	s, err := h.secrets.read(ctx, req, src.SecretRef.Name)
	if err != nil {
		if src.SecretRef.Optional != nil && *src.SecretRef.Optional && isSecretMissing(err) {
			return nil, nil
		}
		return nil, secretConfigError("container %q: envFrom[%d]: %w", c.Name, i, err)
	}
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vars := make([]string, 0, len(keys))
	for _, k := range keys {
		name := src.Prefix + k
		if len(validation.IsEnvVarName(name)) > 0 {
			continue // as Kubernetes: invalid names are skipped
		}
		vars = append(vars, name+"="+string(s.Data[k]))
	}
	return vars, nil
}

// valueFromKind names the source of a valueFrom, for errors.
func valueFromKind(v *corev1.EnvVarSource) string {
	switch {
	case v.FieldRef != nil:
		return "fieldRef"
	case v.ResourceFieldRef != nil:
		return "resourceFieldRef"
	case v.ConfigMapKeyRef != nil:
		return "configMapKeyRef"
	case v.FileKeyRef != nil:
		return "fileKeyRef"
	}
	return "(empty)"
}
