package planner

import (
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/moor-dev/moor/api"
)

// reportKey finds the report of one pod incarnation on one node.
type reportKey struct{ node, ns, name, uid string }

// reports indexes what nodes reported.
type reports struct {
	byKey map[reportKey]*api.PodStatus
	// replicas counts reported pods per "namespace/deployment", by name.
	replicas map[string]int32
}

func indexStatus(status map[string][]api.PodStatus) *reports {
	r := &reports{byKey: map[reportKey]*api.PodStatus{}, replicas: map[string]int32{}}
	for node, pods := range status {
		for i := range pods {
			p := &pods[i]
			r.byKey[reportKey{node, p.Namespace, p.Name, p.UID}] = p
			if d, ok := replicaOf(p.Name); ok {
				r.replicas[p.Namespace+"/"+d]++
			}
		}
	}
	return r
}

// of returns the report of exactly this pod (same UID) from node, or nil.
func (r *reports) of(p *api.Pod, node string) *api.PodStatus {
	if node == "" {
		return nil
	}
	return r.byKey[reportKey{node, p.Namespace, p.Name, p.UID}]
}

// podViews joins every planned pod with its node's report. Pending pods are
// shown unscheduled with kubectl's PodScheduled=False condition. Both
// inputs are sorted, so a merge keeps the views sorted.
func podViews(pods []api.Pod, placement map[string]string, pending []Pending, rep *reports) []api.PodView {
	views := make([]api.PodView, 0, len(pods)+len(pending))
	i, j := 0, 0
	for i < len(pods) || j < len(pending) {
		if i < len(pods) && (j == len(pending) || !candidateLess(&pending[j].Pod, &pods[i])) {
			p := &pods[i]
			i++
			if node, ok := placement[p.Key()]; ok { // else it is in pending
				views = append(views, scheduledView(p, node, rep.of(p, node)))
			}
			continue
		}
		views = append(views, pendingView(&pending[j]))
		j++
	}
	return views
}

// scheduledView shows a placed pod with its report, or as Pending (but
// scheduled) until its node reports this very pod.
func scheduledView(p *api.Pod, node string, r *api.PodStatus) api.PodView {
	v := newPodView(p, node)
	if r == nil {
		v.Pod.Status = corev1.PodStatus{
			Phase:      corev1.PodPending,
			Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}},
		}
		return v
	}
	v.Pod.Status = *r.Status.DeepCopy()
	v.Commit = r.Commit
	if r.Status.StartTime != nil {
		v.Pod.CreationTimestamp = *r.Status.StartTime
	}
	return v
}

func pendingView(p *Pending) api.PodView {
	v := newPodView(&p.Pod, p.Pod.Spec.NodeName)
	v.Pod.Status = corev1.PodStatus{
		Phase: corev1.PodPending,
		Conditions: []corev1.PodCondition{{
			Type:    corev1.PodScheduled,
			Status:  corev1.ConditionFalse,
			Reason:  corev1.PodReasonUnschedulable,
			Message: p.Reason,
		}},
	}
	return v
}

func newPodView(p *api.Pod, node string) api.PodView {
	spec := *p.Spec.DeepCopy()
	spec.NodeName = node
	pod := corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        p.Name,
			Namespace:   p.Namespace,
			UID:         types.UID(p.UID),
			Labels:      copyMap(p.Labels),
			Annotations: copyMap(p.Annotations),
		},
		Spec: spec,
	}
	if kind, name, ok := strings.Cut(p.Owner, "/"); ok {
		controller := true
		switch kind {
		case ownerKindDeployment:
			pod.OwnerReferences = []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: kind, Name: name, Controller: &controller,
			}}
		case ownerKindJob:
			pod.OwnerReferences = []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: kind, Name: name, Controller: &controller,
				UID: types.UID(p.Labels[batchv1.ControllerUidLabel]),
			}}
		}
	}
	return api.PodView{Pod: pod}
}

// replicaOf returns the Deployment a pod name "<deploy>-<template-hash>-<suffix>"
// belongs to, so that pods of an old template still shutting down count too.
func replicaOf(pod string) (string, bool) {
	d, _, ok := splitReplicaName(pod)
	return d, ok
}

// splitReplicaName splits a pod name "<deploy>-<template-hash>-<suffix>".
func splitReplicaName(pod string) (deploy, hash string, ok bool) {
	const tail = 1 + 10 + 1 + suffixLen // "-<hash>-<suffix>"
	if len(pod) <= tail {
		return "", "", false
	}
	deploy, rest := pod[:len(pod)-tail], pod[len(pod)-tail:]
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		var ok bool
		switch {
		case i == 0 || i == 11:
			ok = c == '-'
		case i < 11:
			ok = '0' <= c && c <= '9' || 'a' <= c && c <= 'f'
		default:
			ok = strings.IndexByte(suffixAlphabet, c) >= 0
		}
		if !ok {
			return "", "", false
		}
	}
	return deploy, rest[1:11], true
}

// readySince reports whether a pod is ready and since when (zero if
// unknown). The PodReady condition decides when present; otherwise the pod
// is ready when it has containers and all are ready, since the latest
// container start.
func readySince(st *corev1.PodStatus) (time.Time, bool) {
	for _, c := range st.Conditions {
		if c.Type != corev1.PodReady {
			continue
		}
		if c.Status != corev1.ConditionTrue {
			return time.Time{}, false
		}
		if !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time, true
		}
		break // agents that send no transition time: the containers' start
	}
	if len(st.ContainerStatuses) == 0 {
		return time.Time{}, false
	}
	var since time.Time
	for _, c := range st.ContainerStatuses {
		if !c.Ready {
			return time.Time{}, false
		}
		if r := c.State.Running; r != nil && r.StartedAt.After(since) {
			since = r.StartedAt.Time
		}
	}
	return since, true
}

// fillHostIPs sets status.hostIP of scheduled pods whose node did not
// report one to the node's address, as the kubelet does once a pod is
// bound.
func fillHostIPs(views []api.PodView, placement map[string]string, nodes map[string]*Node) {
	for i := range views {
		p := &views[i].Pod
		node, ok := placement[p.Namespace+"/"+p.Name]
		if !ok || p.Status.HostIP != "" || nodes[node] == nil || !nodes[node].Address.IsValid() {
			continue
		}
		ip := nodes[node].Address.String()
		p.Status.HostIP, p.Status.HostIPs = ip, []corev1.HostIP{{IP: ip}}
	}
}
