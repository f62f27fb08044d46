package planner

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

// podRef is one incarnation of a pod.
type podRef struct{ ns, name, uid string }

func (p podRef) key() string { return p.ns + "/" + p.name }

// podHealth is how far a Deployment pod got, worst first. Rollouts remove
// the least healthy pods first and count the available ones.
type podHealth int

const (
	podUnplaced   podHealth = iota // not placed, or its node is gone
	podUnreported                  // placed; its node has not reported this very pod
	podNotReady                    // reported not ready, or its node is not ready
	podReady                       // ready, not yet for minReadySeconds
	podAvailable                   // ready for at least minReadySeconds
)

// podEnv is what a plan knows about the pods that run: nodes, the last
// placement and the reports.
type podEnv struct {
	nodes  map[string]*Node
	prev   map[string]string
	rep    *reports
	status map[string][]api.PodStatus
	now    time.Time
	// live maps "namespace/deployment" to the hashes of its pods that may
	// still run; built on first use (see mayRun).
	live map[string]map[string]bool
}

func newPodEnv(in *Input, nodes map[string]*Node, rep *reports) *podEnv {
	return &podEnv{nodes: nodes, prev: in.Previous, rep: rep, status: in.Status, now: in.Now}
}

// previous is the node the last plan placed p on, or "".
func (e *podEnv) previous(p podRef) string { return e.prev[p.key()] }

// health tells how p is doing on node, and since when it is ready. A pod
// counts as ready only while its node is ready, as Kubernetes marks the
// pods of an unreachable node not ready.
func (e *podEnv) health(p podRef, node string, minReady time.Duration) (podHealth, time.Time) {
	n := e.nodes[node]
	if node == "" || n == nil {
		return podUnplaced, time.Time{}
	}
	r := e.rep.byKey[reportKey{node, p.ns, p.name, p.uid}]
	if r == nil {
		return podUnreported, time.Time{}
	}
	since, ok := readySince(&r.Status)
	if !ok || !n.Ready {
		return podNotReady, time.Time{}
	}
	if minReady == 0 || (!since.IsZero() && !since.Add(minReady).After(e.now)) {
		return podAvailable, since
	}
	return podReady, since
}

// mayRun reports whether a pod of Deployment ns/deploy with another hash
// than hash may still run: the last plan placed one on a node that is
// still joined, or such a node reports one in a phase other than
// Succeeded or Failed. Nodes report only the pods of the document they
// applied, so a pod is gone once its node applied a document without it.
// A node that is not ready keeps its pods, as a Kubernetes node keeps them
// until it is deleted.
func (e *podEnv) mayRun(ns, deploy, hash string) bool {
	if e.live == nil {
		e.live = map[string]map[string]bool{}
		note := func(ns, pod string) {
			if d, h, ok := splitReplicaName(pod); ok {
				k := ns + "/" + d
				if e.live[k] == nil {
					e.live[k] = map[string]bool{}
				}
				e.live[k][h] = true
			}
		}
		for key, node := range e.prev {
			if e.nodes[node] == nil {
				continue
			}
			for i := 0; i < len(key); i++ {
				if key[i] == '/' {
					note(key[:i], key[i+1:])
					break
				}
			}
		}
		for node, pods := range e.status {
			if e.nodes[node] == nil {
				continue
			}
			for i := range pods {
				if ph := pods[i].Status.Phase; ph != corev1.PodSucceeded && ph != corev1.PodFailed {
					note(pods[i].Namespace, pods[i].Name)
				}
			}
		}
	}
	for h := range e.live[ns+"/"+deploy] {
		if h != hash {
			return true
		}
	}
	return false
}
