package store_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"

	"github.com/moor-dev/moor/reconciler/store"
	"github.com/moor-dev/moor/reconciler/store/storetest"
)

var _ storetest.Backend = (*store.Store)(nil)

func TestBolt(t *testing.T) {
	var dirs sync.Map // *testing.T → its state file path
	storetest.Run(t, func(t *testing.T) storetest.Backend {
		path, _ := dirs.LoadOrStore(t, filepath.Join(t.TempDir(), "state.db"))
		s, err := store.Open(path.(string))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		setup func(t *testing.T) string
		check func(error) bool
	}{
		{"EmptyPath", func(t *testing.T) string { return "" }, errdefs.IsInvalidArgument},
		{"NotABoltFile", func(t *testing.T) string {
			p := filepath.Join(dir, "garbage.db")
			if err := os.WriteFile(p, []byte("this is not a bbolt file, not at all, no"), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, func(err error) bool { return err != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := store.Open(tt.setup(t))
			if err == nil {
				s.Close()
			}
			if !tt.check(err) {
				t.Fatalf("Open: unexpected error %v", err)
			}
		})
	}
}

func TestClosedStoreFails(t *testing.T) {
	s, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ListNodes(context.Background()); err == nil {
		t.Fatal("ListNodes on a closed store succeeded")
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		return b.Put([]byte("schema"), []byte("99"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(path)
	if err == nil {
		s.Close()
	}
	if !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("Open of a schema-99 file: err = %v, want a failed precondition", err)
	}
}
