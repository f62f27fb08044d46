package controller

import (
	"context"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/metrics"
	"github.com/moor-dev/moor/reconciler/planner"
	"github.com/moor-dev/moor/reconciler/store"
)

// This file keeps the convergence records: the tracker's I/O shell.
// Every method takes recMu, so a commit's record and its nodes' progress
// are read and written one writer at a time.

// restoreTracking reloads the deployed commit's tracker after a restart.
func (c *Controller) restoreTracking(ctx context.Context, sha string) error {
	rec, err := c.cfg.Store.GetCommit(ctx, sha)
	if err != nil {
		return err
	}
	progress, err := c.cfg.Store.ListNodeProgress(ctx, sha)
	if err != nil {
		return err
	}
	c.recMu.Lock()
	c.track = restoreTracker(rec, progress)
	c.recMu.Unlock()
	return nil
}

// startTracking begins a new deployment of sha: its progress so far, if
// it ran before a force-push took it away, is replaced as nodes get their
// documents.
func (c *Controller) startTracking(sha string, pushedAt time.Time) {
	c.recMu.Lock()
	c.track = newTracker(sha, pushedAt)
	c.recMu.Unlock()
}

// notePublished records, for every node whose document in out is at the
// tracked commit, the pods it must run, and stores when a node's first
// document at the commit was published.
func (c *Controller) notePublished(ctx context.Context, out *planner.Output, now time.Time) error {
	c.recMu.Lock()
	defer c.recMu.Unlock()
	t := c.track
	if t == nil {
		return nil
	}
	for node, doc := range out.Nodes {
		if doc.Commit != t.commit {
			continue
		}
		if p, isNew := t.published(node, doc.Pods, now.UTC()); isNew {
			if err := c.cfg.Store.PutNodeProgress(ctx, p); err != nil {
				return err
			}
		}
	}
	return c.converged(ctx, t)
}

// noteReport folds a status report into the tracked commit's progress.
func (c *Controller) noteReport(ctx context.Context, s api.NodeStatus) error {
	c.recMu.Lock()
	defer c.recMu.Unlock()
	t := c.track
	if t == nil {
		return nil
	}
	p, changed := t.report(s, c.cfg.Now().UTC())
	if !changed {
		return nil
	}
	if err := c.cfg.Store.PutNodeProgress(ctx, p); err != nil {
		return err
	}
	return c.converged(ctx, t)
}

// converged stores the commit's RunningAt and observes push→running, once,
// when every node has converged. A commit whose record Sync has not
// stored yet gets RunningAt from putCommit. Called with recMu held.
func (c *Controller) converged(ctx context.Context, t *tracker) error {
	if !t.converge() {
		return nil
	}
	rec, err := c.cfg.Store.GetCommit(ctx, t.commit)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	rec.RunningAt = t.runningAt
	if err := c.cfg.Store.PutCommit(ctx, rec); err != nil {
		return err
	}
	c.observeRunning(t)
	return nil
}

// putCommit stores a commit record, with the tracker's RunningAt when it
// is the tracked commit and already runs everywhere.
func (c *Controller) putCommit(ctx context.Context, rec store.CommitRecord) error {
	c.recMu.Lock()
	defer c.recMu.Unlock()
	t := c.track
	tracked := t != nil && t.commit == rec.SHA && rec.State == api.CommitAccepted
	if tracked {
		rec.RunningAt = t.runningAt
	}
	if err := c.cfg.Store.PutCommit(ctx, rec); err != nil {
		return err
	}
	if tracked && !t.runningAt.IsZero() {
		c.observeRunning(t)
	}
	return nil
}

// observeRunning sends push→running to the metrics once per deployment.
func (c *Controller) observeRunning(t *tracker) {
	if t.observed {
		return
	}
	t.observed = true
	d := t.runningAt.Sub(t.pushedAt)
	c.metrics.CommitState(metrics.CommitRunning)
	c.metrics.ObservePushToRunning(d)
	c.log.Info("commit running on every node", "commit", t.commit, "nodes", len(t.nodes), "push-to-running", d)
}

// nopRecorder is the Recorder of a controller configured without metrics.
type nopRecorder struct{}

func (nopRecorder) CommitState(string)                 {}
func (nopRecorder) ObservePushToRunning(time.Duration) {}

var _ Recorder = (*metrics.Metrics)(nil)
