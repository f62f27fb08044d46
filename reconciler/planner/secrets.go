package planner

import (
	"maps"
	"sort"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
)

// Secrets in the plan. Every node's document lists the Secrets its pods
// use: references to Vault, never values (except plain Secrets of a
// development server). Pods that read Secrets through environment
// variables carry api.AnnotationSecretVersions, the versions they must
// start with; a new version changes a Deployment's template and a bare
// Pod's UID, so a rotation replaces them as any other change would. Files
// of secret volumes are updated in place by the node and need no restart.
//
// The version of a Secret is:
//   - the pinned version (vault.moor.dev/version), known at commit time,
//     so a new pin in Git rolls the env consumers at once;
//   - otherwise the newest version any node reported
//     (Input.SecretVersions), or 0 while no node has read it: the agent
//     reads it, reports it, and the next plan names the version.
//
// Lease Secrets (engine lease) and plain Secrets are not versioned here: a
// lease is per node, so only its node can tell when its env consumers need
// the new credentials, and a plain Secret's values change with the commit.

// secretIndex holds the Secrets of a commit by "namespace/name".
type secretIndex map[string]*corev1.Secret

func indexSecrets(objs *manifest.Objects) secretIndex {
	idx := make(secretIndex, len(objs.Secrets))
	for i := range objs.Secrets {
		s := &objs.Secrets[i]
		idx[namespaceOf(s.Namespace)+"/"+s.Name] = s
	}
	return idx
}

// secretVersions returns the version every versioned Secret of objs gets
// (see above), keyed "namespace/name"; 0 means not read yet.
func secretVersions(objs *manifest.Objects, reported map[string]int64) map[string]int64 {
	out := map[string]int64{}
	if objs == nil {
		return out
	}
	for i := range objs.Secrets {
		ref := manifest.SecretRefOf(&objs.Secrets[i])
		if ref.Vault == nil || ref.Vault.Engine != api.VaultEngineKV {
			continue
		}
		v := ref.Vault.Version
		if v == 0 {
			v = max(reported[ref.Key()], 0)
		}
		out[ref.Key()] = v
	}
	return out
}

// secretVersions is secretVersions of the Input's objects and reports.
func (in *Input) secretVersions() map[string]int64 {
	return secretVersions(in.Objects, in.SecretVersions)
}

// envSecretVersions returns, by Secret name, the versions of the
// versioned Secrets spec reads through environment variables
// (env[].valueFrom.secretKeyRef, envFrom[].secretRef); versions is
// secretVersions' result. Nil when spec reads none.
func envSecretVersions(ns string, spec *corev1.PodSpec, versions map[string]int64) map[string]int64 {
	var out map[string]int64
	for _, u := range manifest.SecretUses(spec, nil) {
		if !u.Env {
			continue
		}
		v, ok := versions[namespaceOf(ns)+"/"+u.Name]
		if !ok {
			continue
		}
		if out == nil {
			out = map[string]int64{}
		}
		out[u.Name] = v
	}
	return out
}

// secretTemplate returns t with api.AnnotationSecretVersions set to the
// versions of the Secrets its pods read through environment variables,
// or t itself when they read none. Hash this template (and plan a
// Deployment's pods from it) and a rotation rolls the Deployment like any
// template change.
func secretTemplate(ns string, t *corev1.PodTemplateSpec, versions map[string]int64) *corev1.PodTemplateSpec {
	v := envSecretVersions(ns, &t.Spec, versions)
	if v == nil {
		return t
	}
	c := *t
	c.Annotations = maps.Clone(t.Annotations)
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[api.AnnotationSecretVersions] = api.FormatSecretVersions(v)
	return &c
}

// secretVersionPods annotates bare Pods and Job pods that read Secrets
// through environment variables. A bare Pod's UID takes in the versions, so
// a rotation restarts it; a Job pod's does not: it runs to completion with
// the values it started with, and only pods not started yet read the new
// version. Deployment pods are left alone: they get the annotation from
// their template (secretTemplate).
func secretVersionPods(pods []api.Pod, versions map[string]int64) {
	for i := range pods {
		p := &pods[i]
		if p.Owner != "" && !isJobPod(p) {
			continue
		}
		v := envSecretVersions(p.Namespace, &p.Spec, versions)
		if v == nil {
			continue
		}
		s := api.FormatSecretVersions(v)
		p.Annotations = maps.Clone(p.Annotations)
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[api.AnnotationSecretVersions] = s
		if p.Owner == "" {
			p.UID = podUID(p.Namespace, p.Name, p.SpecHash+"\x00"+s)
		}
	}
}

func isJobPod(p *api.Pod) bool {
	return len(p.Owner) > len(ownerKindJob) && p.Owner[:len(ownerKindJob)+1] == ownerKindJob+"/"
}

// planSecrets gives every node's document the Secrets its pods use and
// records the versions this plan used (Output.SecretVersions): versions,
// the Input's secretVersions.
func planSecrets(versions map[string]int64, objs *manifest.Objects, out *Output) {
	out.SecretVersions = versions
	idx := indexSecrets(objs)
	refs := map[string]api.SecretRef{}
	for _, d := range out.Nodes {
		d.Secrets = nodeSecrets(d.Pods, idx, refs)
	}
}

// nodeSecrets returns the Secrets pods use that exist in idx, sorted and
// without duplicates; refs caches the references across nodes.
func nodeSecrets(pods []api.Pod, idx secretIndex, refs map[string]api.SecretRef) []api.SecretRef {
	seen := map[string]bool{}
	var out []api.SecretRef
	for i := range pods {
		p := &pods[i]
		for _, u := range manifest.SecretUses(&p.Spec, nil) {
			key := namespaceOf(p.Namespace) + "/" + u.Name
			if seen[key] {
				continue
			}
			seen[key] = true
			s, ok := idx[key]
			if !ok {
				continue // optional and absent
			}
			ref, ok := refs[key]
			if !ok {
				ref = manifest.SecretRefOf(s)
				refs[key] = ref
			}
			out = append(out, ref)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}
