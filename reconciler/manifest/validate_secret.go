package manifest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/moor-dev/moor/api"
)

// A Secret in Git names where its values live in Vault; the node agents
// read them. See api/secrets.go for the annotations.

// vaultAnnotationPrefix starts every annotation moor reads of a Secret.
const vaultAnnotationPrefix = "vault.moor.dev/"

// maxSecretSize is Kubernetes' limit on the data of one Secret.
const maxSecretSize = 1 << 20

// dockerConfigKey is the key a kubernetes.io/dockerconfigjson Secret must
// have.
const dockerConfigKey = corev1.DockerConfigJsonKey

// vaultSpec is what a Secret's vault.moor.dev/* annotations say.
type vaultSpec struct {
	any     bool // at least one vault.moor.dev/* annotation
	path    string
	engine  string // defaulted to api.VaultEngineKV
	version int64
	keys    map[string]string // Secret key → Vault key; nil without mapping
}

// readVault reads the annotations without checking them; validateVault
// does.
func readVault(annotations map[string]string) vaultSpec {
	v := vaultSpec{engine: api.VaultEngineKV}
	for k, val := range annotations {
		if !strings.HasPrefix(k, vaultAnnotationPrefix) {
			continue
		}
		v.any = true
		switch {
		case k == api.AnnotationVaultPath:
			v.path = val
		case k == api.AnnotationVaultEngine && val != "":
			v.engine = val
		case k == api.AnnotationVaultVersion:
			v.version, _ = strconv.ParseInt(val, 10, 64)
		case strings.HasPrefix(k, api.AnnotationVaultKeyPrefix):
			if v.keys == nil {
				v.keys = map[string]string{}
			}
			v.keys[strings.TrimPrefix(k, api.AnnotationVaultKeyPrefix)] = val
		}
	}
	return v
}

// validateSecret checks a Secret and defaults its type to Opaque. A Secret
// names a Vault path; data and stringData are accepted only with
// Options.AllowPlainSecrets.
func validateSecret(s *corev1.Secret, opts *Options) field.ErrorList {
	meta := field.NewPath("metadata")
	errs := validateMeta(&s.ObjectMeta, validation.IsDNS1123Subdomain, true, meta)
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	errs = append(errs, validateSecretType(s.Type)...)
	if s.Immutable != nil && *s.Immutable {
		errs = append(errs, field.Forbidden(field.NewPath("immutable"), fmt.Sprintf(
			"not supported by moor: a Secret's values live in Vault and change there; to keep this Secret at one version, pin it with the annotation %s: \"<version>\" and remove immutable",
			api.AnnotationVaultVersion)))
	}
	annotations := meta.Child("annotations")
	v := readVault(s.Annotations)
	errs = append(errs, validateVault(s.Annotations, v.engine, annotations)...)
	plain := len(s.Data)+len(s.StringData) > 0
	switch {
	case plain && !opts.AllowPlainSecrets:
		errs = append(errs, plainSecretRejected(s)...)
	case plain && v.any:
		errs = append(errs, field.Forbidden(annotations, fmt.Sprintf(
			"a Secret takes its values either from Vault (%s annotations) or from data and stringData, not both; remove one",
			vaultAnnotationPrefix+"*")))
	case plain:
		errs = append(errs, validatePlainData(s)...)
	case v.path == "":
		errs = append(errs, field.Required(annotations.Key(api.AnnotationVaultPath), fmt.Sprintf(
			"a Secret names where its values live in Vault: add the annotation %s: %s (a KV v2 read path, <mount>/data/<path>)",
			api.AnnotationVaultPath, examplePath(s))))
	}
	if s.Type == corev1.SecretTypeDockerConfigJson && !plain && v.keys != nil {
		if _, ok := v.keys[dockerConfigKey]; !ok {
			errs = append(errs, field.Required(annotations.Key(api.AnnotationVaultKeyPrefix+dockerConfigKey), fmt.Sprintf(
				"a %s Secret needs the key %s, and with key mappings only mapped keys exist: add the annotation %s%s: <vault key>, or drop every %s* annotation to take all keys of the Vault secret",
				corev1.SecretTypeDockerConfigJson, dockerConfigKey, api.AnnotationVaultKeyPrefix, dockerConfigKey, api.AnnotationVaultKeyPrefix)))
		}
	}
	return errs
}

// examplePath is the KV v2 path a Secret would have by convention.
func examplePath(s *corev1.Secret) string {
	return "secret/data/" + s.Namespace + "/" + s.Name
}

// plainSecretRejected explains why data and stringData are rejected and how
// to point at Vault instead. Values are never echoed.
func plainSecretRejected(s *corev1.Secret) field.ErrorList {
	msg := fmt.Sprintf("Secret values do not belong in Git: they would stay in its history and pass through the reconciler. "+
		"moor's nodes read Secret values from Vault instead: store them there (vault kv put secret/%s/%s KEY=VALUE ...), "+
		"remove data and stringData and add the annotation %s: %s. "+
		"(A development server started with --allow-plain-secrets accepts plain Secrets.)",
		s.Namespace, s.Name, api.AnnotationVaultPath, examplePath(s))
	var errs field.ErrorList
	if len(s.Data) > 0 {
		errs = append(errs, field.Forbidden(field.NewPath("data"), msg))
	}
	if len(s.StringData) > 0 {
		errs = append(errs, field.Forbidden(field.NewPath("stringData"), msg))
	}
	return errs
}

// validatePlainData checks the keys and size of a plain Secret's values,
// never echoing them.
func validatePlainData(s *corev1.Secret) field.ErrorList {
	var errs field.ErrorList
	size := 0
	for k, v := range s.Data {
		size += len(k) + len(v)
	}
	for k, v := range s.StringData {
		size += len(k) + len(v)
	}
	for _, k := range sortedKeys(s.Data) {
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(field.NewPath("data"), k, msg))
		}
	}
	for _, k := range sortedKeys(s.StringData) {
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(field.NewPath("stringData"), k, msg))
		}
	}
	if size > maxSecretSize {
		errs = append(errs, field.TooLong(field.NewPath("data"), field.OmitValueType{}, maxSecretSize))
	}
	if s.Type == corev1.SecretTypeDockerConfigJson {
		val, ok := s.StringData[dockerConfigKey]
		if !ok {
			b, inData := s.Data[dockerConfigKey]
			val, ok = string(b), inData
		}
		switch {
		case !ok:
			errs = append(errs, field.Required(field.NewPath("data").Key(dockerConfigKey), fmt.Sprintf(
				"a %s Secret needs the key %s", corev1.SecretTypeDockerConfigJson, dockerConfigKey)))
		case !json.Valid([]byte(val)):
			errs = append(errs, field.Invalid(field.NewPath("data").Key(dockerConfigKey), field.OmitValueType{},
				"must be a JSON document ({\"auths\": {...}}), as `docker login` writes to ~/.docker/config.json"))
		}
	}
	return errs
}

// validateSecretType accepts Opaque and kubernetes.io/dockerconfigjson.
func validateSecretType(t corev1.SecretType) field.ErrorList {
	path := field.NewPath("type")
	switch t {
	case corev1.SecretTypeOpaque, corev1.SecretTypeDockerConfigJson:
		return nil
	case corev1.SecretTypeDockercfg:
		return field.ErrorList{field.Invalid(path, string(t), fmt.Sprintf(
			"the legacy .dockercfg format is not supported by moor; use type: %s with the key %s", corev1.SecretTypeDockerConfigJson, dockerConfigKey))}
	case corev1.SecretTypeTLS, corev1.SecretTypeBasicAuth, corev1.SecretTypeSSHAuth:
		return field.ErrorList{field.Invalid(path, string(t),
			"not supported by moor yet; use type: Opaque with the same keys: moor mounts and injects every Secret alike")}
	case corev1.SecretTypeServiceAccountToken, corev1.SecretTypeBootstrapToken:
		return field.ErrorList{field.Invalid(path, string(t),
			"not supported by moor: moor has no service accounts and no bootstrap tokens")}
	}
	return field.ErrorList{field.NotSupported(path, t, []corev1.SecretType{corev1.SecretTypeOpaque, corev1.SecretTypeDockerConfigJson})}
}

// validateVault checks every vault.moor.dev/* annotation of a Secret
// whose engine is engine; the need for a path is the caller's.
func validateVault(anns map[string]string, engine string, annotations *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, k := range sortedKeys(anns) {
		if !strings.HasPrefix(k, vaultAnnotationPrefix) {
			continue
		}
		val, p := anns[k], annotations.Key(k)
		switch {
		case k == api.AnnotationVaultPath:
			if msg := checkVaultPath(val, engine); msg != "" {
				errs = append(errs, field.Invalid(p, val, msg))
			}
		case k == api.AnnotationVaultEngine:
			if val != api.VaultEngineKV && val != api.VaultEngineLease {
				errs = append(errs, field.NotSupported(p, val, []string{api.VaultEngineKV, api.VaultEngineLease}))
			}
		case k == api.AnnotationVaultVersion:
			errs = append(errs, checkVaultVersion(p, val, engine)...)
		case strings.HasPrefix(k, api.AnnotationVaultKeyPrefix):
			errs = append(errs, checkKeyMapping(p, strings.TrimPrefix(k, api.AnnotationVaultKeyPrefix), val)...)
		default:
			errs = append(errs, field.Invalid(p, val, fmt.Sprintf(
				"unknown annotation: moor reads %s, %s, %s and %s<secret key>; check the spelling",
				api.AnnotationVaultPath, api.AnnotationVaultVersion, api.AnnotationVaultEngine, api.AnnotationVaultKeyPrefix)))
		}
	}
	return errs
}

func checkVaultVersion(p *field.Path, val, engine string) field.ErrorList {
	if engine == api.VaultEngineLease {
		return field.ErrorList{field.Invalid(p, val, fmt.Sprintf(
			"pins a KV v2 version, and a secret of engine %s has none; remove it", api.VaultEngineLease))}
	}
	n, err := strconv.ParseInt(val, 10, 64)
	if err != nil || n < 1 || strings.TrimLeft(val, "0123456789") != "" {
		return field.ErrorList{field.Invalid(p, val, `must be a positive integer, the KV v2 version to read (e.g. "3"); remove it to read the latest version and follow rotations`)}
	}
	return nil
}

func checkKeyMapping(p *field.Path, secretKey, vaultKey string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsConfigMapKey(secretKey) {
		errs = append(errs, field.Invalid(p, vaultKey, "the Secret key after "+api.AnnotationVaultKeyPrefix+" is not valid: "+msg))
	}
	if vaultKey == "" || strings.IndexFunc(vaultKey, unicode.IsControl) >= 0 {
		errs = append(errs, field.Invalid(p, vaultKey, "must name the key of the Vault secret whose value this Secret key gets"))
	}
	return errs
}

// checkVaultPath says what is wrong with a Vault read path, or "".
func checkVaultPath(p, engine string) string {
	switch {
	case p == "":
		return "must name the Vault path of the values, e.g. secret/data/shop/db"
	case strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/"):
		return fmt.Sprintf("must not start or end with a slash, e.g. %s", strings.Join(strings.FieldsFunc(p, func(r rune) bool { return r == '/' }), "/"))
	case strings.ContainsAny(p, "?#") || strings.IndexFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "must not contain blanks, control characters, ? or #"
	}
	segs := strings.Split(p, "/")
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			return `must not contain empty, "." or ".." segments`
		}
	}
	if engine != api.VaultEngineKV {
		return ""
	}
	for i := 1; i < len(segs)-1; i++ {
		if segs[i] == "data" {
			return ""
		}
	}
	msg := `must be a KV v2 read path "<mount>/data/<path>", e.g. secret/data/shop/db for values written with "vault kv put secret/shop/db ..."`
	for i := 1; i < len(segs)-1; i++ {
		if segs[i] == "metadata" {
			segs[i] = "data"
			return fmt.Sprintf("%s; this is the metadata path: read %s instead", msg, strings.Join(segs, "/"))
		}
	}
	if len(segs) >= 2 {
		msg += fmt.Sprintf(" (did you mean %s/data/%s?)", segs[0], strings.Join(segs[1:], "/"))
	}
	return msg + fmt.Sprintf("; for other secrets engines set %s: %s", api.AnnotationVaultEngine, api.VaultEngineLease)
}

// SecretRefOf is the reference the nodes get for a Secret that Load
// accepted: where its values live in Vault, or, for a plain Secret
// (Options.AllowPlainSecrets), its values, data and stringData merged as
// Kubernetes merges them (stringData wins).
func SecretRefOf(s *corev1.Secret) api.SecretRef {
	ref := api.SecretRef{Namespace: namespaceOrDefault(s.Namespace), Name: s.Name, Type: string(s.Type)}
	if ref.Type == "" {
		ref.Type = string(corev1.SecretTypeOpaque)
	}
	if len(s.Data)+len(s.StringData) > 0 {
		ref.Data = make(map[string][]byte, len(s.Data)+len(s.StringData))
		for k, v := range s.Data {
			ref.Data[k] = append([]byte(nil), v...)
		}
		for k, v := range s.StringData {
			ref.Data[k] = []byte(v)
		}
		return ref
	}
	v := readVault(s.Annotations)
	ref.Vault = &api.VaultSource{Engine: v.engine, Path: v.path, Version: v.version, Keys: v.keys}
	return ref
}

// SecretKeys returns the keys a Secret that Load accepted is known to
// have at commit time, sorted: its key mapping, or a plain Secret's keys.
// known is false when its keys are whatever the Vault secret holds.
func SecretKeys(s *corev1.Secret) (keys []string, known bool) {
	if len(s.Data)+len(s.StringData) > 0 {
		set := map[string]bool{}
		for k := range s.Data {
			set[k] = true
		}
		for k := range s.StringData {
			set[k] = true
		}
		return sortedKeys(set), true
	}
	v := readVault(s.Annotations)
	if v.keys == nil {
		return nil, false
	}
	return sortedKeys(v.keys), true
}

func namespaceOrDefault(ns string) string {
	if ns == "" {
		return defaultNamespace
	}
	return ns
}
