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

// DeploymentView is a Deployment with the status moor computed. Its
// status has kubectl's columns: READY is readyReplicas/spec.replicas,
// UP-TO-DATE updatedReplicas (pods of the current revision its nodes
// report), AVAILABLE availableReplicas (pods of any revision ready for
// minReadySeconds); the Available and Progressing conditions are set as
// Kubernetes sets them.
type DeploymentView struct {
	Deployment appsv1.Deployment `json:"deployment"`
	Commit     string            `json:"commit"`
	// Rollout is where the Deployment's rollout stands, as `kubectl
	// rollout status` tells it.
	Rollout DeploymentRollout `json:"rollout"`
}

// Rollout states of a Deployment (DeploymentRollout.State).
const (
	// RolloutProgressing: pods of the current revision are still being
	// created or becoming available, or old pods are still running.
	RolloutProgressing = "Progressing"
	// RolloutComplete: every replica runs the current revision and is
	// available, and no old pod is left.
	RolloutComplete = "Complete"
	// RolloutPaused: spec.paused holds the rollout; nothing new is rolled
	// out until it is removed.
	RolloutPaused = "Paused"
	// RolloutFailed: the rollout made no progress for
	// spec.progressDeadlineSeconds (600 by default). It still goes on;
	// the state changes as soon as it progresses.
	RolloutFailed = "ProgressDeadlineExceeded"
)

// DeploymentRollout is a Deployment's rollout: enough for `moor rollout
// status deployment/NAME` to print Message until State is Complete (exit
// 0) or ProgressDeadlineExceeded (exit 1).
type DeploymentRollout struct {
	// State is one of the Rollout* constants.
	State string `json:"state"`
	// Message is the sentence kubectl prints, without a trailing newline,
	// e.g. `Waiting for deployment "web" rollout to finish: 1 out of 3 new
	// replicas have been updated...` or `deployment "web" successfully
	// rolled out`.
	Message string `json:"message"`
	// Waiting is the number of pods Message waits for: new replicas not
	// yet created or reported, old replicas pending termination, or
	// updated replicas not yet available; 0 when Complete.
	Waiting int32 `json:"waiting"`
	// Revision is the pod-template-hash of the revision being rolled out
	// to; empty when a Deployment paused from the start has none.
	Revision string `json:"revision,omitempty"`
	// Revisions are the revisions that still have pods, oldest first; the
	// last is the current one.
	Revisions []RevisionView `json:"revisions,omitempty"`
}

// RevisionView is one revision (pod template) of a Deployment and its
// pods, like one ReplicaSet in `kubectl get replicasets`.
type RevisionView struct {
	// Hash is the pod-template-hash in its pods' names and labels.
	Hash string `json:"hash"`
	// Images are the images of its containers, in order.
	Images []string `json:"images,omitempty"`
	// Replicas is how many pods of it are planned; Ready and Available
	// how many of those are ready and available.
	Replicas  int32 `json:"replicas"`
	Ready     int32 `json:"ready"`
	Available int32 `json:"available"`
	// Current is set on the revision being rolled out to.
	Current bool `json:"current,omitempty"`
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

// SecretView is a Secret of the deployed commit as the CLI shows it:
// where its values live and what each node that uses it read. It never
// holds values, not even those of a plain Secret.
type SecretView struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Type is the Secret type: "Opaque" or "kubernetes.io/dockerconfigjson".
	Type string `json:"type"`
	// Vault is where the values live: engine, path, pinned version and
	// key mapping. Nil for a plain Secret.
	Vault *VaultSource `json:"vault,omitempty"`
	// PlainKeys are the key names of a plain Secret (data and stringData,
	// accepted only by development servers), sorted.
	PlainKeys []string `json:"plainKeys,omitempty"`
	// Commit is the commit the Secret was read from.
	Commit string `json:"commit"`
	// Nodes are the nodes whose pods use the Secret, and nodes that still
	// report it, sorted by name.
	Nodes []SecretNodeView `json:"nodes,omitempty"`
}

// SecretNodeView is one node's view of a Secret: the pods there that use
// it and what the node last reported reading. The report fields are zero
// while the node has not reported the Secret.
type SecretNodeView struct {
	Node string `json:"node"`
	// Pods are the names of the pods planned on the node that use the
	// Secret, sorted; empty when the node reports a Secret its pods no
	// longer use.
	Pods []string `json:"pods,omitempty"`
	// Version, Keys, LeaseExpires, ReadAt and Error are as in
	// SecretStatus.
	Version      int64     `json:"version,omitempty"`
	Keys         []string  `json:"keys,omitempty"`
	LeaseExpires time.Time `json:"leaseExpires,omitzero"`
	ReadAt       time.Time `json:"readAt,omitzero"`
	Error        string    `json:"error,omitempty"`
}
