package store

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/moor-dev/moor/api"
)

// NodeRecord is a registered node.
type NodeRecord struct {
	Name     string            `json:"name"`
	Labels   map[string]string `json:"labels,omitempty"`
	JoinedAt time.Time         `json:"joinedAt"`
	LastSeen time.Time         `json:"lastSeen"`
	// Commit and DesiredDigest are what the node last reported applying.
	Commit        string `json:"commit,omitempty"`
	DesiredDigest string `json:"desiredDigest,omitempty"`
	// Address is the node's IP address as it last told it (join or
	// status report); zero when unknown.
	Address netip.Addr `json:"address,omitzero"`
}

// Allocations are the network resources the planner handed out; they are
// stored so they stay stable across commits and restarts.
type Allocations struct {
	PodCIDRs   map[string]netip.Prefix // node → pod CIDR
	ClusterIPs map[string]netip.Addr   // "namespace/name" → virtual IP
	NodePorts  map[string]int32        // service port key → node port
}

// CommitRecord is a commit the reconciler has seen and judged.
type CommitRecord struct {
	SHA     string    `json:"sha"`
	Author  string    `json:"author,omitempty"`
	Message string    `json:"message,omitempty"`
	Time    time.Time `json:"time"`   // commit time
	SeenAt  time.Time `json:"seenAt"` // when the reconciler first saw it
	State   string    `json:"state"`  // api.CommitAccepted or api.CommitRejected
	Errors  []string  `json:"errors,omitempty"`

	// Timestamps of the commit's last deployment (see api.CommitView):
	// zero for steps not reached. WebhookAt is zero when polling or a
	// manual sync found the commit. RunningAt is when every node with a
	// document at the commit first ran all of its pods for it.
	WebhookAt   time.Time `json:"webhookAt,omitzero"`
	FetchedAt   time.Time `json:"fetchedAt,omitzero"`
	PlannedAt   time.Time `json:"plannedAt,omitzero"`
	RejectedAt  time.Time `json:"rejectedAt,omitzero"`
	PublishedAt time.Time `json:"publishedAt,omitzero"`
	RunningAt   time.Time `json:"runningAt,omitzero"`
}

// PushedAt is when the commit's deployment started: its webhook, or the
// fetch that found it when no webhook announced it.
func (c *CommitRecord) PushedAt() time.Time {
	if !c.WebhookAt.IsZero() {
		return c.WebhookAt
	}
	return c.FetchedAt
}

// Desired is a node's published desired-state document and its digest.
type Desired struct {
	Body   []byte `json:"body"`
	Digest string `json:"digest"`
}

// PutNode creates or replaces a node record.
func (s *Store) PutNode(ctx context.Context, n NodeRecord) error {
	if n.Name == "" {
		return invalid("store: put node: name is empty")
	}
	return s.update(ctx, "put node "+n.Name, func(tx *bolt.Tx) error {
		return putJSON(tx, bucketNodes, []byte(n.Name), n)
	})
}

// GetNode returns the named node, or an error wrapping errdefs.ErrNotFound.
func (s *Store) GetNode(ctx context.Context, name string) (NodeRecord, error) {
	var n NodeRecord
	err := s.view(ctx, "get node", func(tx *bolt.Tx) error {
		ok, err := getJSON(tx, bucketNodes, []byte(name), &n)
		if err == nil && !ok {
			err = notFound("node %q", name)
		}
		return err
	})
	return n, err
}

// ListNodes returns every node, sorted by name.
func (s *Store) ListNodes(ctx context.Context) ([]NodeRecord, error) {
	nodes := []NodeRecord{}
	err := s.view(ctx, "list nodes", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNodes).ForEach(func(k, v []byte) error {
			var n NodeRecord
			if err := decode(bucketNodes, k, v, &n); err != nil {
				return err
			}
			nodes = append(nodes, n)
			return nil
		})
	})
	return nodes, err
}

// seenKey is the commits_by_seen key of c: a fixed-width UTC timestamp that
// sorts by time, a zero byte and the SHA.
func seenKey(c CommitRecord) []byte {
	ts := c.SeenAt.UTC().Format("20060102T150405.000000000Z")
	return []byte(ts + "\x00" + c.SHA)
}

// PutCommit creates or replaces a commit record.
func (s *Store) PutCommit(ctx context.Context, c CommitRecord) error {
	if c.SHA == "" {
		return invalid("store: put commit: SHA is empty")
	}
	if c.State != api.CommitAccepted && c.State != api.CommitRejected {
		return invalid("store: put commit %s: state %q must be %q or %q", c.SHA, c.State, api.CommitAccepted, api.CommitRejected)
	}
	return s.update(ctx, "put commit "+c.SHA, func(tx *bolt.Tx) error {
		var old CommitRecord
		ok, err := getJSON(tx, bucketCommits, []byte(c.SHA), &old)
		if err != nil {
			return err
		}
		idx := tx.Bucket(bucketCommitsBySeen)
		if ok {
			if err := idx.Delete(seenKey(old)); err != nil {
				return err
			}
		}
		if err := idx.Put(seenKey(c), []byte(c.SHA)); err != nil {
			return err
		}
		return putJSON(tx, bucketCommits, []byte(c.SHA), c)
	})
}

// GetCommit returns the commit, or an error wrapping errdefs.ErrNotFound.
func (s *Store) GetCommit(ctx context.Context, sha string) (CommitRecord, error) {
	var c CommitRecord
	err := s.view(ctx, "get commit", func(tx *bolt.Tx) error {
		ok, err := getJSON(tx, bucketCommits, []byte(sha), &c)
		if err == nil && !ok {
			err = notFound("commit %q", sha)
		}
		return err
	})
	return c, err
}

// ListCommits returns up to limit commits, newest SeenAt first (ties by SHA,
// descending). limit <= 0 returns all of them.
func (s *Store) ListCommits(ctx context.Context, limit int) ([]CommitRecord, error) {
	commits := []CommitRecord{}
	err := s.view(ctx, "list commits", func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketCommitsBySeen).Cursor()
		for k, sha := cur.Last(); k != nil; k, sha = cur.Prev() {
			if limit > 0 && len(commits) >= limit {
				return nil
			}
			var c CommitRecord
			ok, err := getJSON(tx, bucketCommits, sha, &c)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("index entry %q names missing commit %s", bytes.ReplaceAll(k, []byte{0}, []byte{' '}), sha)
			}
			commits = append(commits, c)
		}
		return nil
	})
	return commits, err
}

// SetDeployed records sha as the deployed commit. The commit must have been
// stored with PutCommit first; otherwise the error wraps errdefs.ErrNotFound.
func (s *Store) SetDeployed(ctx context.Context, sha string) error {
	return s.update(ctx, "set deployed commit", func(tx *bolt.Tx) error {
		if tx.Bucket(bucketCommits).Get([]byte(sha)) == nil {
			return notFound("commit %q (store it with PutCommit before deploying it)", sha)
		}
		return tx.Bucket(bucketMeta).Put(keyDeployed, []byte(sha))
	})
}

// Deployed returns the deployed commit, "" when none has been deployed.
func (s *Store) Deployed(ctx context.Context) (string, error) {
	var sha string
	err := s.view(ctx, "get deployed commit", func(tx *bolt.Tx) error {
		sha = string(tx.Bucket(bucketMeta).Get(keyDeployed))
		return nil
	})
	return sha, err
}

// PutNodeStatus replaces the status last reported by st.Node.
func (s *Store) PutNodeStatus(ctx context.Context, st api.NodeStatus) error {
	if st.Node == "" {
		return invalid("store: put node status: node is empty")
	}
	return s.update(ctx, "put status of node "+st.Node, func(tx *bolt.Tx) error {
		return putJSON(tx, bucketNodeStatus, []byte(st.Node), st)
	})
}

// ListNodeStatus returns the last status of every node that reported one,
// keyed by node name.
func (s *Store) ListNodeStatus(ctx context.Context) (map[string]api.NodeStatus, error) {
	out := map[string]api.NodeStatus{}
	err := s.view(ctx, "list node status", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNodeStatus).ForEach(func(k, v []byte) error {
			var st api.NodeStatus
			if err := decode(bucketNodeStatus, k, v, &st); err != nil {
				return err
			}
			out[string(k)] = st
			return nil
		})
	})
	return out, err
}

// PutDesired replaces node's published desired-state document.
func (s *Store) PutDesired(ctx context.Context, node string, body []byte, digest string) error {
	if node == "" {
		return invalid("store: put desired state: node is empty")
	}
	if digest == "" {
		return invalid("store: put desired state of node %q: digest is empty", node)
	}
	return s.update(ctx, "put desired state of node "+node, func(tx *bolt.Tx) error {
		return putJSON(tx, bucketDesired, []byte(node), Desired{Body: body, Digest: digest})
	})
}

// ListDesired returns every node's desired-state document, keyed by node.
func (s *Store) ListDesired(ctx context.Context) (map[string]Desired, error) {
	out := map[string]Desired{}
	err := s.view(ctx, "list desired state", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDesired).ForEach(func(k, v []byte) error {
			var d Desired
			if err := decode(bucketDesired, k, v, &d); err != nil {
				return err
			}
			out[string(k)] = d
			return nil
		})
	})
	return out, err
}

// PutPlacement replaces the whole placement (pod key → node name).
func (s *Store) PutPlacement(ctx context.Context, p map[string]string) error {
	if p == nil {
		p = map[string]string{}
	}
	return s.update(ctx, "put placement", func(tx *bolt.Tx) error {
		return putJSON(tx, bucketMeta, keyPlacement, p)
	})
}

// Placement returns the stored placement, empty (not nil) when none.
func (s *Store) Placement(ctx context.Context) (map[string]string, error) {
	p := map[string]string{}
	err := s.view(ctx, "get placement", func(tx *bolt.Tx) error {
		_, err := getJSON(tx, bucketMeta, keyPlacement, &p)
		return err
	})
	if p == nil { // a stored JSON null
		p = map[string]string{}
	}
	return p, err
}

// PutAllocations replaces all three allocation maps.
func (s *Store) PutAllocations(ctx context.Context, a Allocations) error {
	return s.update(ctx, "put allocations", func(tx *bolt.Tx) error {
		for _, kv := range []struct {
			key []byte
			v   any
		}{{keyPodCIDRs, nonNil(a.PodCIDRs)}, {keyClusterIPs, nonNil(a.ClusterIPs)}, {keyNodePorts, nonNil(a.NodePorts)}} {
			if err := putJSON(tx, bucketAllocations, kv.key, kv.v); err != nil {
				return err
			}
		}
		return nil
	})
}

// Allocations returns the stored allocations; each map is empty (not nil)
// when none were stored.
func (s *Store) Allocations(ctx context.Context) (Allocations, error) {
	var a Allocations
	err := s.view(ctx, "get allocations", func(tx *bolt.Tx) error {
		if _, err := getJSON(tx, bucketAllocations, keyPodCIDRs, &a.PodCIDRs); err != nil {
			return err
		}
		if _, err := getJSON(tx, bucketAllocations, keyClusterIPs, &a.ClusterIPs); err != nil {
			return err
		}
		_, err := getJSON(tx, bucketAllocations, keyNodePorts, &a.NodePorts)
		return err
	})
	a.PodCIDRs, a.ClusterIPs, a.NodePorts = nonNil(a.PodCIDRs), nonNil(a.ClusterIPs), nonNil(a.NodePorts)
	return a, err
}

func nonNil[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}
