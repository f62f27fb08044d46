package planner

import (
	"net/netip"
	"sort"
	"time"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
)

// Node is a joined node as the planner sees it. Every node implicitly
// carries the label kubernetes.io/hostname=<Name> unless it sets that
// label itself.
type Node struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	// Ready is false when the node missed its heartbeats. New pods are not
	// scheduled onto it; pods already placed there stay.
	Ready bool `json:"ready"`
	// Address is the node's IP address; zero when unknown. Only nodes with
	// an address are routed to by the others.
	Address netip.Addr `json:"address,omitzero"`
}

// Input is everything Plan needs. Plan does not modify it.
type Input struct {
	// Commit is the Git commit Objects were read from. It goes into every
	// NodeDesired.Commit and never into a pod's identity, so an unrelated
	// commit restarts nothing.
	Commit string
	// Objects are the validated objects of Commit; nil means none.
	Objects *manifest.Objects
	// Nodes are the joined nodes, in any order. Names must be unique; of
	// duplicates one is used, chosen independently of input order.
	Nodes []Node
	// Previous maps a pod key ("namespace/name") to the node the last plan
	// placed it on (the last Output.Placement).
	Previous map[string]string
	// Status maps a node name to the pods that node last reported. A
	// report counts only for the pod with the same UID on the node the pod
	// is placed on.
	Status map[string][]api.PodStatus
	// Network is the cluster network; zero fields take their defaults.
	Network NetworkConfig
	// Allocations are the last Output.Allocations.
	Allocations Allocations
	// Now is the caller's clock. It feeds Deployment availability
	// (minReadySeconds), condition times, Job deadlines and retry backoff,
	// and CronJob schedules; it never appears in NodeDesired documents,
	// but a Job's pods appear there only once they are due.
	Now time.Time
	// JobStates are the last Output.JobStates, keyed "namespace/name":
	// every Job of Git and every Job a CronJob created, with its status
	// and pods. Without them every Job starts from scratch.
	JobStates map[string]JobState
	// CronJobStates are the last Output.CronJobStates, keyed
	// "namespace/name".
	CronJobStates map[string]CronJobState

	// Deployment rollouts (rollout*.go).
	//
	// DeploymentStates are the last Output.DeploymentStates, keyed
	// "namespace/name": each Deployment's revisions that still have pods.
	// Without them every Deployment runs only its current template, all
	// of its pods at once.
	DeploymentStates map[string]DeploymentState

	// Secrets (secrets.go).
	//
	// SecretVersions maps a Secret's "namespace/name" to the newest
	// version any node reported (api.SecretStatus.Version). Pods that read
	// an unpinned KV Secret through env carry this version
	// (api.AnnotationSecretVersions), so a higher one replaces them.
	SecretVersions map[string]int64
}

// Output is the plan.
type Output struct {
	// Nodes has one entry for every input node, even one with no pods; its
	// pods are sorted by namespace, then name. Pod specs are as written:
	// a Deployment pod's spec.nodeName stays empty (the document's Node
	// says where it runs), so moving a pod does not change its SpecHash.
	Nodes map[string]*api.NodeDesired
	// Placement maps each scheduled pod's key to its node. Persist it and
	// pass it back as the next Input.Previous.
	Placement map[string]string
	// Pending are the pods that could not be scheduled, sorted by key.
	Pending []Pending
	// Pods is every planned pod, scheduled or pending, joined with the
	// status its node reported, sorted by namespace, then name.
	Pods []api.PodView
	// Deployments carry a status computed from the reported pod status,
	// sorted by namespace, then name.
	Deployments []api.DeploymentView
	// Services are the Services as allocated, with their endpoints,
	// sorted by namespace, then name.
	Services []api.ServiceView
	// Allocations are every node's pod CIDR and every Service's cluster IP
	// and node ports: the previous ones where still valid, new ones for new
	// nodes and Services, without those of departed ones. Persist them and
	// pass them back as the next Input.Allocations.
	Allocations Allocations
	// Warnings are allocation problems (an exhausted range) and Jobs that
	// cannot run as written, sorted.
	Warnings []string
	// Jobs are the Jobs of Git and of CronJobs with their status, sorted
	// by namespace, then name.
	Jobs []api.JobView
	// CronJobs are the CronJobs with their status, sorted by namespace,
	// then name.
	CronJobs []api.CronJobView
	// JobStates and CronJobStates are what the batch controllers must
	// remember: persist both before publishing the documents of this plan
	// and pass them back as the next Input.JobStates and
	// Input.CronJobStates. Jobs and CronJobs missing here are gone (removed
	// from Git, deleted by their CronJob's history limit, or expired
	// CronJob Jobs).
	JobStates     map[string]JobState
	CronJobStates map[string]CronJobState
	// Events are what CronJobs did or could not do in this plan, in order.
	Events []CronJobEvent

	// Deployment rollouts (rollout*.go).
	//
	// DeploymentStates are every Deployment's revisions after this plan's
	// step of its rollout: persist them before publishing the documents
	// of this plan and pass them back as the next Input.DeploymentStates.
	// Deployments missing here are gone from Git (their pods with them)
	// or paused before their first plan.
	DeploymentStates map[string]DeploymentState

	// Secrets (secrets.go).
	//
	// SecretVersions are the versions this plan gave pods that read
	// Secrets through env, keyed "namespace/name": one entry per
	// versioned Secret of the commit, 0 while no node has read it. A
	// node reporting a higher version calls for a new plan.
	SecretVersions map[string]int64

	// RequeueAfter, when non-zero, is when Jobs, CronJobs or rollouts
	// need another plan even if nothing else changes: a retry backoff
	// ends, a deadline or ttlSecondsAfterFinished passes, the next
	// schedule slot comes, a pod of a rollout has been ready for
	// minReadySeconds, a Recreate rollout checks again for old pods.
	RequeueAfter time.Duration
}

// Pending is a pod that could not be scheduled and why, in the words
// kubectl users know ("0/3 nodes are available: ...").
type Pending struct {
	Pod    api.Pod
	Reason string
}

// Plan computes the desired state of every node. It is pure and
// deterministic: the same input, with slices and maps in any order, gives
// an identical Output.
func Plan(in Input) *Output {
	objs := in.Objects
	if objs == nil {
		objs = &manifest.Objects{}
	}
	jobs := planBatch(&in, objs)
	sched := newScheduler(in.Nodes)
	reports := indexStatus(in.Status)
	env := newPodEnv(&in, sched.byName, reports)
	versions := in.secretVersions() // secrets.go
	deps := planRollouts(&in, objs, env, versions)
	cands, collisions := expandWith(objs, append(deps.pods, jobs.pods...))
	secretVersionPods(cands, versions) // secrets.go: bare Pods and Job pods
	placement, pending := sched.scheduleWith(cands, in.Previous, jobs.finished)
	pending = append(pending, collisions...)
	sort.Slice(pending, func(i, j int) bool { return candidateLess(&pending[i].Pod, &pending[j].Pod) })

	out := &Output{
		Nodes:     make(map[string]*api.NodeDesired, len(sched.nodes)),
		Placement: placement,
		Pending:   pending,
	}
	cfg := in.Network.withDefaults()
	svcs := sortedServices(objs.Services)
	var warnings [3][]string
	out.Allocations.PodCIDRs, warnings[0] = allocatePodCIDRs(cfg, sched.nodes, in.Allocations.PodCIDRs)
	out.Allocations.ClusterIPs, warnings[1] = allocateClusterIPs(cfg, svcs, in.Allocations.ClusterIPs)
	out.Allocations.NodePorts, warnings[2] = allocateNodePorts(cfg, svcs, in.Allocations.NodePorts)
	out.Warnings = append(append(append(warnings[0], warnings[1]...), warnings[2]...), jobs.warnings...)
	sort.Strings(out.Warnings)
	table := serviceTable(svcs, &out.Allocations, cands, placement, reports)
	nets := networks(cfg, sched.nodes, out.Allocations.PodCIDRs)
	for _, n := range sched.nodes {
		out.Nodes[n.Name] = &api.NodeDesired{
			APIVersion: api.Version,
			Kind:       api.KindNodeDesired,
			Node:       n.Name,
			Commit:     in.Commit,
			Pods:       []api.Pod{},
			Network:    nets[n.Name],
			Services:   table,
		}
	}
	for _, c := range cands {
		if node, ok := placement[c.Key()]; ok {
			d := out.Nodes[node]
			d.Pods = append(d.Pods, c)
		}
	}
	for _, d := range out.Nodes {
		api.SortPods(d.Pods)
	}
	// Secrets (secrets.go): each node's document lists the Secrets its
	// pods use; Output.SecretVersions records the versions used.
	planSecrets(versions, objs, out)

	out.Pods = podViews(cands, placement, pending, reports)
	fillHostIPs(out.Pods, placement, sched.byName)
	out.Deployments = deploymentViews(deps, placement, env, in.Commit)
	out.Services = serviceViews(svcs, table, in.Commit, in.Now)
	out.Jobs, out.CronJobs = jobs.views, jobs.cronViews
	out.JobStates, out.CronJobStates = jobs.jobStates, jobs.cronStates
	out.Events, out.RequeueAfter = jobs.events, jobs.requeue
	out.DeploymentStates = deps.states
	if r := deps.requeue; r > 0 && (out.RequeueAfter == 0 || r < out.RequeueAfter) {
		out.RequeueAfter = r
	}
	return out
}
