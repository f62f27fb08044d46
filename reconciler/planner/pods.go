package planner

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
)

// defaultNamespace is used for objects whose namespace is empty. The
// manifest package defaults it already; the planner does too so that it
// never plans a pod with an empty namespace.
const defaultNamespace = "default"

// ownerKindDeployment prefixes api.Pod.Owner for Deployment pods.
const ownerKindDeployment = "Deployment"

// suffixAlphabet is the alphabet Kubernetes uses for generated names
// (k8s.io/apimachinery/pkg/util/rand): no vowels, no confusable digits.
const suffixAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// suffixLen is the length of a Deployment pod's random-looking suffix.
const suffixLen = 5

// expand is expandWith with every Deployment planned from scratch (no
// state): each runs only its current template.
func expand(objs *manifest.Objects) ([]api.Pod, []Pending) {
	in := &Input{Objects: objs}
	return expandWith(objs, planRollouts(in, objs, newPodEnv(in, nil, indexStatus(nil)), in.secretVersions()).pods)
}

// expandWith turns the bare Pods of objs and the pods planned elsewhere
// (Deployments', Jobs') into the pods to schedule, sorted by key. A pod
// whose key is already taken (a bare Pod named like a Deployment's pod)
// does not run; it is returned as Pending. Bare Pods win such collisions
// because their names are written by the user. It may reuse more's array.
func expandWith(objs *manifest.Objects, more []api.Pod) ([]api.Pod, []Pending) {
	all := slices.Grow(more, len(objs.Pods))
	for i := range objs.Pods {
		all = append(all, barePod(&objs.Pods[i]))
	}
	// Sort indices: api.Pod is large and swapping it dominates otherwise.
	order := make([]int, len(all))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return candidateLess(&all[order[i]], &all[order[j]]) })

	pods := make([]api.Pod, 0, len(all))
	var collisions []Pending
	for _, i := range order {
		p := &all[i]
		if n := len(pods); n > 0 && pods[n-1].Key() == p.Key() {
			collisions = append(collisions, Pending{
				Pod:    *p,
				Reason: fmt.Sprintf("pod name %s is already used by %s; rename one of them", p.Key(), describe(&pods[n-1])),
			})
			continue
		}
		pods = append(pods, *p)
	}
	return pods, collisions
}

// candidateLess orders by key; for equal keys bare Pods first, then by
// owner and spec so that duplicates resolve the same way in any input order.
func candidateLess(a, b *api.Pod) bool {
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	if a.Owner != b.Owner {
		return a.Owner < b.Owner // "" (bare) sorts first
	}
	return a.SpecHash < b.SpecHash
}

func describe(p *api.Pod) string {
	if p.Owner == "" {
		return "Pod " + p.Key()
	}
	return p.Owner + " in namespace " + p.Namespace
}

// barePod plans a Pod object as written.
func barePod(obj *corev1.Pod) api.Pod {
	ns := obj.Namespace
	if ns == "" {
		ns = defaultNamespace
	}
	spec := *obj.Spec.DeepCopy()
	specHash := api.HashObject(spec)
	return api.Pod{
		Namespace:   ns,
		Name:        obj.Name,
		UID:         podUID(ns, obj.Name, specHash),
		Labels:      copyMap(obj.Labels),
		Annotations: copyMap(obj.Annotations),
		SpecHash:    specHash,
		Spec:        spec,
	}
}

// replicas is spec.replicas, defaulting to 1 as Kubernetes does.
func replicas(d *appsv1.Deployment) int {
	if d.Spec.Replicas == nil {
		return 1
	}
	if *d.Spec.Replicas < 0 {
		return 0
	}
	return int(*d.Spec.Replicas)
}

// deploymentPods plans a Deployment's replicas from scratch, as its
// first plan does. Names depend only on the namespace, the Deployment's
// name, the revision hash and the replica index, so scaling keeps the
// names of the lower indices and a new template gets new names.
func deploymentPods(d *appsv1.Deployment) []api.Pod {
	objs := &manifest.Objects{Deployments: []appsv1.Deployment{*d}}
	in := &Input{Objects: objs}
	return planRollouts(in, objs, newPodEnv(in, nil, indexStatus(nil)), in.secretVersions()).pods
}

// replicaName returns "<deploy>-<hash>-<suffix>" for replica index, skipping
// suffixes a lower index already uses. Collisions depend only on lower
// indices, so scaling up or down never renames a surviving replica.
func replicaName(ns, deploy, hash string, index int, used map[string]bool) string {
	for attempt := 0; ; attempt++ {
		name := deploy + "-" + hash + "-" + suffix(ns, deploy, hash, index, attempt)
		if !used[name] {
			used[name] = true
			return name
		}
	}
}

// suffix derives suffixLen characters of suffixAlphabet from its arguments.
func suffix(ns, deploy, hash string, index, attempt int) string {
	sum := sha256.Sum256([]byte(ns + "\x00" + deploy + "\x00" + hash + "\x00" +
		strconv.Itoa(index) + "\x00" + strconv.Itoa(attempt)))
	v := binary.BigEndian.Uint64(sum[:8])
	var b [suffixLen]byte
	for i := range b {
		b[i] = suffixAlphabet[v%uint64(len(suffixAlphabet))]
		v /= uint64(len(suffixAlphabet))
	}
	return string(b[:])
}

// podUID is a UUID-shaped digest of the pod's identity: the same pod gets
// the same UID from any plan, a changed spec gets a new one. The commit is
// deliberately not part of it.
func podUID(ns, name, specHash string) string {
	sum := sha256.Sum256([]byte(ns + "\x00" + name + "\x00" + specHash))
	sum[6] = sum[6]&0x0f | 0x50 // version 5 (name-based, SHA)
	sum[8] = sum[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
