package nodeagent

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

// Secrets reach pods three ways, each through its hook: environment
// variables (envHook: env valueFrom.secretKeyRef, envFrom secretRef), files
// (secretVolumeHook: volumes[].secret on a tmpfs, rotated in place by the
// agent's secrets loop) and registry credentials (imagePullHook:
// imagePullSecrets). All of them look a Secret up by namespace and name in
// the applied desired state (secretResolver); plain Secrets carry their
// values there, the others are read through a SecretSource.
//
// Values read from Vault live only in memory and on the volumes' tmpfs:
// they are never logged, never written to state.json (which keeps the
// desired document, holding Vault references; only plain Secrets, a
// development feature, carry values there) and never part of an error,
// which names the Secret, its Vault path and key instead. Environment
// values do reach the runtime's container spec, as with any kubelet.

// SecretData is one read of a Secret's values.
type SecretData struct {
	// Version is the KV v2 version read (for a leased secret the Unix time
	// its lease was issued); 0 when unknown.
	Version int64
	// Data holds the values by Secret key, with the Secret's key mapping
	// (VaultSource.Keys) applied.
	Data map[string][]byte
}

// SecretSource reads the values of Secrets kept in Vault and watches them.
// The agent's adapter implements it on the secrets package; tests use a
// fake. Plain Secrets (SecretRef.Data) never reach it.
type SecretSource interface {
	// Get returns ref's values, at least version minVersion (0: any); the
	// last good values may come from a cache. A failure (Vault unreachable
	// or sealed, path or key missing, permission denied) is returned with
	// its errdefs class (NotFound for a missing path or key) and never
	// quotes a value.
	Get(ctx context.Context, ref api.SecretRef, minVersion int64) (SecretData, error)
	// Watch sets the Secrets to keep reading, watch for Changes and report
	// in Status: the Vault-backed Secrets of the applied desired state,
	// replacing the previous set (Secrets no longer in it are forgotten).
	// The agent calls it at start and whenever the desired state changes.
	// It must not block: reads happen in the source's own goroutines.
	Watch(refs []api.SecretRef)
	// Changes delivers "namespace/name" of each watched Secret whose values
	// changed, after Get would return the new ones. Keys may be coalesced
	// but not dropped. The channel stays open for the source's lifetime.
	Changes() <-chan string
	// Status reports what was read of each watched Secret: versions, key
	// names and the last error, never values. It must not block: the
	// agent calls it while building status.
	Status() []api.SecretStatus
}

// isSecretMissing reports a Secret missing from the desired state, or its
// Vault path or key missing: what `optional: true` tolerates.
func isSecretMissing(err error) bool { return errdefs.IsNotFound(err) }

// secretReadTimeout bounds one read of a Secret's values, so an
// unresponsive Vault delays a container or a rotation, never blocks it.
const secretReadTimeout = 30 * time.Second

// secretResolver looks up the Secrets pods name and reads their values.
// One instance is shared by the hooks that need Secrets.
type secretResolver struct {
	// source reads Vault-backed Secrets; nil: the agent has no Vault
	// access, and only plain Secrets resolve.
	source SecretSource
	// refs returns the Secrets of the applied desired state.
	refs func() []api.SecretRef
	// waits are the pods holding for the versions of the Secrets they
	// read through env (secrets_hook_version.go).
	waits versionWaits
}

// secret is a resolved Secret: where it lives and its values.
type secret struct {
	Ref api.SecretRef
	SecretData
}

// lookup returns the desired state's Secret namespace/name.
func (r *secretResolver) lookup(namespace, name string) (api.SecretRef, error) {
	if r != nil && r.refs != nil {
		for _, ref := range r.refs() {
			if ref.Namespace == namespace && ref.Name == name {
				return ref, nil
			}
		}
	}
	return api.SecretRef{}, fmt.Errorf("Secret %q not found: add it to the repository or fix the name: %w", namespace+"/"+name, errdefs.ErrNotFound)
}

// get reads Secret name of pod's namespace, at least the version pod's
// AnnotationSecretVersions asks for. Errors describe the Secret (and its
// Vault path), wrap the source's error class and carry no value.
func (r *secretResolver) get(ctx context.Context, pod *api.Pod, name string) (secret, error) {
	ref, err := r.lookup(pod.Namespace, name)
	if err != nil {
		return secret{}, err
	}
	if ref.Vault == nil {
		return secret{Ref: ref, SecretData: SecretData{Data: ref.Data}}, nil
	}
	if r.source == nil {
		return secret{}, fmt.Errorf("%s: this node has no Vault access; configure the agent's Vault settings: %w", describeSecret(&ref), errdefs.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, secretReadTimeout)
	defer cancel()
	d, err := r.source.Get(ctx, ref, minSecretVersion(pod, name))
	if err != nil {
		return secret{}, fmt.Errorf("%s: %w", describeSecret(&ref), err)
	}
	return secret{Ref: ref, SecretData: d}, nil
}

// secretRead is the outcome of one read of a Secret.
type secretRead struct {
	s   secret
	err error
}

// read is get for the container start req, memoised in it: the hooks of
// one start (volumes, version holds, env, pull credentials) see one
// version of each Secret, and the source is asked once per Secret.
func (r *secretResolver) read(ctx context.Context, req *prestartRequest, name string) (secret, error) {
	if v, ok := req.secrets[name]; ok {
		return v.s, v.err
	}
	s, err := r.get(ctx, req.Pod, name)
	if req.secrets == nil {
		req.secrets = map[string]secretRead{}
	}
	req.secrets[name] = secretRead{s: s, err: err}
	return s, err
}

// value returns key of s, or an error naming the Secret, its Vault path and
// the key, wrapping errdefs.ErrNotFound.
func (s *secret) value(key string) ([]byte, error) {
	v, ok := s.Data[key]
	if !ok {
		return nil, fmt.Errorf("%s has no key %q%s: %w", describeSecret(&s.Ref), key, vaultKeyNote(&s.Ref, key), errdefs.ErrNotFound)
	}
	return v, nil
}

// describeSecret names a Secret and where its values live, for errors.
func describeSecret(ref *api.SecretRef) string {
	if ref.Vault == nil {
		return fmt.Sprintf("Secret %q", ref.Key())
	}
	s := fmt.Sprintf("Secret %q (Vault path %q", ref.Key(), ref.Vault.Path)
	if ref.Vault.Version != 0 {
		s += " version " + strconv.FormatInt(ref.Vault.Version, 10)
	}
	return s + ")"
}

// vaultKeyNote names the Vault key a Secret key maps to, when the Secret
// maps it to another name.
func vaultKeyNote(ref *api.SecretRef, key string) string {
	if ref.Vault != nil {
		if vk, ok := ref.Vault.Keys[key]; ok && vk != key {
			return fmt.Sprintf(" (Vault key %q)", vk)
		}
	}
	return ""
}

// minSecretVersion is the version of Secret name that pod must start with,
// from its AnnotationSecretVersions; 0 when it names none.
func minSecretVersion(pod *api.Pod, name string) int64 {
	a := pod.Annotations[api.AnnotationSecretVersions]
	if a == "" {
		return 0
	}
	return api.ParseSecretVersions(a)[name]
}

// secretConfigError is a Secret failure that keeps a container from being
// created: it waits with CreateContainerConfigError and is retried with
// backoff.
func secretConfigError(format string, args ...any) error {
	return &waitingError{Reason: reasonCreateContainerConfigError, Err: fmt.Errorf(format, args...)}
}

// joinErrors joins errs on one line ("; "), for waiting messages; nil when
// errs is empty.
func joinErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return lineErrors(errs)
}

type lineErrors []error

func (e lineErrors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (e lineErrors) Unwrap() []error { return e }
