package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// BatchStates is what the Job and CronJob controllers remember between
// plans: one opaque JSON document per Job and per CronJob, keyed
// "namespace/name". The store does not look inside; the planner owns the
// format.
type BatchStates struct {
	Jobs     map[string][]byte
	CronJobs map[string][]byte
}

// Buckets of the batch states; created on first write, so stores written
// before Jobs existed open unchanged.
var (
	bucketJobStates     = []byte("job_states")     // "namespace/name" → JSON JobState
	bucketCronJobStates = []byte("cronjob_states") // "namespace/name" → JSON CronJobState
)

// PutBatchStates replaces every Job and CronJob state in one transaction:
// a key missing from s is deleted. A nil map replaces with nothing.
func (s *Store) PutBatchStates(ctx context.Context, st BatchStates) error {
	return s.update(ctx, "put job and cronjob states", func(tx *bolt.Tx) error {
		for _, kv := range []struct {
			bucket []byte
			m      map[string][]byte
		}{{bucketJobStates, st.Jobs}, {bucketCronJobStates, st.CronJobs}} {
			if err := replaceBucket(tx, kv.bucket, kv.m); err != nil {
				return err
			}
		}
		return nil
	})
}

// replaceBucket makes bucket hold exactly m.
func replaceBucket(tx *bolt.Tx, bucket []byte, m map[string][]byte) error {
	if tx.Bucket(bucket) != nil {
		if err := tx.DeleteBucket(bucket); err != nil {
			return fmt.Errorf("clear bucket %s: %w", bucket, err)
		}
	}
	b, err := tx.CreateBucket(bucket)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	for k, v := range m {
		if k == "" {
			return invalid("%s: empty key", bucket)
		}
		if err := b.Put([]byte(k), v); err != nil {
			return fmt.Errorf("put %s/%s: %w", bucket, k, err)
		}
	}
	return nil
}

// GetBatchStates returns every stored Job and CronJob state; both maps are
// empty (not nil) when none were stored.
func (s *Store) GetBatchStates(ctx context.Context) (BatchStates, error) {
	out := BatchStates{Jobs: map[string][]byte{}, CronJobs: map[string][]byte{}}
	err := s.view(ctx, "get job and cronjob states", func(tx *bolt.Tx) error {
		for _, kv := range []struct {
			bucket []byte
			m      map[string][]byte
		}{{bucketJobStates, out.Jobs}, {bucketCronJobStates, out.CronJobs}} {
			b := tx.Bucket(kv.bucket)
			if b == nil {
				continue
			}
			if err := b.ForEach(func(k, v []byte) error {
				kv.m[string(k)] = append([]byte(nil), v...)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}
