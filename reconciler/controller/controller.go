package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
	"github.com/moor-dev/moor/reconciler/metrics"
	"github.com/moor-dev/moor/reconciler/planner"
	"github.com/moor-dev/moor/reconciler/store"
)

// Config wires the controller to its collaborators.
type Config struct {
	Source    Source
	Store     Store
	Publisher Publisher
	Signer    Signer
	Log       *slog.Logger
	// PollInterval is how often the branch is polled (default 30s); each
	// wait is jittered by up to a fifth of it.
	PollInterval time.Duration
	// NodeTimeout is how long a node may stay silent before it is NotReady
	// and gets no new pods (default 40s).
	NodeTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Network is the cluster network: pod and service CIDRs, node port
	// range. Zero fields take their defaults.
	Network planner.NetworkConfig
	// AllowPlainSecrets accepts Secrets with data or stringData and sends
	// their values to the nodes. Development only: see
	// manifest.Options.AllowPlainSecrets.
	AllowPlainSecrets bool
	// OnSync, when set, is told the outcome and duration of every Sync
	// (metrics, readiness).
	OnSync func(res api.SyncResponse, err error, took time.Duration)
	// Metrics, when set, counts commits by state and observes each
	// commit's push→running time once.
	Metrics Recorder
}

// Validate checks the configuration and fills in defaults.
func (c *Config) Validate() error {
	if c.Source == nil || c.Store == nil || c.Publisher == nil || c.Signer == nil {
		return errors.New("controller: Source, Store, Publisher and Signer are required")
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.PollInterval == 0 {
		c.PollInterval = 30 * time.Second
	}
	if c.PollInterval < time.Second {
		return fmt.Errorf("controller: poll interval %s is below 1s", c.PollInterval)
	}
	if c.NodeTimeout == 0 {
		c.NodeTimeout = 40 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Metrics == nil {
		c.Metrics = nopRecorder{}
	}
	if err := c.Network.Validate(); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	return nil
}

// Controller runs the fetch → validate → plan → publish loop.
type Controller struct {
	cfg     Config
	log     *slog.Logger
	metrics Recorder

	syncMu sync.Mutex // one fetch at a time
	planMu sync.Mutex // one replan at a time, so an older plan never overwrites a newer one

	mu      sync.Mutex // guards the fields below
	objects *manifest.Objects
	commit  string
	last    *planner.Output
	ready   string // readySet of the nodes the last plan saw
	// published is the digest last stored and published per node.
	published map[string]string
	// reports is, per node, the signature of its last report as far as
	// plans depend on it (see reportSignature).
	reports map[string]string

	recMu sync.Mutex // guards track and the records it keeps (see records.go)
	track *tracker   // the deployed commit's progress; nil before the first

	batch batchRuntime // Job and CronJob bookkeeping (see batch.go)

	// rollouts are the Deployment states last persisted, encoded; nil
	// when unknown. Guarded by planMu (see deployments.go).
	rollouts map[string][]byte
	// batchStored are the Job and CronJob states last persisted, encoded;
	// nil when unknown. Guarded by planMu (see batch.go).
	batchStored *store.BatchStates
}

// New creates a controller. Call Restore before serving requests.
func New(cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Controller{cfg: cfg, log: cfg.Log.With("component", "controller"), metrics: cfg.Metrics,
		published: map[string]string{}, reports: map[string]string{}}, nil
}

// Restore republishes the stored documents and reloads the deployed
// commit's objects, so a restarted server serves exactly what it served
// before without waiting for Git.
func (c *Controller) Restore(ctx context.Context) error {
	docs, err := c.cfg.Store.ListDesired(ctx)
	if err != nil {
		return fmt.Errorf("restore published documents: %w", err)
	}
	c.planMu.Lock()
	for node, d := range docs {
		c.cfg.Publisher.Set(node, d.Body, d.Digest)
		c.published[node] = d.Digest
	}
	c.planMu.Unlock()
	sha, err := c.cfg.Store.Deployed(ctx)
	if err != nil || sha == "" {
		return err
	}
	files, err := c.cfg.Source.Files(ctx, sha)
	if err != nil {
		// The mirror may be gone; the next fetch brings it back.
		c.log.Warn("cannot reload deployed commit; waiting for the next fetch", "commit", sha, "err", err)
		return nil
	}
	objs, err := manifest.LoadWithOptions(files, c.baseManifestOptions())
	if err != nil {
		return fmt.Errorf("reload deployed commit %s: %w", sha, err)
	}
	if err := c.restoreTracking(ctx, sha); err != nil {
		return fmt.Errorf("reload deployed commit %s: %w", sha, err)
	}
	c.mu.Lock()
	c.objects, c.commit = objs, sha
	c.mu.Unlock()
	_, err = c.replan(ctx)
	return err
}

// Run polls the branch until ctx ends. Sync may also be called directly.
func (c *Controller) Run(ctx context.Context) error {
	defer c.startRequeue(ctx)()
	for {
		if _, err := c.Sync(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("sync failed", "err", err)
		}
		if err := c.tickNodes(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("node check failed", "err", err)
		}
		wait := c.cfg.PollInterval + rand.N(c.cfg.PollInterval/5+1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Sync fetches the branch and, when its head moved, validates, plans and
// publishes the new commit. An invalid commit is recorded as rejected and
// leaves the deployed one in place. Polls and `moor sync` call it.
func (c *Controller) Sync(ctx context.Context) (api.SyncResponse, error) {
	return c.SyncWithCause(ctx, time.Time{})
}

// SyncWithCause is Sync started by a webhook that arrived at webhookAt
// (the earliest of a coalesced batch): a commit it finds records
// webhookAt as the start of its push→running time. A zero webhookAt is a
// poll.
func (c *Controller) SyncWithCause(ctx context.Context, webhookAt time.Time) (res api.SyncResponse, err error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	if c.cfg.OnSync != nil {
		start := c.cfg.Now()
		defer func() { c.cfg.OnSync(res, err, c.cfg.Now().Sub(start)) }()
	}

	rev, changed, err := c.cfg.Source.Fetch(ctx)
	if err != nil {
		return api.SyncResponse{}, fmt.Errorf("fetch: %w", errors.Join(errdefs.ErrUnavailable, err))
	}
	fetchedAt := c.cfg.Now().UTC()
	old, oldErr := c.cfg.Store.GetCommit(ctx, rev.Commit)
	if oldErr != nil && !errdefs.IsNotFound(oldErr) {
		return api.SyncResponse{}, oldErr
	}
	c.mu.Lock()
	deployed := c.commit
	c.mu.Unlock()
	// Unchanged, or the deployed head found again after a restart: keep
	// its records. A head seen before the last restart but never judged is
	// processed below, and so is a force-push back to an older commit.
	if oldErr == nil && (!changed || rev.Commit == deployed) {
		return api.SyncResponse{Commit: rev.Commit, State: old.State, Errors: old.Errors}, nil
	}
	rec := store.CommitRecord{
		SHA: rev.Commit, Author: rev.Author, Message: rev.Message, Time: rev.Time,
		SeenAt: fetchedAt, FetchedAt: fetchedAt,
	}
	if !webhookAt.IsZero() && !webhookAt.After(fetchedAt) {
		rec.WebhookAt = webhookAt.UTC()
	}
	if oldErr == nil {
		rec.SeenAt = old.SeenAt // history keeps its order; the timings restart
	}
	objs, loadErr := c.load(ctx, rev.Commit)
	if loadErr != nil && !commitFault(loadErr) {
		return api.SyncResponse{}, fmt.Errorf("read commit %s: %w", rev.Commit, loadErr)
	}
	if loadErr != nil {
		rec.State, rec.RejectedAt = api.CommitRejected, c.cfg.Now().UTC()
		rec.Errors = errorLines(loadErr)
		if err := c.putCommit(ctx, rec); err != nil {
			return api.SyncResponse{}, err
		}
		c.metrics.CommitState(metrics.CommitRejected)
		c.log.Warn("commit rejected; the deployed commit stays", "commit", rev.Commit, "errors", len(rec.Errors))
		return api.SyncResponse{Commit: rev.Commit, State: rec.State, Changed: true, Errors: rec.Errors}, nil
	}
	c.startTracking(rev.Commit, rec.PushedAt())
	c.mu.Lock()
	c.objects, c.commit = objs, rev.Commit
	c.mu.Unlock()
	times, err := c.replan(ctx)
	if err != nil {
		return api.SyncResponse{}, err
	}
	rec.State, rec.PlannedAt, rec.PublishedAt = api.CommitAccepted, times.planned, times.published
	if err := c.putCommit(ctx, rec); err != nil {
		return api.SyncResponse{}, err
	}
	if err := c.cfg.Store.SetDeployed(ctx, rev.Commit); err != nil {
		return api.SyncResponse{}, err
	}
	c.metrics.CommitState(metrics.CommitPublished)
	c.log.Info("commit deployed", "commit", rev.Commit, "webhook", !rec.WebhookAt.IsZero(),
		"fetch-to-publish", rec.PublishedAt.Sub(rec.FetchedAt))
	return api.SyncResponse{Commit: rev.Commit, State: rec.State, Changed: true}, nil
}

func (c *Controller) load(ctx context.Context, commit string) (*manifest.Objects, error) {
	files, err := c.cfg.Source.Files(ctx, commit)
	if err != nil {
		return nil, err
	}
	opts, err := c.manifestOptions(ctx)
	if err != nil {
		return nil, err
	}
	return manifest.LoadWithOptions(files, opts)
}

// commitFault reports whether err is the commit's own fault (invalid
// manifests, oversized or missing files) rather than a passing failure
// worth retrying.
func commitFault(err error) bool {
	return errors.Is(err, manifest.ErrInvalid) || errdefs.IsInvalidArgument(err) ||
		errdefs.IsResourceExhausted(err) || errdefs.IsNotFound(err)
}

// errorLines flattens a validation error into one line per problem.
func errorLines(err error) []string {
	var list manifest.ErrorList
	if errors.As(err, &list) {
		out := make([]string, 0, len(list))
		for _, e := range list {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

// planTimes says when a replan finished planning and publishing.
type planTimes struct{ planned, published time.Time }

// replan runs the planner over the current objects and nodes, then stores
// and publishes every node's document whose digest changed. Allocations
// are stored before any document that uses them is published, and each
// node's progress record before its first document at a commit.
func (c *Controller) replan(ctx context.Context) (planTimes, error) {
	c.planMu.Lock()
	defer c.planMu.Unlock()
	in, err := c.input(ctx)
	if err != nil {
		return planTimes{}, err
	}
	if in.Objects == nil {
		return planTimes{}, nil // nothing deployed yet
	}
	out := planner.Plan(in)
	times := planTimes{planned: c.cfg.Now().UTC()}
	if err := c.cfg.Store.PutAllocations(ctx, toStore(out.Allocations)); err != nil {
		return planTimes{}, err
	}
	if err := c.putBatchStates(ctx, out.JobStates, out.CronJobStates); err != nil {
		return planTimes{}, err
	}
	if err := c.putDeploymentStates(ctx, out.DeploymentStates); err != nil {
		return planTimes{}, err
	}
	if err := c.notePublished(ctx, out, times.planned); err != nil {
		return planTimes{}, err
	}
	for node, doc := range out.Nodes {
		body, digest, err := doc.Encode()
		if err != nil {
			return planTimes{}, err
		}
		if c.published[node] == digest {
			continue
		}
		if err := c.cfg.Store.PutDesired(ctx, node, body, digest); err != nil {
			return planTimes{}, err
		}
		c.cfg.Publisher.Set(node, body, digest)
		c.published[node] = digest
	}
	times.published = c.cfg.Now().UTC()
	if err := c.cfg.Store.PutPlacement(ctx, out.Placement); err != nil {
		return planTimes{}, err
	}
	for _, p := range out.Pending {
		c.log.Warn("pod unschedulable", "pod", p.Pod.Key(), "reason", p.Reason)
	}
	for _, w := range out.Warnings {
		c.log.Warn("network allocation", "problem", w)
	}
	c.mu.Lock()
	c.last, c.ready = out, readySet(in.Nodes)
	c.mu.Unlock()
	c.planned(out, in.Now)
	return times, nil
}

// input gathers the planner's input from memory and the store.
func (c *Controller) input(ctx context.Context) (planner.Input, error) {
	c.mu.Lock()
	objs, commit := c.objects, c.commit
	c.mu.Unlock()
	nodes, err := c.cfg.Store.ListNodes(ctx)
	if err != nil {
		return planner.Input{}, err
	}
	prev, err := c.cfg.Store.Placement(ctx)
	if err != nil && !errdefs.IsNotFound(err) {
		return planner.Input{}, err
	}
	statuses, err := c.cfg.Store.ListNodeStatus(ctx)
	if err != nil {
		return planner.Input{}, err
	}
	alloc, err := c.cfg.Store.Allocations(ctx)
	if err != nil {
		return planner.Input{}, err
	}
	now := c.cfg.Now()
	in := planner.Input{Commit: commit, Objects: objs, Previous: prev, Now: now,
		Status:  make(map[string][]api.PodStatus, len(statuses)),
		Network: c.cfg.Network, Allocations: fromStore(alloc)}
	if in.JobStates, in.CronJobStates, err = c.batchStates(ctx); err != nil {
		return planner.Input{}, err
	}
	if in.DeploymentStates, err = c.deploymentStates(ctx); err != nil {
		return planner.Input{}, err
	}
	for _, n := range nodes {
		in.Nodes = append(in.Nodes, planner.Node{Name: n.Name, Labels: n.Labels, Ready: c.nodeReady(n, now), Address: n.Address})
	}
	for node, s := range statuses {
		in.Status[node] = s.Pods
	}
	in.SecretVersions = secretVersions(statuses) // secrets.go
	return in, nil
}

func (c *Controller) nodeReady(n store.NodeRecord, now time.Time) bool {
	seen := n.LastSeen
	if seen.IsZero() {
		seen = n.JoinedAt
	}
	return now.Sub(seen) < c.cfg.NodeTimeout
}

// tickNodes replans when a node's readiness changed since the last plan.
func (c *Controller) tickNodes(ctx context.Context) error {
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	if last == nil {
		return nil
	}
	in, err := c.input(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	same := readySet(in.Nodes) == c.ready
	c.mu.Unlock()
	if same {
		return nil
	}
	_, err = c.replan(ctx)
	return err
}

func readySet(nodes []planner.Node) string {
	s := ""
	for _, n := range nodes {
		if n.Ready {
			s += n.Name + ","
		}
	}
	return s
}

func toStore(a planner.Allocations) store.Allocations {
	return store.Allocations{PodCIDRs: a.PodCIDRs, ClusterIPs: a.ClusterIPs, NodePorts: a.NodePorts}
}

func fromStore(a store.Allocations) planner.Allocations {
	return planner.Allocations{PodCIDRs: a.PodCIDRs, ClusterIPs: a.ClusterIPs, NodePorts: a.NodePorts}
}
