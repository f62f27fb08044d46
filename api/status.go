package api

import (
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// NodeStatus is what an agent reports after each sync and on every change
// of a pod's state. A node may report only its own pods; the server rejects
// reports naming another node.
type NodeStatus struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Node       string `json:"node"`
	// NodeIP is the node's address (as api.JoinRequest.Address), reported
	// again so a node whose address changed keeps its routes right. Zero:
	// keep the address known from the join.
	NodeIP netip.Addr `json:"nodeIP,omitzero"`
	// DesiredDigest is the digest of the NodeDesired document the agent has
	// applied, Commit its commit.
	DesiredDigest string      `json:"desiredDigest"`
	Commit        string      `json:"commit"`
	ReportedAt    time.Time   `json:"reportedAt"`
	Pods          []PodStatus `json:"pods"`
	// PulledAt is when the agent fetched the document named by
	// DesiredDigest. Zero from agents that do not say: the server then
	// takes the time of the first report naming the commit.
	PulledAt time.Time `json:"pulledAt,omitzero"`
	// Secrets are the Secrets this node read for its pods: versions and
	// key names, never values. Sorted by namespace, then name.
	Secrets []SecretStatus `json:"secrets,omitempty"`
}

// PodStatus is the observed state of one pod on a node. Status uses the
// Kubernetes type so `moor get pods -o json` reads like kubectl's output.
type PodStatus struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	// Commit is the commit whose desired state the pod was started from.
	Commit string           `json:"commit"`
	Status corev1.PodStatus `json:"status"`
}

// Key is "namespace/name".
func (p *PodStatus) Key() string { return p.Namespace + "/" + p.Name }
