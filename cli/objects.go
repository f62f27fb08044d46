package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/moor-dev/moor/api"
)

// Kind of the objects -o json/yaml prints for commits.
const kindCommitObject = "Commit"

// Annotations moor adds to the Node objects it prints.
const (
	annotationNodeCommit = api.AnnotationCommit
	annotationNodePods   = "moor.dev/pods"
)

// CommitObject is a commit as -o json/yaml prints it: a moor.dev/v1 Commit.
type CommitObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              CommitSpec   `json:"spec"`
	Status            CommitStatus `json:"status"`
}

// CommitSpec is what the commit says.
type CommitSpec struct {
	Author  string `json:"author,omitempty"`
	Message string `json:"message,omitempty"`
}

// CommitStatus is what the reconciler made of the commit, and when.
type CommitStatus struct {
	State    string   `json:"state"`
	Deployed bool     `json:"deployed"`
	Errors   []string `json:"errors,omitempty"`
	// Converged is "n/m" nodes running the commit, PushToRunning the
	// time from push until the last of them did ("1.2s").
	Converged     string    `json:"converged,omitempty"`
	PushToRunning string    `json:"pushToRunning,omitempty"`
	WebhookAt     time.Time `json:"webhookAt,omitzero"`
	FetchedAt     time.Time `json:"fetchedAt,omitzero"`
	PlannedAt     time.Time `json:"plannedAt,omitzero"`
	RejectedAt    time.Time `json:"rejectedAt,omitzero"`
	PublishedAt   time.Time `json:"publishedAt,omitzero"`
	RunningAt     time.Time `json:"runningAt,omitzero"`
	// Nodes are the per-node timings.
	Nodes []api.CommitNodeView `json:"nodes,omitempty"`
}

func podObject(v api.PodView) any {
	p := v.Pod
	p.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	return &p
}

func deploymentObject(v api.DeploymentView) any {
	d := v.Deployment
	d.TypeMeta = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}
	return &d
}

func serviceObject(v api.ServiceView) any {
	s := v.Service
	s.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}
	return &s
}

// NodeObject is a node as -o json/yaml prints it: shaped like a Kubernetes
// v1 Node, keeping only what moor knows (labels, creation at join, a Ready
// condition whose heartbeat is the last report).
type NodeObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Status            NodeObjectStatus `json:"status"`
}

// NodeObjectStatus is the subset of corev1.NodeStatus moor reports.
type NodeObjectStatus struct {
	Conditions []corev1.NodeCondition `json:"conditions"`
}

func nodeObject(v api.NodeView) any {
	ready, reason, msg := corev1.ConditionFalse, "AgentNotReady", "the node agent is not reporting"
	if v.Ready {
		ready, reason, msg = corev1.ConditionTrue, "AgentReady", "the node agent is reporting"
	}
	n := &NodeObject{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              v.Name,
			Labels:            v.Labels,
			CreationTimestamp: metav1.NewTime(v.JoinedAt),
			Annotations:       map[string]string{annotationNodePods: fmt.Sprint(v.Pods)},
		},
		Status: NodeObjectStatus{Conditions: []corev1.NodeCondition{{
			Type:              corev1.NodeReady,
			Status:            ready,
			LastHeartbeatTime: metav1.NewTime(v.LastSeen),
			Reason:            reason,
			Message:           msg,
		}}},
	}
	if v.Commit != "" {
		n.Annotations[annotationNodeCommit] = v.Commit
	}
	return n
}

func commitObject(v api.CommitView) any {
	o := &CommitObject{
		TypeMeta:   metav1.TypeMeta{APIVersion: api.Version, Kind: kindCommitObject},
		ObjectMeta: metav1.ObjectMeta{Name: v.SHA, CreationTimestamp: metav1.NewTime(v.SeenAt)},
		Spec:       CommitSpec{Author: v.Author, Message: v.Message},
		Status: CommitStatus{State: v.State, Deployed: v.Deployed, Errors: v.Errors,
			WebhookAt: v.WebhookAt, FetchedAt: v.FetchedAt, PlannedAt: v.PlannedAt, RejectedAt: v.RejectedAt,
			PublishedAt: v.PublishedAt, RunningAt: v.RunningAt, Nodes: v.Nodes},
	}
	if v.Total > 0 {
		o.Status.Converged = converged(v)
	}
	if !v.RunningAt.IsZero() {
		o.Status.PushToRunning = shortDuration(v.PushToRunning)
	}
	return o
}

// objectList is kubectl's List wrapper; fields are in kubectl's
// (alphabetical) order.
type objectList struct {
	APIVersion string   `json:"apiVersion"`
	Items      []any    `json:"items"`
	Kind       string   `json:"kind"`
	Metadata   listMeta `json:"metadata"`
}

type listMeta struct {
	ResourceVersion string `json:"resourceVersion"`
}

// printObjects writes objs as JSON or YAML: one object alone when single,
// else a v1 List, with keys sorted as kubectl prints them.
func printObjects(w io.Writer, objs []any, single bool, format string) error {
	var v any = &objectList{APIVersion: "v1", Items: objs, Kind: "List"}
	if single && len(objs) == 1 {
		v = objs[0]
	}
	if v, ok := v.(*objectList); ok && v.Items == nil {
		v.Items = []any{}
	}
	generic, err := toGeneric(v)
	if err != nil {
		return err
	}
	var out []byte
	switch format {
	case "json":
		out, err = json.MarshalIndent(generic, "", "    ")
		out = append(out, '\n')
	case "yaml":
		out, err = yaml.Marshal(generic)
	default:
		return fmt.Errorf("unknown output format %q", format)
	}
	if err != nil {
		return fmt.Errorf("encode %s: %w", format, err)
	}
	_, err = w.Write(out)
	return err
}

// toGeneric round-trips v through JSON so maps sort every key, as kubectl's
// unstructured printing does; numbers are kept exact.
func toGeneric(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var g any
	if err := dec.Decode(&g); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return g, nil
}
