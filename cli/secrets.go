package cli

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
)

// `moor get secrets`: where each Secret's values live and what the nodes
// read of them. The server never has values to show, and the CLI never
// asks for any.

// Secrets lists every Secret of the deployed commit with what the nodes
// read: versions and key names, never values.
func (c *Client) Secrets(ctx context.Context) ([]api.SecretView, error) {
	var v []api.SecretView
	return v, c.do(ctx, http.MethodGet, api.PathSecrets, &v)
}

// selectSecrets is selectResult for Secrets.
func selectSecrets(r *result, names []string, namespace string) []error {
	key := func(v api.SecretView) (string, string) { return v.Namespace, v.Name }
	r.Secrets = sortByKey(filterNamespace(r.Secrets, namespace, key), key)
	var missing []error
	r.Secrets, missing = pick(r.Secrets, names, kinds[kindSecret].Resource, exactName(key))
	return missing
}

// secretTable prints NAME, TYPE, PATH, VERSION, KEYS, NODES (nodes that
// read it / nodes whose pods use it or report it) and LAST READ; wide
// adds ENGINE, ERROR (the first node's) and the commit.
func secretTable(secrets []api.SecretView, o tableOptions) table {
	h := []string{"NAME", "TYPE", "PATH", "VERSION", "KEYS", "NODES", "LAST READ"}
	if o.Wide {
		h = append(h, "ENGINE", "ERROR", "COMMIT")
	}
	t := newTable(kindSecret, o, h...)
	for i := range secrets {
		s := &secrets[i]
		path, engine := "<plain>", "<plain>"
		if s.Vault != nil {
			path, engine = s.Vault.Path, s.Vault.Engine
		}
		read, lastRead, firstErr := 0, time.Time{}, ""
		for _, n := range s.Nodes {
			if !n.ReadAt.IsZero() && n.Error == "" {
				read++
			}
			if n.ReadAt.After(lastRead) {
				lastRead = n.ReadAt
			}
			if firstErr == "" && n.Error != "" {
				firstErr = n.Node + ": " + n.Error
			}
		}
		last := "<never>"
		if !lastRead.IsZero() {
			last = humanDuration(o.Now.Sub(lastRead))
		}
		keys := "<unknown>"
		if k, known := secretKeys(s); known {
			keys = strconv.Itoa(len(k))
		}
		cells := []string{s.Type, path, secretVersion(s), keys, fmt.Sprintf("%d/%d", read, len(s.Nodes)), last}
		if o.Wide {
			cells = append(cells, engine, orNone(truncate(firstErr, maxMessageLen)), shortSHA(s.Commit))
		}
		t.addRow(kindSecret, o, s.Namespace, s.Name, cells...)
	}
	return t
}

// secretVersion is the VERSION column: the pinned version, "lease" for
// leased secrets, "-" for plain ones, else the newest version a node read.
func secretVersion(s *api.SecretView) string {
	switch {
	case s.Vault == nil:
		return "-"
	case s.Vault.Engine == api.VaultEngineLease:
		return "lease"
	case s.Vault.Version > 0:
		return strconv.FormatInt(s.Vault.Version, 10) + " (pinned)"
	}
	if v := newestVersion(s); v > 0 {
		return strconv.FormatInt(v, 10)
	}
	return "<none>"
}

func newestVersion(s *api.SecretView) int64 {
	var v int64
	for _, n := range s.Nodes {
		v = max(v, n.Version)
	}
	return v
}

// secretKeys returns a Secret's key names: its mapping, a plain Secret's
// keys, else those the nodes reported; known is false when no source
// says.
func secretKeys(s *api.SecretView) ([]string, bool) {
	switch {
	case s.Vault == nil:
		return s.PlainKeys, true
	case len(s.Vault.Keys) > 0:
		return slices.Sorted(maps.Keys(s.Vault.Keys)), true
	}
	var keys []string
	reported := false
	for _, n := range s.Nodes {
		if n.ReadAt.IsZero() && n.Keys == nil {
			continue
		}
		reported = true
		for _, k := range n.Keys {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys, reported
}

// SecretObject is a Secret as -o json/yaml prints it: a v1 Secret with
// the annotations it has in Git and, instead of data, a status of what
// the nodes read. There are no values to print.
type SecretObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Type              corev1.SecretType  `json:"type"`
	Status            SecretObjectStatus `json:"status"`
}

// SecretObjectStatus is what moor knows of a Secret's contents.
type SecretObjectStatus struct {
	// Keys are the key names (mapping, plain keys or as reported).
	Keys []string `json:"keys,omitempty"`
	// Version is the newest version a node read (KV).
	Version int64 `json:"version,omitempty"`
	// Nodes are the per-node reports and the pods using the Secret.
	Nodes []api.SecretNodeView `json:"nodes,omitempty"`
}

func secretObject(v api.SecretView) any {
	o := &SecretObject{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: v.Name, Namespace: v.Namespace, Annotations: map[string]string{}},
		Type:       corev1.SecretType(v.Type),
		Status:     SecretObjectStatus{Version: newestVersion(&v), Nodes: v.Nodes},
	}
	o.Status.Keys, _ = secretKeys(&v)
	if v.Commit != "" {
		o.Annotations[api.AnnotationCommit] = v.Commit
	}
	if s := v.Vault; s != nil {
		o.Annotations[api.AnnotationVaultPath] = s.Path
		if s.Engine != api.VaultEngineKV {
			o.Annotations[api.AnnotationVaultEngine] = s.Engine
		}
		if s.Version > 0 {
			o.Annotations[api.AnnotationVaultVersion] = strconv.FormatInt(s.Version, 10)
		}
		for k, vk := range s.Keys {
			o.Annotations[api.AnnotationVaultKeyPrefix+k] = vk
		}
	}
	return o
}
