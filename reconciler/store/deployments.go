package store

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// bucketDeploymentStates holds what the planner remembers about each
// Deployment's rollout (its revisions that still have pods): "namespace/
// name" → opaque JSON the planner owns. Created on first write, so stores
// written before rollouts existed open unchanged.
var bucketDeploymentStates = []byte("deployment_states")

// PutDeploymentStates replaces every Deployment's rollout state in one
// transaction: a key missing from states is deleted; nil deletes all.
func (s *Store) PutDeploymentStates(ctx context.Context, states map[string][]byte) error {
	return s.update(ctx, "put deployment states", func(tx *bolt.Tx) error {
		return replaceBucket(tx, bucketDeploymentStates, states)
	})
}

// GetDeploymentStates returns every stored Deployment rollout state, an
// empty (not nil) map when none were stored.
func (s *Store) GetDeploymentStates(ctx context.Context) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.view(ctx, "get deployment states", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeploymentStates)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			out[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	return out, err
}
