package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// Version is the apiVersion of every moor wire document.
const Version = "moor.dev/v1"

// Kinds of wire documents.
const (
	KindNodeDesired = "NodeDesired"
	KindNodeStatus  = "NodeStatus"
)

// Labels and annotations moor sets on the pods it plans.
const (
	LabelPodTemplateHash = "pod-template-hash" // same key as Kubernetes
	AnnotationCommit     = "moor.dev/commit"
	AnnotationOwner      = "moor.dev/owner" // "Deployment/name"
)

// NodeDesired is one node's share of the desired state: every pod the node
// must run at Commit, the cluster network and the table of Services. It is published as canonical JSON (see Encode) and
// addressed by its digest, which doubles as the HTTP ETag.
type NodeDesired struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Node is the name the agent joined with.
	Node string `json:"node"`
	// Commit is the Git commit the desired state was planned from.
	Commit string `json:"commit"`
	// Pods are sorted by namespace, then name.
	Pods []Pod `json:"pods"`
	// Network is this node's pod CIDR, the cluster's CIDRs and DNS, and
	// the routes to the other nodes' pods. Nil only from planners given no
	// network (tests).
	Network *Network `json:"network,omitempty"`
	// Services is every Service of the cluster with its endpoints, the same
	// on every node, sorted by namespace, then name. A pod that is about
	// to stop is no longer an endpoint in the document that removes it:
	// the agent applies this table before it stops containers.
	Services []Service `json:"services,omitempty"`
	// Secrets are the Secrets this node's pods use (env, envFrom, volumes,
	// imagePullSecrets), sorted by namespace, then name: where their values
	// live in Vault, never the values themselves.
	Secrets []SecretRef `json:"secrets,omitempty"`
}

// Pod is a pod as the node agent must run it.
type Pod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// UID is deterministic: the same pod planned from the same input always
	// gets the same UID, and a replaced pod gets a new one.
	UID         string            `json:"uid"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Owner names the controller that planned the pod ("Deployment/web"),
	// empty for bare Pods.
	Owner string `json:"owner,omitempty"`
	// SpecHash is the digest of Spec; the agent replaces containers whose
	// recorded hash differs.
	SpecHash string         `json:"specHash"`
	Spec     corev1.PodSpec `json:"spec"`
}

// Key is "namespace/name".
func (p *Pod) Key() string { return p.Namespace + "/" + p.Name }

// SortPods orders pods by namespace, then name, as canonical documents need.
func SortPods(pods []Pod) {
	sort.Slice(pods, func(i, j int) bool {
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
}

// Encode returns the canonical JSON encoding of d and its digest
// ("sha256:<hex>"). Identical input gives identical bytes: pods are sorted,
// maps are encoded with sorted keys by encoding/json, and no timestamps are
// included. Services and peers are sorted too.
func (d *NodeDesired) Encode() ([]byte, string, error) {
	c := *d
	c.APIVersion, c.Kind = Version, KindNodeDesired
	pods := make([]Pod, len(c.Pods)) // never nil: an empty node encodes "pods": []
	copy(pods, c.Pods)
	SortPods(pods)
	c.Pods = pods
	c.Network = d.Network.canonical()
	c.Services = canonicalServices(d.Services)
	if len(d.Secrets) > 0 {
		c.Secrets = append([]SecretRef(nil), d.Secrets...)
		SortSecretRefs(c.Secrets)
	} else {
		c.Secrets = nil
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, "", fmt.Errorf("encode desired state of node %q: %w", d.Node, err)
	}
	return b, Digest(b), nil
}

// DecodeNodeDesired parses a NodeDesired document and checks that it is one
// and that its bytes match want (a digest) when want is not empty.
func DecodeNodeDesired(b []byte, want string) (*NodeDesired, error) {
	if want != "" {
		if got := Digest(b); got != want {
			return nil, fmt.Errorf("desired state digest mismatch: got %s, want %s", got, want)
		}
	}
	var d NodeDesired
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("decode desired state: %w", err)
	}
	if d.APIVersion != Version || d.Kind != KindNodeDesired {
		return nil, fmt.Errorf("decode desired state: got %s %s, want %s %s", d.APIVersion, d.Kind, Version, KindNodeDesired)
	}
	return &d, nil
}

// Digest returns "sha256:<hex>" of b.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// HashObject returns a short, stable hex hash of v's JSON encoding, for
// pod-template hashes and spec hashes.
func HashObject(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only unsupported types (channels, funcs) fail; callers pass API types.
		panic(fmt.Sprintf("api.HashObject: %v", err))
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])[:10]
}
