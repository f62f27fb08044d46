package nodeagent

import (
	"sort"

	"github.com/moor-dev/moor/api"
)

// secretStatuses is NodeStatus.Secrets: one entry per Secret of the desired
// document d, sorted by namespace and name. Vault-backed Secrets report what
// src observed (version 0 and no keys when never read, or when src is nil);
// plain Secrets report their key names. Values never appear.
func secretStatuses(d *api.NodeDesired, src SecretSource) []api.SecretStatus {
	if d == nil || len(d.Secrets) == 0 {
		return nil
	}
	seen := map[string]api.SecretStatus{}
	if src != nil {
		for _, s := range src.Status() {
			seen[s.Key()] = s
		}
	}
	out := make([]api.SecretStatus, 0, len(d.Secrets))
	for i := range d.Secrets {
		ref := &d.Secrets[i]
		st := api.SecretStatus{Namespace: ref.Namespace, Name: ref.Name}
		if ref.Vault == nil {
			st.Keys = sortedKeys(ref.Data)
		} else if s, ok := seen[ref.Key()]; ok {
			st = s
			st.Namespace, st.Name = ref.Namespace, ref.Name
			st.Keys = append([]string(nil), s.Keys...)
			sort.Strings(st.Keys)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

// sortedKeys returns m's keys, sorted; nil when m is empty.
func sortedKeys(m map[string][]byte) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
