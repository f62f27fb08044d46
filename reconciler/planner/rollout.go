package planner

import (
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
)

// This file plans Deployments as Kubernetes rolls them out: each pod
// template a Deployment had is a revision (a ReplicaSet in Kubernetes),
// whose pods are "<deployment>-<hash>-<suffix>". The revisions that still
// have pods are persisted (DeploymentState), so old pods keep their names,
// UIDs and nodes while each plan takes the next step of the rollout from
// the readiness nodes report (rollout_step.go). Status and views are in
// rollout_status.go.

// DeploymentState is what the planner remembers about one Deployment
// between plans: its revisions that still have pods. The controller
// persists Output.DeploymentStates and passes them back as the next
// Input.DeploymentStates; without them a changed template replaces every
// pod at once.
type DeploymentState struct {
	// Revisions are oldest first; the last is the current one, the one the
	// Deployment rolls out to: its template in Git, unless spec.paused
	// holds an older one. Only the current revision may keep no pod.
	Revisions []DeploymentRevision `json:"revisions"`
	// ProgressAt is when the rollout last made progress: a new current
	// revision, more of its pods, fewer old pods, more pods ready or
	// available (Kubernetes' Progressing condition), or a resume.
	// spec.progressDeadlineSeconds counts from it.
	ProgressAt time.Time `json:"progressAt,omitzero"`
	// Progress are the counts of the last plan, to tell progress.
	Progress RolloutCounts `json:"progress"`
	// Paused is set while spec.paused holds the rollout.
	Paused bool `json:"paused,omitempty"`
}

// DeploymentRevision is one pod template of a Deployment and the pods it
// keeps.
type DeploymentRevision struct {
	// Hash is the revision's pod-template-hash (see templateHash).
	Hash string `json:"hash"`
	// Template is the pod template its pods are built from, so that old
	// pods are planned unchanged after Git changed the template.
	Template corev1.PodTemplateSpec `json:"template"`
	// Pods are the replica indices of its pods, ascending; len(Pods) is
	// how many it keeps. A pod's name, and so its UID, derive from the
	// hash and its index, so a pod keeps both while it is kept.
	Pods []int `json:"pods"`
}

// RolloutCounts sum up a Deployment's pods in one plan.
type RolloutCounts struct {
	Updated   int32 `json:"updated"` // pods of the current revision
	Old       int32 `json:"old"`     // pods of older revisions
	Ready     int32 `json:"ready"`
	Available int32 `json:"available"`
}

// templateHash is a Deployment's revision hash: its pods' pod-template-hash
// label and the middle of their names. It is the one place that decides
// what is a new revision, so what makes a Deployment roll out: the pod
// template its new pods get (currentTemplate), which takes in what lies
// outside spec.template and must roll the pods too: the versions of the
// Secrets they read through env (secretVersions' result). It must stay 10
// lower-case hex digits (replicaOf parses pod names), and a plain template
// must keep hashing as api.HashObject(&d.Spec.Template) so that upgrading
// moor restarts no pod.
func templateHash(tmpl *corev1.PodTemplateSpec) string {
	return api.HashObject(tmpl)
}

// currentTemplate is the pod template a Deployment's current revision
// builds its pods from: spec.template as written, annotated with the
// versions of the Secrets it reads through env. It must not modify d; the
// result is only read.
func currentTemplate(d *appsv1.Deployment, secretVersions map[string]int64) *corev1.PodTemplateSpec {
	return secretTemplate(d.Namespace, &d.Spec.Template, secretVersions)
}

// deploymentPlan is the outcome of planning the Deployments.
type deploymentPlan struct {
	pods     []api.Pod
	rollouts map[string]*rollout // by "namespace/name", Deployments of Git only
	states   map[string]DeploymentState
	requeue  time.Duration
}

// rollout is one Deployment being planned.
type rollout struct {
	key string
	d   *appsv1.Deployment // a copy, namespace defaulted
	// revs are the revisions, oldest first; target, when not nil, is the
	// last. It is nil only for a Deployment paused before its first plan.
	revs   []*revision
	target *revision
	strategy
	paused   bool
	minReady time.Duration
	// waiting is set when a Recreate rollout waits for old pods to stop.
	waiting bool
	// Progress: as persisted before this plan, and as after it.
	prevTarget string
	prev       RolloutCounts
	wasPaused  bool
	progressAt time.Time
	counts     RolloutCounts
}

// revision is a DeploymentRevision being planned.
type revision struct {
	hash     string
	tmpl     *corev1.PodTemplateSpec
	specHash string
	pods     []int    // kept replica indices, ascending
	names    []string // names of indices 0..len(names)-1, extended on demand
	used     map[string]bool
	uids     map[int]string // by index, filled on demand
	// private is set when tmpl belongs to this plan (the template of
	// Git), not to Input.DeploymentStates.
	private bool
}

// planRollouts plans every Deployment of objs from its state: the next
// step of its rollout and the pods of all its revisions. Deployments gone
// from Git are dropped with all their revisions.
// secretVersions is secretVersions' result for in, computed once per plan.
func planRollouts(in *Input, objs *manifest.Objects, env *podEnv, secretVersions map[string]int64) *deploymentPlan {
	dp := &deploymentPlan{rollouts: map[string]*rollout{}, states: map[string]DeploymentState{}}
	var order []*rollout
	n := 0
	for _, d := range sortedDeployments(objs.Deployments) {
		key := d.Namespace + "/" + d.Name
		if dp.rollouts[key] != nil {
			continue // a duplicate the manifest would have rejected
		}
		r := newRollout(d, in.DeploymentStates[key], secretVersions)
		r.step(env)
		r.finish(env, in.Now)
		dp.rollouts[key] = r
		order = append(order, r)
		if st, ok := r.state(); ok {
			dp.states[key] = st
		}
		dp.requeueAfter(r.requeue(env, in.Now))
		n += r.total()
	}
	dp.pods = make([]api.Pod, 0, n+len(objs.Pods)) // room for expandWith
	for _, r := range order {
		for _, v := range r.revs {
			dp.pods = r.appendPods(dp.pods, v)
		}
	}
	return dp
}

// sortedDeployments returns copies of deps with namespaces defaulted,
// sorted by namespace and name, equal keys (which the manifest package
// rejects) by spec so that input order does not matter.
func sortedDeployments(deps []appsv1.Deployment) []*appsv1.Deployment {
	out := make([]*appsv1.Deployment, len(deps))
	for i := range deps {
		d := deps[i].DeepCopy()
		d.Namespace = namespaceOf(d.Namespace)
		out[i] = d
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return api.HashObject(a.Spec) < api.HashObject(b.Spec)
	})
	return out
}

// newRollout joins a Deployment of Git with its state: the revision of
// its template (templateHash) becomes the current one, taking over the
// pods it still has when it is an older revision (a rollback), unless
// spec.paused keeps the current revision as it is. secretVersions is
// secretVersions' result (see currentTemplate).
func newRollout(d *appsv1.Deployment, st DeploymentState, secretVersions map[string]int64) *rollout {
	r := &rollout{
		key:       d.Namespace + "/" + d.Name,
		d:         d,
		paused:    d.Spec.Paused,
		minReady:  time.Duration(max(d.Spec.MinReadySeconds, 0)) * time.Second,
		prev:      st.Progress,
		wasPaused: st.Paused,
	}
	r.strategy = resolveStrategy(d)
	seen := map[string]bool{}
	for i := range st.Revisions {
		sr := &st.Revisions[i]
		if sr.Hash == "" || seen[sr.Hash] {
			continue // written by hand or by a bug: never plan a pod twice
		}
		seen[sr.Hash] = true
		r.revs = append(r.revs, newRevision(sr.Hash, &sr.Template, sr.Pods))
	}
	if n := len(r.revs); n > 0 {
		r.prevTarget, r.progressAt = r.revs[n-1].hash, st.ProgressAt
	}
	if r.paused {
		if n := len(r.revs); n > 0 {
			r.target = r.revs[n-1]
		}
		return r
	}
	tmpl := currentTemplate(d, secretVersions)
	hash := templateHash(tmpl)
	var kept []int
	for i, v := range r.revs {
		if v.hash == hash {
			kept = v.pods
			r.revs = append(r.revs[:i:i], r.revs[i+1:]...)
			break
		}
	}
	r.target = newRevision(hash, tmpl, kept)
	r.target.private = true
	r.revs = append(r.revs, r.target)
	return r
}

func newRevision(hash string, tmpl *corev1.PodTemplateSpec, pods []int) *revision {
	v := &revision{hash: hash, tmpl: tmpl, specHash: api.HashObject(tmpl.Spec), used: map[string]bool{}, uids: map[int]string{}}
	seen := map[int]bool{}
	for _, i := range pods {
		if i >= 0 && !seen[i] {
			seen[i] = true
			v.pods = append(v.pods, i)
		}
	}
	sort.Ints(v.pods)
	return v
}

// name is the name of the revision's replica index i. Names depend only
// on lower indices (see replicaName), so removing a pod renames none.
func (v *revision) name(ns, deploy string, i int) string {
	for len(v.names) <= i {
		v.names = append(v.names, replicaName(ns, deploy, v.hash, len(v.names), v.used))
	}
	return v.names[i]
}

// ref identifies replica index i of v.
func (r *rollout) ref(v *revision, i int) podRef {
	name := r.name(v, i)
	uid, ok := v.uids[i]
	if !ok {
		uid = podUID(r.d.Namespace, name, v.specHash)
		v.uids[i] = uid
	}
	return podRef{ns: r.d.Namespace, name: name, uid: uid}
}

func (r *rollout) name(v *revision, i int) string { return v.name(r.d.Namespace, r.d.Name, i) }

// appendPods appends the pods of revision v.
func (r *rollout) appendPods(pods []api.Pod, v *revision) []api.Pod {
	for _, i := range v.pods {
		ref := r.ref(v, i)
		labels := copyMap(v.tmpl.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[api.LabelPodTemplateHash] = v.hash
		pods = append(pods, api.Pod{
			Namespace:   ref.ns,
			Name:        ref.name,
			UID:         ref.uid,
			Labels:      labels,
			Annotations: copyMap(v.tmpl.Annotations),
			Owner:       ownerKindDeployment + "/" + r.d.Name,
			SpecHash:    v.specHash,
			Spec:        *v.tmpl.Spec.DeepCopy(),
		})
	}
	return pods
}

// state is what to persist: the current revision and every older one
// that still has pods. A Deployment paused before its first plan has
// none.
func (r *rollout) state() (DeploymentState, bool) {
	if r.target == nil {
		return DeploymentState{}, false
	}
	st := DeploymentState{ProgressAt: r.progressAt, Progress: r.counts, Paused: r.paused}
	for _, v := range r.revs {
		if len(v.pods) == 0 && v != r.target {
			continue
		}
		tmpl := *v.tmpl
		if !v.private {
			tmpl = *v.tmpl.DeepCopy() // Input's: the output must not alias it
		}
		st.Revisions = append(st.Revisions, DeploymentRevision{Hash: v.hash, Template: tmpl, Pods: append([]int{}, v.pods...)})
	}
	return st, true
}

// finish drops old revisions left without pods and notes progress.
func (r *rollout) finish(env *podEnv, now time.Time) {
	live := r.revs[:0]
	for _, v := range r.revs {
		if len(v.pods) > 0 || v == r.target {
			live = append(live, v)
		}
	}
	r.revs = live
	if r.target == nil {
		return
	}
	for _, v := range r.revs {
		n := int32(len(v.pods))
		if v == r.target {
			r.counts.Updated += n
		} else {
			r.counts.Old += n
		}
		for _, i := range v.pods {
			h := r.healthOf(env, v, i)
			if h >= podReady {
				r.counts.Ready++
			}
			if h == podAvailable {
				r.counts.Available++
			}
		}
	}
	c, p := r.counts, r.prev
	progressed := r.target.hash != r.prevTarget || c.Updated > p.Updated || c.Old < p.Old ||
		c.Ready > p.Ready || c.Available > p.Available
	if progressed && !r.paused || r.wasPaused && !r.paused || r.progressAt.IsZero() {
		r.progressAt = now // while paused no deadline runs; resuming starts one
	}
}

// requeue is when this rollout needs another plan although no report may
// change: a Recreate rollout waits for old pods to stop, or a ready pod
// becomes available after minReadySeconds while the rollout is under way.
func (r *rollout) requeue(env *podEnv, now time.Time) time.Duration {
	if r.target == nil || r.paused {
		return 0
	}
	var wait time.Duration
	if r.waiting {
		wait = recreateRecheck
	}
	if r.minReady == 0 || r.settled() {
		return wait
	}
	for _, v := range r.revs {
		for _, i := range v.pods {
			ref := r.ref(v, i)
			h, since := env.health(ref, env.previous(ref), r.minReady)
			if h != podReady || since.IsZero() {
				continue
			}
			if d := since.Add(r.minReady).Sub(now); d > 0 && (wait == 0 || d < wait) {
				wait = d
			}
		}
	}
	return wait
}

// settled reports whether the plan has nothing left to do: only the
// current revision has pods, as many as spec.replicas.
func (r *rollout) settled() bool {
	return len(r.revs) == 1 && len(r.target.pods) == r.replicas
}

func (dp *deploymentPlan) requeueAfter(d time.Duration) {
	if d > 0 && (dp.requeue == 0 || d < dp.requeue) {
		dp.requeue = d
	}
}
