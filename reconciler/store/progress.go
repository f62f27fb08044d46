package store

import (
	"bytes"
	"context"
	"time"

	bolt "go.etcd.io/bbolt"
)

// NodeProgress is one node's progress towards running one commit: when
// its document at the commit was published, when the node pulled it and
// when all of its pods for the commit ran. Zero times are steps not
// reached.
type NodeProgress struct {
	Commit      string    `json:"commit"`
	Node        string    `json:"node"`
	PublishedAt time.Time `json:"publishedAt,omitzero"`
	PulledAt    time.Time `json:"pulledAt,omitzero"`
	RunningAt   time.Time `json:"runningAt,omitzero"`
}

// progressKey is the commit_nodes key: the SHA, a zero byte, the node.
func progressKey(sha, node string) []byte {
	return []byte(sha + "\x00" + node)
}

// PutNodeProgress creates or replaces p.Node's progress on p.Commit.
func (s *Store) PutNodeProgress(ctx context.Context, p NodeProgress) error {
	if p.Commit == "" || p.Node == "" {
		return invalid("store: put node progress: commit %q and node %q must both be set", p.Commit, p.Node)
	}
	return s.update(ctx, "put progress of node "+p.Node+" on commit "+p.Commit, func(tx *bolt.Tx) error {
		return putJSON(tx, bucketCommitNodes, progressKey(p.Commit, p.Node), p)
	})
}

// ListNodeProgress returns every node's progress on commit sha, sorted by
// node; empty (not nil) when there is none.
func (s *Store) ListNodeProgress(ctx context.Context, sha string) ([]NodeProgress, error) {
	out := []NodeProgress{}
	if sha == "" {
		return out, nil
	}
	prefix := []byte(sha + "\x00")
	err := s.view(ctx, "list node progress on commit "+sha, func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucketCommitNodes).Cursor()
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			var p NodeProgress
			if err := decode(bucketCommitNodes, k, v, &p); err != nil {
				return err
			}
			out = append(out, p)
		}
		return nil
	})
	return out, err
}
