package nodeagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/nodeagent/internal/backoff"
)

// Agent runs one node. Create it with New and run it with Run, once.
type Agent struct {
	cfg    Config
	rt     Runtime
	log    *slog.Logger
	runner *runner
	crash  backoffPolicy // container restart and retry backoff
	retry  backoffPolicy // server request retries
	now    func() time.Time
	net    Network // nil: host network
	probes *probeManager

	kick      chan struct{} // reconcile now
	reportNow chan struct{} // report now
	actions   sync.WaitGroup
	saveMu    sync.Mutex // orders state.json writes

	mu         sync.Mutex
	st         *agentState
	desired    *api.NodeDesired // decoded st.Desired, nil before the first
	inflight   map[string]bool  // container IDs with an action running
	doneGen    uint64           // actions finished so far
	lastStatus []byte           // last status seen by reconcile, sans time
	client     *client
	// inflightPods counts the running actions per pod UID; a pod with
	// actions keeps its network attachment.
	inflightPods map[string]int
	// netDigest is the digest whose network was synced last, at netSynced;
	// netErr the last sync error, logged once.
	netDigest string
	netSynced time.Time
	netErr    string
}

// New validates cfg, applies defaults and returns an agent using rt.
func New(cfg Config, rt Runtime) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("node agent config: %w", err)
	}
	if rt == nil {
		return nil, errors.New("node agent: no container runtime given")
	}
	cfg = cfg.withDefaults()
	log := cfg.Log.With("component", "nodeagent", "node", cfg.Name)
	a := &Agent{
		cfg:          cfg,
		rt:           rt,
		log:          log,
		net:          cfg.Network,
		crash:        backoffPolicy{Base: cfg.RestartBackoff, Max: cfg.MaxRestartBackoff},
		retry:        backoffPolicy{Base: 500 * time.Millisecond, Max: 30 * time.Second},
		now:          time.Now,
		kick:         make(chan struct{}, 1),
		reportNow:    make(chan struct{}, 1),
		inflight:     map[string]bool{},
		inflightPods: map[string]int{},
	}
	a.probes = newProbeManager(probeDeps{
		exec: rt, log: log, now: func() time.Time { return a.now() },
		target: a.probeTarget, publish: a.recordProbes, kill: a.killUnhealthy,
	})
	a.runner = &runner{
		rt: rt,
		hooks: newHooks(hookDeps{
			rt: rt, net: cfg.Network, podDir: filepath.Join(cfg.DataDir, "pods"),
			services: a.services, recordIP: a.recordPodIP, probes: a.probes,
			secrets: cfg.Secrets, secretRefs: a.secretRefs,
		}),
		logDir: filepath.Join(cfg.DataDir, "logs"),
		log:    log,
	}
	return a, nil
}

// Run loads the local state, reconciles from it at once (pods keep running
// while the server is unreachable), then joins or reconnects to the server,
// long-polls the desired state and reports status until ctx ends. It
// returns nil when ctx ends, and an error only when the data dir is
// unusable. Containers are left running: stopping the agent is not killing
// its pods.
func (a *Agent) Run(ctx context.Context) error {
	if err := os.MkdirAll(a.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("node agent data dir: %w", err)
	}
	st, err := loadState(a.cfg.DataDir)
	if err != nil {
		// A torn or foreign state file must not keep the node down: set it
		// aside for inspection and start empty; the server resends the
		// desired state and running containers are adopted by their labels.
		bad := filepath.Join(a.cfg.DataDir, stateFileName+".bad")
		a.log.Error("agent state unreadable; starting without it", "err", err, "moved_to", bad)
		if rerr := os.Rename(filepath.Join(a.cfg.DataDir, stateFileName), bad); rerr != nil {
			return fmt.Errorf("node agent state: %w (and setting it aside failed: %v)", err, rerr)
		}
		st = newState()
	}
	desired, _ := st.desired() // checked by loadState
	a.mu.Lock()
	a.st, a.desired = st, desired
	a.mu.Unlock()
	if desired != nil {
		a.log.Info("resuming from stored desired state", "digest", st.Digest, "commit", desired.Commit, "pods", len(desired.Pods))
	}

	var loops sync.WaitGroup
	loops.Go(func() { a.reconcileLoop(ctx) })
	loops.Go(func() { a.pullLoop(ctx) })
	loops.Go(func() { a.reportLoop(ctx) })
	loops.Go(func() { a.runSecrets(ctx) })
	<-ctx.Done()
	loops.Wait()
	a.actions.Wait()
	a.probes.wait()
	a.persist()
	if c := a.getClient(); c != nil {
		c.hc.CloseIdleConnections()
	}
	return nil
}

// reconcileLoop reconciles at once, then on every kick and resync tick.
func (a *Agent) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.ResyncInterval)
	defer t.Stop()
	for {
		a.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.kick:
		}
	}
}

// reconcile lists the runtime's containers, plans and starts the actions
// not already running, and asks for a report when the status changed.
func (a *Agent) reconcile(ctx context.Context) {
	// The service table goes first: a pod the new document removes must
	// leave the endpoints before its containers are stopped below.
	a.syncNetwork(ctx)
	attached := a.attached(ctx)
	a.mu.Lock()
	gen := a.doneGen
	a.mu.Unlock()
	actual, err := a.rt.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Error("list containers", "err", err)
		}
		return
	}
	now := a.now()
	a.mu.Lock()
	if a.doneGen != gen {
		// An action finished after List: plan again with a fresh list
		// rather than act on a stale one.
		a.mu.Unlock()
		signal(a.kick)
		return
	}
	pods := a.desiredPodsLocked()
	changed := a.trackPodsLocked(pods, actual, now)
	acts := plan(planInput{Desired: pods, Actual: actual, Records: a.st.Containers, Now: now, Backoff: a.crash})
	a.probes.sync(ctx, pods, actual, a.st.Containers, a.inflight)
	for _, act := range acts {
		if a.inflight[act.ID] || ctx.Err() != nil {
			continue
		}
		a.inflight[act.ID] = true
		if act.Pod != nil {
			a.inflightPods[act.Pod.UID]++
		}
		a.log.Info("container action", "action", act.Kind.String(), "container", act.ID, "reason", act.Reason)
		a.actions.Go(func() { a.execute(ctx, act) })
	}
	status := a.statusLocked(actual, now)
	status.ReportedAt = time.Time{}
	b, _ := json.Marshal(status)
	statusChanged := string(b) != string(a.lastStatus)
	a.lastStatus = b
	garbage := a.unusedAttachmentsLocked(attached, pods, actual)
	a.mu.Unlock()
	a.detach(ctx, garbage)
	if changed {
		a.persist()
	}
	if statusChanged {
		signal(a.reportNow)
	}
}

// trackPodsLocked records when each desired pod was first seen and prunes
// records of pods and containers that are neither desired nor present. It
// reports whether anything changed.
func (a *Agent) trackPodsLocked(pods []api.Pod, actual []ContainerInfo, now time.Time) bool {
	changed := false
	wantPods, keep := map[string]bool{}, map[string]bool{}
	for i := range pods {
		p := &pods[i]
		wantPods[p.UID] = true
		if _, ok := a.st.Pods[p.UID]; !ok {
			start := now
			for _, c := range actual { // an adopted pod started when its containers did
				if c.Labels[LabelPodUID] == p.UID && !c.StartedAt.IsZero() && c.StartedAt.Before(start) {
					start = c.StartedAt
				}
			}
			a.st.Pods[p.UID] = podRecord{StartTime: start}
			changed = true
		}
		for _, c := range p.Spec.Containers {
			keep[ContainerID(p.Namespace, p.Name, p.UID, c.Name)] = true
		}
	}
	for _, c := range actual {
		keep[c.ID] = true
	}
	for uid := range a.st.Pods {
		if !wantPods[uid] {
			delete(a.st.Pods, uid)
			changed = true
		}
	}
	for id := range a.st.Containers {
		if !keep[id] && !a.inflight[id] {
			delete(a.st.Containers, id)
			changed = true
		}
	}
	return changed
}

// execute runs one action, records its outcome and asks for a reconcile.
func (a *Agent) execute(ctx context.Context, act action) {
	out := a.runner.run(ctx, act)
	now := a.now()
	shutdown := ctx.Err() != nil
	a.mu.Lock()
	delete(a.inflight, act.ID)
	if act.Pod != nil {
		if a.inflightPods[act.Pod.UID]--; a.inflightPods[act.Pod.UID] <= 0 {
			delete(a.inflightPods, act.Pod.UID)
		}
	}
	a.doneGen++
	if !shutdown || out.Err == nil {
		recordOutcome(a.st, act, out, now, a.crash)
	}
	a.mu.Unlock()
	switch {
	case out.Err != nil && shutdown:
		a.log.Info("container action interrupted by agent shutdown", "action", act.Kind.String(), "container", act.ID)
	case out.Err != nil:
		a.log.Error("container action failed; will retry", "action", act.Kind.String(), "container", act.ID, "err", out.Err)
	default:
		a.log.Info("container action done", "action", act.Kind.String(), "container", act.ID)
	}
	a.persist()
	signal(a.kick)
}

// pullLoop connects to the server, then long-polls the desired state,
// applying each new document, until ctx ends. Errors are logged and
// retried with jittered exponential backoff.
func (a *Agent) pullLoop(ctx context.Context) {
	failures := 0
	fail := func(msg string, err error) bool {
		d := backoff.Jitter(a.retry.delay(failures))
		failures++
		a.log.Error(msg, "err", err, "retry_in", d.Round(time.Millisecond))
		return backoff.Sleep(ctx, d)
	}
	var c *client
	for c == nil {
		var err error
		if c, err = a.connect(ctx); err != nil && (ctx.Err() != nil || !fail("connect to server", err)) {
			return
		}
	}
	a.mu.Lock()
	a.client = c
	a.mu.Unlock()
	// Sessions (moor logs) reach the node over its own outbound
	// connection: the server cannot dial nodes behind NAT.
	var sessions sync.WaitGroup
	defer sessions.Wait()
	sessions.Go(func() { a.serveSessions(ctx, c) })
	signal(a.reportNow)
	failures = 0
	for ctx.Err() == nil {
		since := a.digest()
		start := time.Now()
		res, err := c.pullDesired(ctx, since, a.cfg.PollWait)
		if err != nil {
			if ctx.Err() != nil || !fail("pull desired state", err) {
				return
			}
			continue
		}
		failures = 0
		if res.Changed && res.Digest != since {
			a.apply(res)
			continue
		}
		// A server that answers "unchanged" long before the wait is over
		// must not turn this loop into a busy one.
		if rest := a.cfg.PollWait/2 - time.Since(start); rest > 0 && !backoff.Sleep(ctx, rest) {
			return
		}
	}
}

// connect loads the stored credentials or joins with the token.
func (a *Agent) connect(ctx context.Context) (*client, error) {
	creds, err := loadCredentials(a.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if creds == nil {
		a.log.Info("joining server", "server", a.cfg.Server)
		if creds, err = join(ctx, &a.cfg); err != nil {
			return nil, err
		}
		a.log.Info("joined server; credentials stored", "dir", a.cfg.DataDir)
	}
	return newClient(a.cfg.Server, a.cfg.Name, creds)
}

// apply makes a pulled document the applied one, persists it and
// reconciles.
func (a *Agent) apply(res pullResult) {
	a.mu.Lock()
	a.st.Desired, a.st.Digest = res.Body, res.Digest
	a.desired = res.Doc
	a.mu.Unlock()
	a.log.Info("applying desired state", "digest", res.Digest, "commit", res.Doc.Commit, "pods", len(res.Doc.Pods))
	a.persist()
	signal(a.kick)
}

// reportLoop reports status when asked and every ReportInterval.
func (a *Agent) reportLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.ReportInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.reportNow:
		}
		c := a.getClient()
		if c == nil {
			continue // not connected yet; connecting asks for a report
		}
		st, err := a.Status(ctx)
		if err != nil {
			a.log.Error("build status", "err", err)
			continue
		}
		if err := c.report(ctx, &st); err != nil && ctx.Err() == nil {
			a.log.Warn("report status; will retry", "err", err)
		}
	}
}

// Status builds the node's status from the runtime and the local state.
func (a *Agent) Status(ctx context.Context) (api.NodeStatus, error) {
	actual, err := a.rt.List(ctx)
	if err != nil {
		return api.NodeStatus{}, fmt.Errorf("list containers: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st == nil {
		return api.NodeStatus{}, errors.New("node agent is not running")
	}
	return a.statusLocked(actual, a.now()), nil
}

func (a *Agent) statusLocked(actual []ContainerInfo, now time.Time) api.NodeStatus {
	in := statusInput{
		Node:        a.cfg.Name,
		NodeIP:      a.cfg.NodeIP,
		HostNetwork: a.net == nil,
		Digest:      a.st.Digest,
		Pods:        a.desiredPodsLocked(),
		Actual:      actual,
		Records:     a.st.Containers,
		PodRecords:  a.st.Pods,
		Now:         now,
	}
	if a.desired != nil {
		in.Commit = a.desired.Commit
	}
	st := buildStatus(in)
	st.Secrets = secretStatuses(a.desired, a.cfg.Secrets)
	return st
}

func (a *Agent) desiredPodsLocked() []api.Pod {
	if a.desired == nil {
		return nil
	}
	return a.desired.Pods
}

func (a *Agent) digest() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.Digest
}

func (a *Agent) getClient() *client {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.client
}

// persist writes the current state; failures are logged, since the agent
// keeps working from memory and retries at the next change.
func (a *Agent) persist() {
	a.saveMu.Lock()
	defer a.saveMu.Unlock()
	a.mu.Lock()
	b, err := a.st.encode()
	a.mu.Unlock()
	if err == nil {
		err = writeState(a.cfg.DataDir, b)
	}
	if err != nil {
		a.log.Error("save agent state", "err", err)
	}
}

// signal wakes a loop without blocking; wakes coalesce.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
