package planner

import (
	"math"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// recreateRecheck is how soon a Recreate rollout that waits for old pods
// to stop is planned again when no report arrives meanwhile.
const recreateRecheck = 2 * time.Second

// defaultProgressDeadline is spec.progressDeadlineSeconds when unset, as
// in Kubernetes.
const defaultProgressDeadline = 600 * time.Second

// strategy is a Deployment's spec.strategy resolved against its replicas.
type strategy struct {
	replicas int
	recreate bool
	// surge and unavailable are maxSurge and maxUnavailable as pod counts
	// (Kubernetes' fenceposts: surge rounded up, unavailable down, and
	// unavailable 1 when both would be 0). Recreate has neither.
	surge, unavailable int
	// deadline is spec.progressDeadlineSeconds; 0 means none.
	deadline time.Duration
}

// resolveStrategy reads spec.strategy, spec.replicas and
// spec.progressDeadlineSeconds. Values the manifest package rejects are
// taken as their defaults, so that a plan never fails.
func resolveStrategy(d *appsv1.Deployment) strategy {
	s := strategy{replicas: replicas(d), deadline: defaultProgressDeadline}
	if p := d.Spec.ProgressDeadlineSeconds; p != nil && *p > 0 {
		s.deadline = time.Duration(*p) * time.Second
		if *p == math.MaxInt32 {
			s.deadline = 0 // Kubernetes' "no deadline"
		}
	}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		s.recreate = true
		return s
	}
	quarter := intstr.FromString("25%")
	surge, unavailable := &quarter, &quarter
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		if ru.MaxSurge != nil {
			surge = ru.MaxSurge
		}
		if ru.MaxUnavailable != nil {
			unavailable = ru.MaxUnavailable
		}
	}
	s.surge = scaled(surge, s.replicas, true)
	s.unavailable = min(scaled(unavailable, s.replicas, false), s.replicas)
	if s.surge == 0 && s.unavailable == 0 {
		s.unavailable = 1
	}
	return s
}

// scaled is v (an integer or a percentage of replicas) as a pod count.
func scaled(v *intstr.IntOrString, replicas int, roundUp bool) int {
	n, err := intstr.GetScaledValueFromIntOrPercent(v, replicas, roundUp)
	if err != nil {
		quarter := intstr.FromString("25%")
		n, _ = intstr.GetScaledValueFromIntOrPercent(&quarter, replicas, roundUp)
	}
	return max(n, 0)
}

// step takes the next step of the rollout.
func (r *rollout) step(env *podEnv) {
	switch {
	case r.target == nil:
	case r.paused:
		r.scaleWhilePaused(env)
	case r.recreate:
		r.recreateStep(env)
	default:
		r.rollingStep(env)
	}
}

// rollingStep is Kubernetes' RollingUpdate, repeated until it changes
// nothing: the current revision grows while all pods stay within
// replicas+maxSurge, old revisions shrink while the available pods stay
// at least replicas-maxUnavailable (unhealthy old pods go first, so they
// cannot block the rollout). New pods are not available yet, so a plan
// creates them and removes old ones as far as the pods already available
// allow; the next plans follow as nodes report new pods available.
func (r *rollout) rollingStep(env *podEnv) {
	t := r.target
	for changed := true; changed; {
		changed = false
		switch total := r.total(); {
		case len(t.pods) > r.replicas:
			changed = r.remove(env, t, len(t.pods)-r.replicas, nil) > 0
		case total < r.replicas+r.surge && len(t.pods) < r.replicas:
			changed = r.add(t, min(r.replicas+r.surge-total, r.replicas-len(t.pods))) > 0
		}
		if r.scaleDownOld(env) > 0 {
			changed = true
		}
	}
	r.trim(env, r.replicas+r.surge)
}

// scaleDownOld removes old pods as far as availability allows and
// returns how many it removed.
func (r *rollout) scaleDownOld(env *podEnv) int {
	old := r.revs[:len(r.revs)-1]
	oldPods := 0
	for _, v := range old {
		oldPods += len(v.pods)
	}
	if oldPods == 0 {
		return 0
	}
	minAvailable := r.replicas - r.unavailable
	t := r.target
	newUnavailable := len(t.pods) - r.availableIn(env, t)
	maxDown := r.total() - minAvailable - newUnavailable
	if maxDown <= 0 {
		return 0
	}
	removed := 0
	for _, v := range old {
		removed += r.remove(env, v, maxDown-removed, notAvailable)
	}
	budget := r.available(env) - minAvailable
	for _, v := range old {
		if budget <= 0 {
			break
		}
		k := r.remove(env, v, min(budget, len(v.pods)), nil)
		removed, budget = removed+k, budget-k
	}
	return removed
}

// recreateStep is Kubernetes' Recreate: remove every old pod, wait until
// none may still run, then create the new ones.
func (r *rollout) recreateStep(env *podEnv) {
	t := r.target
	old := 0
	for _, v := range r.revs[:len(r.revs)-1] {
		old += len(v.pods)
		v.pods = nil
	}
	if n := len(t.pods) - r.replicas; n > 0 {
		r.remove(env, t, n, nil)
	}
	if old > 0 || env.mayRun(r.d.Namespace, r.d.Name, t.hash) {
		r.waiting = true
		return
	}
	if n := r.replicas - len(t.pods); n > 0 {
		r.add(t, n)
	}
}

// scaleWhilePaused rolls nothing out but follows spec.replicas: missing
// pods are added to the current revision, surplus pods removed as a scale
// down during a rollout removes them.
func (r *rollout) scaleWhilePaused(env *podEnv) {
	if total := r.total(); total < r.replicas {
		r.add(r.target, r.replicas-total)
	}
	r.trim(env, r.replicas+r.surge)
}

// trim removes pods until at most limit are left, after a scale down:
// first those not available, then available ones, each time from the
// oldest revision first and the least healthy pod first. As limit is at
// least replicas-maxUnavailable, availability stays within bounds.
func (r *rollout) trim(env *podEnv, limit int) {
	excess := r.total() - limit
	for _, keep := range []func(podHealth) bool{notAvailable, nil} {
		for _, v := range r.revs {
			if excess <= 0 {
				return
			}
			excess -= r.remove(env, v, excess, keep)
		}
	}
}

func notAvailable(h podHealth) bool { return h != podAvailable }

// total is the number of pods of all revisions.
func (r *rollout) total() int {
	n := 0
	for _, v := range r.revs {
		n += len(v.pods)
	}
	return n
}

// available is the number of available pods of all revisions.
func (r *rollout) available(env *podEnv) int {
	n := 0
	for _, v := range r.revs {
		n += r.availableIn(env, v)
	}
	return n
}

func (r *rollout) availableIn(env *podEnv, v *revision) int {
	n := 0
	for _, i := range v.pods {
		if r.healthOf(env, v, i) == podAvailable {
			n++
		}
	}
	return n
}

// healthOf is the health of replica index i of v on the node the last
// plan placed it on.
func (r *rollout) healthOf(env *podEnv, v *revision, i int) podHealth {
	ref := r.ref(v, i)
	h, _ := env.health(ref, env.previous(ref), r.minReady)
	return h
}

// add adds n pods to v, at the lowest free replica indices, and returns
// how many it added.
func (r *rollout) add(v *revision, n int) int {
	have := make(map[int]bool, len(v.pods))
	for _, i := range v.pods {
		have[i] = true
	}
	added := 0
	for i := 0; added < n; i++ {
		if !have[i] {
			v.pods = append(v.pods, i)
			added++
		}
	}
	sort.Ints(v.pods)
	return added
}

// remove removes up to n pods of v whose health match accepts (nil: any),
// the least healthy first and, among equals, the highest index. It
// returns how many it removed.
func (r *rollout) remove(env *podEnv, v *revision, n int, match func(podHealth) bool) int {
	if n <= 0 {
		return 0
	}
	type cand struct {
		index int
		h     podHealth
	}
	var cands []cand
	for _, i := range v.pods {
		if h := r.healthOf(env, v, i); match == nil || match(h) {
			cands = append(cands, cand{i, h})
		}
	}
	sort.Slice(cands, func(a, b int) bool {
		if cands[a].h != cands[b].h {
			return cands[a].h < cands[b].h
		}
		return cands[a].index > cands[b].index
	})
	if len(cands) > n {
		cands = cands[:n]
	}
	gone := make(map[int]bool, len(cands))
	for _, c := range cands {
		gone[c.index] = true
	}
	kept := v.pods[:0:0]
	for _, i := range v.pods {
		if !gone[i] {
			kept = append(kept, i)
		}
	}
	v.pods = kept
	return len(cands)
}
