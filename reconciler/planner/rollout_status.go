package planner

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
)

// deploymentViews computes each Deployment's status from the reports, as
// Kubernetes computes it from its ReplicaSets:
//   - replicas: pods of the Deployment (any revision) nodes report,
//   - updatedReplicas: pods of the current revision reported with the
//     planned UID on the node they are placed on,
//   - readyReplicas: planned pods (any revision) that are ready,
//   - availableReplicas: those ready for at least minReadySeconds,
//   - unavailableReplicas: planned pods, or spec.replicas when more, that
//     are not available,
//
// the Available and Progressing conditions, and the rollout as `kubectl
// rollout status` tells it. observedGeneration is left as the object had
// it. Views are sorted by namespace, then name.
func deploymentViews(dp *deploymentPlan, placement map[string]string, env *podEnv, commit string) []api.DeploymentView {
	views := make([]api.DeploymentView, 0, len(dp.rollouts))
	for _, key := range sortedStateKeys(dp.rollouts) {
		r := dp.rollouts[key]
		d := r.d.DeepCopy()
		if d.APIVersion == "" && d.Kind == "" {
			d.APIVersion, d.Kind = "apps/v1", "Deployment"
		}
		st, revs := r.status(placement, env)
		st.ObservedGeneration = d.Status.ObservedGeneration
		progressing, rollout := r.progress(&st, env.now)
		rollout.Revisions = revs
		st.Conditions = []appsv1.DeploymentCondition{
			availableCondition(int(st.AvailableReplicas) >= r.replicas-r.unavailable, env.now),
			progressing,
		}
		d.Status = st
		views = append(views, api.DeploymentView{Deployment: *d, Commit: commit, Rollout: rollout})
	}
	return views
}

// status counts the Deployment's pods on the nodes they are placed on.
func (r *rollout) status(placement map[string]string, env *podEnv) (appsv1.DeploymentStatus, []api.RevisionView) {
	var st appsv1.DeploymentStatus
	st.Replicas = env.rep.replicas[r.key]
	var planned int32
	revs := make([]api.RevisionView, 0, len(r.revs))
	for _, v := range r.revs {
		rv := api.RevisionView{Hash: v.hash, Replicas: int32(len(v.pods)), Current: v == r.target}
		for _, c := range v.tmpl.Spec.Containers {
			rv.Images = append(rv.Images, c.Image)
		}
		for _, i := range v.pods {
			ref := r.ref(v, i)
			h, _ := env.health(ref, placement[ref.key()], r.minReady)
			if v == r.target && h >= podNotReady {
				st.UpdatedReplicas++
			}
			if h >= podReady {
				rv.Ready++
			}
			if h == podAvailable {
				rv.Available++
			}
		}
		st.ReadyReplicas += rv.Ready
		st.AvailableReplicas += rv.Available
		planned += rv.Replicas
		revs = append(revs, rv)
	}
	st.UnavailableReplicas = max(0, max(planned, int32(r.replicas))-st.AvailableReplicas)
	return st, revs
}

// progress is Kubernetes' Progressing condition and the rollout view.
func (r *rollout) progress(st *appsv1.DeploymentStatus, now time.Time) (appsv1.DeploymentCondition, api.DeploymentRollout) {
	name := r.d.Name
	want := int32(r.replicas)
	at := metav1.NewTime(r.progressAt)
	cond := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, LastUpdateTime: at, LastTransitionTime: at}
	ro := api.DeploymentRollout{}
	if r.target != nil {
		ro.Revision = r.target.hash
	}
	if r.paused {
		cond.Status, cond.Reason, cond.Message = corev1.ConditionUnknown, "DeploymentPaused", "Deployment is paused"
		ro.State = api.RolloutPaused
		ro.Message = fmt.Sprintf("deployment %q is paused: nothing new is rolled out until spec.paused is removed", name)
		return cond, ro
	}
	rs := fmt.Sprintf("ReplicaSet %q", name+"-"+r.target.hash)
	oldPending := max(st.Replicas-st.UpdatedReplicas, r.counts.Old)
	switch {
	case st.UpdatedReplicas < want:
		ro.Waiting = want - st.UpdatedReplicas
		ro.Message = fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...",
			name, st.UpdatedReplicas, want)
	case oldPending > 0:
		ro.Waiting = oldPending
		ro.Message = fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...", name, oldPending)
	case st.AvailableReplicas < st.UpdatedReplicas:
		ro.Waiting = st.UpdatedReplicas - st.AvailableReplicas
		ro.Message = fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...",
			name, st.AvailableReplicas, st.UpdatedReplicas)
	}
	complete := ro.Message == "" && r.settled() && st.Replicas == want && st.AvailableReplicas == want
	switch {
	case complete:
		cond.Status, cond.Reason, cond.Message = corev1.ConditionTrue, "NewReplicaSetAvailable", rs+" has successfully progressed."
		ro.State, ro.Message, ro.Waiting = api.RolloutComplete, fmt.Sprintf("deployment %q successfully rolled out", name), 0
	case r.deadline > 0 && now.Sub(r.progressAt) > r.deadline:
		cond.Status, cond.Reason, cond.Message = corev1.ConditionFalse, "ProgressDeadlineExceeded", rs+" has timed out progressing."
		ro.State, ro.Message = api.RolloutFailed, fmt.Sprintf("deployment %q exceeded its progress deadline", name)
	default:
		cond.Status, cond.Reason, cond.Message = corev1.ConditionTrue, "ReplicaSetUpdated", rs+" is progressing."
		ro.State = api.RolloutProgressing
		if ro.Message == "" {
			// Planned pods that no node reports yet (say, old ones
			// waiting for a node) keep the rollout going.
			ro.Waiting = max(1, int32(r.total())-st.Replicas)
			ro.Message = fmt.Sprintf("Waiting for deployment %q rollout to finish: %d pods are not reported by their nodes yet...", name, ro.Waiting)
		}
	}
	return cond, ro
}

// availableCondition is Kubernetes' Available condition: true while at
// least spec.replicas-maxUnavailable pods are available. moor keeps no
// condition history, so both times are now.
func availableCondition(ok bool, now time.Time) appsv1.DeploymentCondition {
	c := appsv1.DeploymentCondition{
		Type:               appsv1.DeploymentAvailable,
		Status:             corev1.ConditionTrue,
		Reason:             "MinimumReplicasAvailable",
		Message:            "Deployment has minimum availability.",
		LastUpdateTime:     metav1.NewTime(now),
		LastTransitionTime: metav1.NewTime(now),
	}
	if !ok {
		c.Status, c.Reason, c.Message = corev1.ConditionFalse, "MinimumReplicasUnavailable", "Deployment does not have minimum availability."
	}
	return c
}
