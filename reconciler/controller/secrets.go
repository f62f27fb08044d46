package controller

import (
	"context"
	"sort"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
)

// Secrets: the controller feeds the planner the Secret versions the nodes
// report, replans when a report names a newer one, and shows what the
// nodes read (never values).

// secretVersions returns, by Secret "namespace/name", the newest version
// any node's last status reports: planner.Input.SecretVersions.
func secretVersions(statuses map[string]api.NodeStatus) map[string]int64 {
	out := map[string]int64{}
	for _, st := range statuses {
		for i := range st.Secrets {
			s := &st.Secrets[i]
			if s.Version > out[s.Key()] {
				out[s.Key()] = s.Version
			}
		}
	}
	return out
}

// secretReportChanged reports whether s names a version of a Secret newer
// than the one the last plan gave its env consumers
// (planner.Output.SecretVersions): then they must be replaced, so the
// caller replans.
func (c *Controller) secretReportChanged(s api.NodeStatus) bool {
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	return last != nil && secretsNewer(s.Secrets, last.SecretVersions)
}

// secretsNewer reports whether reported holds a version above used for a
// Secret in used.
func secretsNewer(reported []api.SecretStatus, used map[string]int64) bool {
	for i := range reported {
		s := &reported[i]
		if v, ok := used[s.Key()]; ok && s.Version > v {
			return true
		}
	}
	return false
}

// Secrets lists every Secret of the deployed commit with the nodes whose
// pods use it (as last published) and what each node last reported
// reading: versions and key names, never values.
func (c *Controller) Secrets(ctx context.Context) ([]api.SecretView, error) {
	statuses, err := c.cfg.Store.ListNodeStatus(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	objs, commit, last := c.objects, c.commit, c.last
	c.mu.Unlock()
	var nodes map[string]*api.NodeDesired
	if last != nil {
		nodes = last.Nodes
	}
	return secretViews(objs, nodes, statuses, commit), nil
}

// secretViews joins the Secrets of objs with the documents that list them
// and the nodes' reports; sorted by namespace, then name.
func secretViews(objs *manifest.Objects, nodes map[string]*api.NodeDesired, statuses map[string]api.NodeStatus, commit string) []api.SecretView {
	out := []api.SecretView{}
	if objs == nil {
		return out
	}
	views := map[string]*api.SecretView{}
	perNode := map[string]map[string]*api.SecretNodeView{} // secret key → node → view
	for i := range objs.Secrets {
		ref := manifest.SecretRefOf(&objs.Secrets[i])
		v := api.SecretView{Namespace: ref.Namespace, Name: ref.Name, Type: ref.Type, Vault: ref.Vault, Commit: commit}
		for k := range ref.Data {
			v.PlainKeys = append(v.PlainKeys, k)
		}
		sort.Strings(v.PlainKeys)
		out = append(out, v)
		perNode[ref.Key()] = map[string]*api.SecretNodeView{}
	}
	for i := range out {
		views[out[i].Namespace+"/"+out[i].Name] = &out[i]
	}
	nodeView := func(key, node string) *api.SecretNodeView {
		m, ok := perNode[key]
		if !ok {
			return nil // not a Secret of this commit
		}
		if m[node] == nil {
			m[node] = &api.SecretNodeView{Node: node}
		}
		return m[node]
	}
	for node, d := range nodes {
		for i := range d.Pods {
			p := &d.Pods[i]
			seen := map[string]bool{}
			for _, u := range manifest.SecretUses(&p.Spec, nil) {
				key := p.Namespace + "/" + u.Name
				if nv := nodeView(key, node); nv != nil && !seen[key] {
					seen[key] = true
					nv.Pods = append(nv.Pods, p.Name)
				}
			}
		}
	}
	for node, st := range statuses {
		for i := range st.Secrets {
			s := &st.Secrets[i]
			if nv := nodeView(s.Key(), node); nv != nil {
				nv.Version, nv.Keys, nv.LeaseExpires, nv.ReadAt, nv.Error = s.Version, s.Keys, s.LeaseExpires, s.ReadAt, s.Error
			}
		}
	}
	for key, m := range perNode {
		v := views[key]
		for _, nv := range m {
			sort.Strings(nv.Pods)
			v.Nodes = append(v.Nodes, *nv)
		}
		sort.Slice(v.Nodes, func(i, j int) bool { return v.Nodes[i].Node < v.Nodes[j].Node })
	}
	return out
}

// baseManifestOptions are the validation options the server's
// configuration sets: the network and whether plain Secrets are allowed.
func (c *Controller) baseManifestOptions() manifest.Options {
	opts := c.cfg.Network.ManifestOptions()
	opts.AllowPlainSecrets = c.cfg.AllowPlainSecrets
	return opts
}
