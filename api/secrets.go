package api

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// Secrets in Git carry no values, only where they live in Vault: a
// `v1 Secret` whose annotations name a Vault path. The reconciler passes
// these references to the nodes whose pods use them; each node agent reads
// the values from Vault with its own identity. Values never pass through the
// reconciler, Git or any wire document (except Data from plain Secrets,
// which a server allows only in development).
//
//	apiVersion: v1
//	kind: Secret
//	metadata:
//	  name: db
//	  annotations:
//	    vault.moor.dev/path: secret/data/shop/db   # KV v2 read path (mount/data/path)
//	    vault.moor.dev/version: "3"                # optional: pin a KV version
//	    vault.moor.dev/key.username: user          # optional: Secret key <- Vault key
//	type: Opaque
const (
	// AnnotationVaultPath is the Vault path of the secret's values. For the
	// kv engine it is the KV v2 read path ("<mount>/data/<path>"); for the
	// lease engine any logical read path that returns a lease.
	AnnotationVaultPath = "vault.moor.dev/path"
	// AnnotationVaultVersion pins a KV v2 version; unset means the latest,
	// which is watched and rotated.
	AnnotationVaultVersion = "vault.moor.dev/version"
	// AnnotationVaultEngine is "kv" (default) or "lease".
	AnnotationVaultEngine = "vault.moor.dev/engine"
	// AnnotationVaultKeyPrefix + "<secret key>" maps one Secret key to a
	// Vault key. With any such annotation only the mapped keys exist in the
	// Secret; without, every key of the Vault secret does, with its name.
	AnnotationVaultKeyPrefix = "vault.moor.dev/key."

	// AnnotationSecretVersions is set by the planner on pods that consume
	// Secrets through environment variables: "name=version,..." sorted by
	// name, the newest version any node reported. A new version changes
	// the pod template, so a Deployment rolls its pods as for any template
	// change; the agent starts such a pod with at least these versions.
	//
	// In detail: only KV Secrets are listed (a lease is per node; a plain
	// Secret changes with its commit). A pinned Secret's version is its
	// pin, known at commit time. Version 0 means no node has read the
	// Secret yet: the agent reads it and reports the version, and the next
	// document names it (the agent may wait for that document rather than
	// start the pod twice). A bare Pod's UID changes with the versions; a
	// Job pod's does not (it runs to completion with what it started with).
	AnnotationSecretVersions = "moor.dev/secret-versions"
)

// PathSecrets lists the Secrets of the deployed commit with what the nodes
// read of them, never values.
const PathSecrets = "/v1/secrets" // GET → []SecretView (admin)

// Vault engines of SecretRef.
const (
	VaultEngineKV    = "kv"
	VaultEngineLease = "lease"
)

// SecretRef is a Secret a node's pods use, as NodeDesired carries it.
type SecretRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Type is the Kubernetes Secret type: "Opaque",
	// "kubernetes.io/dockerconfigjson", ...
	Type string `json:"type"`
	// Vault says where the values live; nil only for plain Secrets.
	Vault *VaultSource `json:"vault,omitempty"`
	// Data are the values of a plain Secret (data and stringData merged),
	// present only when the server allows plain Secrets (development).
	Data map[string][]byte `json:"data,omitempty"`
}

// Key is "namespace/name".
func (s *SecretRef) Key() string { return s.Namespace + "/" + s.Name }

// VaultSource is where a Secret's values live in Vault.
type VaultSource struct {
	// Engine is VaultEngineKV or VaultEngineLease.
	Engine string `json:"engine"`
	// Path is the read path as written in the annotation.
	Path string `json:"path"`
	// Version pins a KV v2 version; 0 means the latest.
	Version int64 `json:"version,omitempty"`
	// Keys maps Secret keys to Vault keys; empty means every Vault key
	// under its own name.
	Keys map[string]string `json:"keys,omitempty"`
}

// SortSecretRefs orders refs by namespace, then name.
func SortSecretRefs(refs []SecretRef) {
	sort.Slice(refs, func(i, j int) bool { return refs[i].Key() < refs[j].Key() })
}

// SecretStatus is what a node observed of one Secret: its version and key
// names, never its values.
type SecretStatus struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Version is the KV v2 version read, or for a leased secret the Unix
	// time (seconds) the current lease was issued; 0 when never read.
	Version int64 `json:"version,omitempty"`
	// Keys are the names of the Secret's keys, sorted.
	Keys []string `json:"keys,omitempty"`
	// LeaseExpires is when a leased secret's lease ends, if renewed no
	// further; zero for KV secrets.
	LeaseExpires time.Time `json:"leaseExpires,omitzero"`
	// ReadAt is when the values were last read or checked successfully.
	ReadAt time.Time `json:"readAt,omitzero"`
	// Error says why the last read failed (path missing, permission
	// denied, Vault sealed or unreachable); the last good values stay in
	// use.
	Error string `json:"error,omitempty"`
}

// Key is "namespace/name".
func (s *SecretStatus) Key() string { return s.Namespace + "/" + s.Name }

// FormatSecretVersions renders AnnotationSecretVersions: "name=version,..."
// sorted by name.
func FormatSecretVersions(v map[string]int64) string {
	names := make([]string, 0, len(v))
	for n := range v {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(strconv.FormatInt(v[n], 10))
	}
	return b.String()
}

// ParseSecretVersions parses AnnotationSecretVersions; malformed entries are
// skipped.
func ParseSecretVersions(s string) map[string]int64 {
	out := map[string]int64{}
	for _, part := range strings.Split(s, ",") {
		name, ver, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			continue
		}
		if n, err := strconv.ParseInt(ver, 10, 64); err == nil {
			out[name] = n
		}
	}
	return out
}
