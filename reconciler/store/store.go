// Package store is the reconciler's embedded state store: one bbolt file in
// the server's data dir holding registered nodes, the commits the reconciler
// has seen and which one is deployed, the status each node last reported,
// each node's published desired-state document, the current placement and
// the network allocations (pod CIDRs, cluster IPs, node ports), each
// node's progress towards running each commit, and the planner's states
// of Jobs, CronJobs and Deployment rollouts (opaque JSON). Commits are never deleted,
// so history survives force-pushes.
// Everything survives a restart.
//
// It owns the file's layout (buckets, keys, JSON values) and nothing else:
// it does not decide what to store or when, does no planning and speaks no
// HTTP. Missing records are reported with errors wrapping errdefs.ErrNotFound,
// invalid input with errdefs.ErrInvalidArgument.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
)

// schemaVersion is the layout version written to the meta bucket; Open
// refuses files written by a newer layout.
const schemaVersion = "1"

// Bucket names.
var (
	bucketMeta          = []byte("meta")
	bucketNodes         = []byte("nodes")
	bucketCommits       = []byte("commits")
	bucketCommitsBySeen = []byte("commits_by_seen") // seen-time key + 0 + sha → sha
	bucketNodeStatus    = []byte("node_status")
	bucketDesired       = []byte("desired")
	bucketAllocations   = []byte("allocations")  // keyPodCIDRs, keyClusterIPs, keyNodePorts → JSON maps
	bucketCommitNodes   = []byte("commit_nodes") // sha + 0 + node → NodeProgress

	allBuckets = [][]byte{bucketMeta, bucketNodes, bucketCommits, bucketCommitsBySeen, bucketNodeStatus, bucketDesired, bucketAllocations, bucketCommitNodes}
)

// Keys of the meta bucket.
var (
	keySchema    = []byte("schema")
	keyDeployed  = []byte("deployed")
	keyPlacement = []byte("placement")
)

// Keys of the allocations bucket.
var (
	keyPodCIDRs   = []byte("pod_cidrs")
	keyClusterIPs = []byte("cluster_ips")
	keyNodePorts  = []byte("node_ports")
)

// openTimeout bounds the wait for the file lock another process may hold.
const openTimeout = 2 * time.Second

// Store is the bbolt-backed state store. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
}

// Open opens (creating if needed) the state store at path.
func Open(path string) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("open state store: %w: path is empty", errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open state store: create directory for %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: openTimeout})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open state store %s: %w (is another moor server using this data dir?)", path, err)
		}
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	if err := db.Update(initBuckets); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

// initBuckets creates missing buckets and checks the schema version.
func initBuckets(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	switch v := meta.Get(keySchema); {
	case v == nil:
		return meta.Put(keySchema, []byte(schemaVersion))
	case string(v) != schemaVersion:
		return fmt.Errorf("%w: file has schema version %s, this moor understands %s; use a matching moor release",
			errdefs.ErrFailedPrecondition, v, schemaVersion)
	}
	return nil
}

// Close releases the file. Calling it more than once is harmless.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close state store %s: %w", s.path, err)
	}
	return nil
}

// view runs fn in a read transaction after checking ctx.
func (s *Store) view(ctx context.Context, what string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if err := s.db.View(fn); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

// update runs fn in a write transaction after checking ctx.
func (s *Store) update(ctx context.Context, what string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if err := s.db.Update(fn); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

// putJSON encodes v and stores it under key in bucket.
func putJSON(tx *bolt.Tx, bucket, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	return tx.Bucket(bucket).Put(key, b)
}

// getJSON decodes the value under key in bucket into v; it reports whether
// the key exists.
func getJSON(tx *bolt.Tx, bucket, key []byte, v any) (bool, error) {
	b := tx.Bucket(bucket).Get(key)
	if b == nil {
		return false, nil
	}
	return true, decode(bucket, key, b, v)
}

// decode parses the JSON value b stored under bucket/key into v.
func decode(bucket, key, b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s/%s: %w (the state file may be corrupt)", bucket, key, err)
	}
	return nil
}

// notFound wraps errdefs.ErrNotFound with what was missing.
func notFound(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errdefs.ErrNotFound)
}

// invalid wraps errdefs.ErrInvalidArgument with what is wrong.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errdefs.ErrInvalidArgument, fmt.Sprintf(format, args...))
}
