package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
	"github.com/moor-dev/moor/reconciler/planner"
	"github.com/moor-dev/moor/reconciler/store"
)

// This file wires Jobs and CronJobs through the controller: their states
// are persisted after every plan (before any document is published),
// handed back to the next plan, and a timer plans again when the planner
// asks (Output.RequeueAfter).

// eventMemory is how long a logged CronJob event is remembered so that
// consecutive plans repeating it log it once.
const eventMemory = time.Hour

// requeueSlack is added to Output.RequeueAfter so that the plan the timer
// starts sees a clock at or past the moment the planner asked for.
const requeueSlack = 20 * time.Millisecond

// requeueRetry is the wait before a timer-started plan that failed is
// tried again.
const requeueRetry = 5 * time.Second

// batchRuntime is the controller's in-memory batch bookkeeping.
type batchRuntime struct {
	mu sync.Mutex
	// logged is when each distinct event was last logged.
	logged map[string]time.Time
	// requeue is the wait the last plan asked for (0: none); kick wakes
	// the timer loop when it changed.
	requeue time.Duration
	kick    chan struct{}
}

func (b *batchRuntime) init() {
	if b.kick == nil {
		b.logged, b.kick = map[string]time.Time{}, make(chan struct{}, 1)
	}
}

// batchStates reads the persisted Job and CronJob states; both are nil
// when none were stored.
func (c *Controller) batchStates(ctx context.Context) (map[string]planner.JobState, map[string]planner.CronJobState, error) {
	raw, err := c.cfg.Store.GetBatchStates(ctx)
	if err != nil {
		return nil, nil, err
	}
	jobs, err := decodeStates[planner.JobState](raw.Jobs, "job")
	if err != nil {
		return nil, nil, err
	}
	crons, err := decodeStates[planner.CronJobState](raw.CronJobs, "cronjob")
	if err != nil {
		return nil, nil, err
	}
	return jobs, crons, nil
}

func decodeStates[V any](raw map[string][]byte, what string) (map[string]V, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := make(map[string]V, len(raw))
	for k, b := range raw {
		var v V
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("decode stored %s state %s: %w", what, k, err)
		}
		out[k] = v
	}
	return out, nil
}

func encodeStates[V any](m map[string]V) (map[string][]byte, error) {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encode state %s: %w", k, err)
		}
		out[k] = b
	}
	return out, nil
}

// putBatchStates persists the states a plan returned, as whole maps,
// unless they are what was last written. The caller holds planMu.
func (c *Controller) putBatchStates(ctx context.Context, jobs map[string]planner.JobState, crons map[string]planner.CronJobState) error {
	j, err := encodeStates(jobs)
	if err != nil {
		return err
	}
	cj, err := encodeStates(crons)
	if err != nil {
		return err
	}
	if last := c.batchStored; last != nil && sameEncoding(last.Jobs, j) && sameEncoding(last.CronJobs, cj) {
		return nil
	}
	st := store.BatchStates{Jobs: j, CronJobs: cj}
	if err := c.cfg.Store.PutBatchStates(ctx, st); err != nil {
		c.batchStored = nil // unknown what is stored now
		return err
	}
	c.batchStored = &st
	return nil
}

// manifestOptions are the validation options of a new commit: the Jobs
// the server accepted earlier keep their immutable fields.
func (c *Controller) manifestOptions(ctx context.Context) (manifest.Options, error) {
	opts := c.baseManifestOptions()
	jobs, _, err := c.batchStates(ctx)
	if err != nil {
		return manifest.Options{}, err
	}
	opts.ExistingJobs = planner.ExistingJobs(jobs)
	return opts, nil
}

// planned is told every replan's output once its states are persisted:
// it logs new CronJob events and resets the requeue timer.
func (c *Controller) planned(out *planner.Output, now time.Time) {
	c.batch.mu.Lock()
	defer c.batch.mu.Unlock()
	c.batch.init()
	for _, ev := range out.Events {
		key := strings.Join([]string{ev.Namespace, ev.Name, ev.Reason, ev.Message}, "\x00")
		if _, seen := c.batch.logged[key]; !seen {
			c.log.Info("cronjob event", "cronjob", ev.Namespace+"/"+ev.Name, "type", ev.Type, "reason", ev.Reason, "message", ev.Message)
		}
		c.batch.logged[key] = now
	}
	for key, at := range c.batch.logged {
		if now.Sub(at) > eventMemory {
			delete(c.batch.logged, key)
		}
	}
	c.batch.requeue = out.RequeueAfter
	select {
	case c.batch.kick <- struct{}{}:
	default:
	}
}

// runRequeue plans again whenever the last plan's RequeueAfter passes,
// until ctx ends. Every plan resets the timer.
func (c *Controller) runRequeue(ctx context.Context) {
	c.batch.mu.Lock()
	c.batch.init()
	kick := c.batch.kick
	c.batch.mu.Unlock()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		c.batch.mu.Lock()
		d := c.batch.requeue
		c.batch.mu.Unlock()
		timer.Stop()
		var fire <-chan time.Time
		if d > 0 {
			timer.Reset(d + requeueSlack)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-fire:
			if _, err := c.replan(ctx); err != nil && ctx.Err() == nil {
				c.log.Error("requeued plan failed; retrying", "err", err, "retry-in", requeueRetry)
				c.batch.mu.Lock()
				c.batch.requeue = requeueRetry
				c.batch.mu.Unlock()
			}
		}
	}
}

// startRequeue runs the requeue loop until ctx ends; the returned func
// stops it and waits for it.
func (c *Controller) startRequeue(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.runRequeue(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// RequeueAfter is the wait the last plan asked for before the next one
// (0: none).
func (c *Controller) RequeueAfter() time.Duration {
	c.batch.mu.Lock()
	defer c.batch.mu.Unlock()
	return c.batch.requeue
}

// Jobs lists every Job with its computed status, from the last plan.
func (c *Controller) Jobs(context.Context) ([]api.JobView, error) {
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	if last == nil || last.Jobs == nil {
		return []api.JobView{}, nil
	}
	return last.Jobs, nil
}

// CronJobs lists every CronJob with its status, from the last plan.
func (c *Controller) CronJobs(context.Context) ([]api.CronJobView, error) {
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	if last == nil || last.CronJobs == nil {
		return []api.CronJobView{}, nil
	}
	return last.CronJobs, nil
}

// CreateJob runs a CronJob's job template now, as `kubectl create job
// --from=cronjob/NAME` does. Errors wrap errdefs.ErrNotFound (no such
// CronJob), ErrAlreadyExists (the name is taken) or ErrInvalidArgument.
func (c *Controller) CreateJob(ctx context.Context, req api.CreateJobRequest) (api.JobView, error) {
	st, err := c.addManualJob(ctx, req)
	if err != nil {
		return api.JobView{}, err
	}
	if _, err := c.replan(ctx); err != nil {
		return api.JobView{}, err
	}
	key := planner.JobKey(&st.Job)
	c.mu.Lock()
	last, commit := c.last, c.commit
	c.mu.Unlock()
	if last != nil {
		for _, v := range last.Jobs {
			if planner.JobKey(&v.Job) == key {
				return v, nil
			}
		}
	}
	return api.JobView{Job: st.Job, Commit: commit}, nil
}

// addManualJob creates and persists a manual Job's state under the plan
// lock, so no plan running meanwhile drops it.
func (c *Controller) addManualJob(ctx context.Context, req api.CreateJobRequest) (planner.JobState, error) {
	c.planMu.Lock()
	defer c.planMu.Unlock()
	c.mu.Lock()
	objs := c.objects
	c.mu.Unlock()
	jobs, crons, err := c.batchStates(ctx)
	if err != nil {
		return planner.JobState{}, err
	}
	st, err := planner.NewManualJob(objs, jobs, req, c.cfg.Now())
	if err != nil {
		return planner.JobState{}, fmt.Errorf("create job: %w", err)
	}
	if jobs == nil {
		jobs = map[string]planner.JobState{}
	}
	jobs[planner.JobKey(&st.Job)] = st
	if err := c.putBatchStates(ctx, jobs, crons); err != nil {
		return planner.JobState{}, err
	}
	c.log.Info("job created by hand", "job", planner.JobKey(&st.Job), "from", "cronjob/"+req.FromCronJob)
	return st, nil
}
