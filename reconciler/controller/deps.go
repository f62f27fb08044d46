package controller

import (
	"context"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/source"
	"github.com/moor-dev/moor/reconciler/store"
)

// Source is the Git side the controller needs.
type Source interface {
	Fetch(ctx context.Context) (source.Revision, bool, error)
	Files(ctx context.Context, commit string) (map[string][]byte, error)
}

// Store is the persistent state the controller reads and writes.
type Store interface {
	PutNode(ctx context.Context, n store.NodeRecord) error
	GetNode(ctx context.Context, name string) (store.NodeRecord, error)
	ListNodes(ctx context.Context) ([]store.NodeRecord, error)
	PutCommit(ctx context.Context, c store.CommitRecord) error
	GetCommit(ctx context.Context, sha string) (store.CommitRecord, error)
	ListCommits(ctx context.Context, limit int) ([]store.CommitRecord, error)
	SetDeployed(ctx context.Context, sha string) error
	Deployed(ctx context.Context) (string, error)
	PutNodeStatus(ctx context.Context, s api.NodeStatus) error
	ListNodeStatus(ctx context.Context) (map[string]api.NodeStatus, error)
	PutDesired(ctx context.Context, node string, body []byte, digest string) error
	ListDesired(ctx context.Context) (map[string]store.Desired, error)
	PutPlacement(ctx context.Context, p map[string]string) error
	Placement(ctx context.Context) (map[string]string, error)
	PutAllocations(ctx context.Context, a store.Allocations) error
	Allocations(ctx context.Context) (store.Allocations, error)
	PutNodeProgress(ctx context.Context, p store.NodeProgress) error
	ListNodeProgress(ctx context.Context, sha string) ([]store.NodeProgress, error)
	PutBatchStates(ctx context.Context, s store.BatchStates) error
	GetBatchStates(ctx context.Context) (store.BatchStates, error)
	PutDeploymentStates(ctx context.Context, states map[string][]byte) error
	GetDeploymentStates(ctx context.Context) (map[string][]byte, error)
}

// Publisher makes a node's document available to its long-poll.
type Publisher interface {
	Set(node string, body []byte, digest string)
}

// Signer issues node certificates.
type Signer interface {
	SignNode(csrPEM []byte, node string) ([]byte, error)
	Token() api.Token
	CAPEM() []byte
}

var _ Store = (*store.Store)(nil)
var _ Source = (*source.Source)(nil)
