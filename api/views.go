package api

import (
	"net/netip"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// PodView is a pod as the CLI shows it: the desired pod joined with the
// status its node last reported. Pod is a Kubernetes Pod so -o json/yaml is
// what kubectl users expect; spec.nodeName names the node.
type PodView struct {
	Pod corev1.Pod `json:"pod"`
	// Commit is the commit the pod's node reports it running from.
	Commit string `json:"commit"`
}

// DeploymentView is a Deployment with the status moor computed.
type DeploymentView struct {
	Deployment appsv1.Deployment `json:"deployment"`
	Commit     string            `json:"commit"`
}

// NodeView is a registered node.
type NodeView struct {
	Name     string            `json:"name"`
	Labels   map[string]string `json:"labels,omitempty"`
	JoinedAt time.Time         `json:"joinedAt"`
	LastSeen time.Time         `json:"lastSeen"`
	// Commit is the commit of the desired state the node last applied.
	Commit string `json:"commit"`
	// Pods is the number of pods planned onto the node.
	Pods  int  `json:"pods"`
	Ready bool `json:"ready"`
	// Address is the node's IP address, zero when unknown.
	Address netip.Addr `json:"address,omitzero"`
	// PodCIDR is the node's share of the cluster CIDR, zero when none.
	PodCIDR netip.Prefix `json:"podCIDR,omitzero"`
}

// Service annotations and conditions moor sets on the Services it shows.
const (
	// AnnotationLoadBalancer is set to LoadBalancerServedAsNodePort on
	// type: LoadBalancer Services.
	AnnotationLoadBalancer       = "moor.dev/load-balancer"
	LoadBalancerServedAsNodePort = "served-as-NodePort"
	// ConditionLoadBalancer is a False condition on LoadBalancer Services
	// saying that no load balancer exists and the NodePorts serve instead.
	ConditionLoadBalancer = "LoadBalancerProvisioned"
)

// ServiceView is a Service as the CLI shows it: spec.clusterIP(s) and
// every port's nodePort as allocated, spec defaults filled in, and, for
// type: LoadBalancer, an empty status.loadBalancer with a condition (and
// annotation) saying it is served as a NodePort, as minikube without a
// tunnel does.
type ServiceView struct {
	Service corev1.Service `json:"service"`
	// Commit is the commit the Service was planned from.
	Commit string `json:"commit"`
	// Endpoints are the Service's current endpoints (see api.Service).
	Endpoints []Endpoint `json:"endpoints,omitempty"`
}

// Commit states.
const (
	CommitAccepted = "Accepted" // planned and published
	CommitRejected = "Rejected" // invalid: errors say why; the last good commit stays deployed
)

// CommitView is a commit the reconciler has seen.
type CommitView struct {
	SHA      string    `json:"sha"`
	Author   string    `json:"author,omitempty"`
	Message  string    `json:"message,omitempty"`
	State    string    `json:"state"`
	Errors   []string  `json:"errors,omitempty"`
	SeenAt   time.Time `json:"seenAt"`
	Deployed bool      `json:"deployed"` // the commit currently deployed

	// When the commit went through each step of its last deployment; zero
	// for steps it has not reached. WebhookAt is the earliest webhook of
	// the batch that led to the fetch, zero when polling or `moor sync`
	// found the commit. A rejected commit has RejectedAt instead of
	// PlannedAt and PublishedAt. RunningAt is when the last node with a
	// document at this commit reported all its pods running and ready.
	WebhookAt   time.Time `json:"webhookAt,omitzero"`
	FetchedAt   time.Time `json:"fetchedAt,omitzero"`
	PlannedAt   time.Time `json:"plannedAt,omitzero"`
	RejectedAt  time.Time `json:"rejectedAt,omitzero"`
	PublishedAt time.Time `json:"publishedAt,omitzero"`
	RunningAt   time.Time `json:"runningAt,omitzero"`
	// Converged of Total nodes with a document at this commit run all of
	// their pods for it.
	Converged int `json:"converged"`
	Total     int `json:"total"`
	// PushToRunning is RunningAt minus WebhookAt (FetchedAt when there was
	// no webhook), in nanoseconds; zero until every node converged.
	PushToRunning time.Duration `json:"pushToRunning,omitempty"`
	// Nodes are the per-node timings, sorted by node.
	Nodes []CommitNodeView `json:"nodes,omitempty"`
}

// CommitNodeView is one node's progress towards running a commit.
type CommitNodeView struct {
	Node        string    `json:"node"`
	PublishedAt time.Time `json:"publishedAt,omitzero"` // its document at the commit was published
	PulledAt    time.Time `json:"pulledAt,omitzero"`    // it reported (or said it) pulled that document
	RunningAt   time.Time `json:"runningAt,omitzero"`   // all its pods for the commit ran and were ready
}

// SyncResponse answers PathSync.
type SyncResponse struct {
	Commit  string   `json:"commit"`
	State   string   `json:"state"`
	Changed bool     `json:"changed"`
	Errors  []string `json:"errors,omitempty"`
}
