package nodeagent

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

// probeRun is one run of one container (from a start to its exit) whose
// probes are being checked.
type probeRun struct {
	ID        string
	Pod       *api.Pod
	Container *corev1.Container
	StartedAt time.Time
	// parent is the context the run was started under (the agent's); a
	// kill uses it, since stopping the run must not abort the kill.
	parent context.Context
	cancel context.CancelFunc
}

// probeDeps is what the probe manager needs from the agent.
type probeDeps struct {
	exec probeExecer
	log  *slog.Logger
	now  func() time.Time
	// second is the length of a probe second; tests shorten it.
	second time.Duration
	// target returns where pod uid's network probes go (its IP, or
	// 127.0.0.1 in host-network mode), invalid when not known yet.
	target func(uid string) netip.Addr
	// publish records a run's Started and Ready and reports them.
	publish func(r *probeRun, started, ready bool)
	// kill stops a run whose liveness or startup probe failed, recording
	// reason and message as its termination's.
	kill func(ctx context.Context, r *probeRun, reason, message string)
}

// probeManager runs the probes of every running container that has any:
// one goroutine per run, owning the run's prober (probe.go), with one
// goroutine per check in flight. Runs are started by the probe hook after
// a container starts and by sync for adopted containers, and stopped by
// the probe hook before a kill and by sync when a container is not running
// any more. Every goroutine ends with its run's context.
type probeManager struct {
	d            probeDeps
	probeChecker *probeChecker

	mu   sync.Mutex
	runs map[string]*probeRun // by container ID
	wg   sync.WaitGroup
}

func newProbeManager(d probeDeps) *probeManager {
	if d.second == 0 {
		d.second = time.Second
	}
	return &probeManager{d: d, probeChecker: newProbeChecker(d.exec), runs: map[string]*probeRun{}}
}

// start begins checking the probes of container c of pod, running as id
// since startedAt, replacing any run of id. resume restores the results an
// earlier agent recorded for this run. A container without probes stops
// any run of id.
func (m *probeManager) start(ctx context.Context, pod *api.Pod, c *corev1.Container, id string, startedAt time.Time, resume *proberResume) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopLocked(id)
	if !hasProbes(c) || ctx.Err() != nil {
		return
	}
	var params [numProbeKinds]*probeParams
	for k := range numProbeKinds {
		if p := probeOf(c, k); p != nil {
			pp := probeParamsOf(k, p, m.d.second)
			params[k] = &pp
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	r := &probeRun{ID: id, Pod: pod, Container: c, StartedAt: startedAt, parent: ctx, cancel: cancel}
	m.runs[id] = r
	p := newProber(params, startedAt, resume)
	m.d.log.Debug("probes started", "container", id, "started_at", startedAt, "resumed", resume != nil)
	m.wg.Go(func() { m.loop(runCtx, r, p) })
}

// stop ends the run of id, if any, without waiting for its goroutines.
func (m *probeManager) stop(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopLocked(id)
}

func (m *probeManager) stopLocked(id string) {
	if r, ok := m.runs[id]; ok {
		r.cancel()
		delete(m.runs, id)
	}
}

// current reports whether r is still id's run.
func (m *probeManager) current(r *probeRun) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runs[r.ID] == r
}

// wait waits for every goroutine to end; call it after the context of
// every start has ended.
func (m *probeManager) wait() { m.wg.Wait() }

// sync makes the runs match the containers: a run for every running
// container of a desired pod that has probes, started at the container's
// start time (resuming what records says about that run), and none for
// anything else. Containers with an action in flight are left alone: the
// action's hooks start and stop their runs.
func (m *probeManager) sync(ctx context.Context, pods []api.Pod, actual []ContainerInfo, records map[string]containerRecord, inflight map[string]bool) {
	type want struct {
		pod  *api.Pod
		c    *corev1.Container
		info *ContainerInfo
	}
	infos := make(map[string]*ContainerInfo, len(actual))
	for i := range actual {
		infos[actual[i].ID] = &actual[i]
	}
	wanted := map[string]want{}
	for pi := range pods {
		p := &pods[pi]
		hash := specHash(p)
		for ci := range p.Spec.Containers {
			c := &p.Spec.Containers[ci]
			id := ContainerID(p.Namespace, p.Name, p.UID, c.Name)
			info := infos[id]
			if !hasProbes(c) || info == nil || info.State != StateRunning ||
				info.Labels[LabelPodUID] != p.UID || info.Labels[LabelSpecHash] != hash {
				continue
			}
			wanted[id] = want{pod: p, c: c, info: info}
		}
	}
	m.mu.Lock()
	var stale []string
	for id, r := range m.runs {
		if inflight[id] {
			continue
		}
		if w, ok := wanted[id]; !ok || !w.info.StartedAt.Equal(r.StartedAt) {
			stale = append(stale, id)
		}
	}
	for _, id := range stale {
		m.d.log.Debug("probes stopped: container not running", "container", id)
		m.stopLocked(id)
	}
	var starts []want
	for id, w := range wanted {
		if !inflight[id] && m.runs[id] == nil {
			starts = append(starts, w)
		}
	}
	m.mu.Unlock()
	for _, w := range starts {
		var resume *proberResume
		rec := records[w.info.ID]
		if rec.matches(w.pod.UID, specHash(w.pod)) && rec.Probe.forRun(w.info.StartedAt) {
			resume = &proberResume{Started: rec.Probe.Started, Ready: rec.Probe.Ready}
		}
		m.start(ctx, w.pod, w.c, w.info.ID, w.info.StartedAt, resume)
	}
}

// probeCheckDone is a finished check.
type probeCheckDone struct {
	kind    probeKind
	outcome probeOutcome
	message string
}

// loop owns p: it hands out due checks, each in a goroutine, and acts on
// their outcomes until ctx ends.
func (m *probeManager) loop(ctx context.Context, r *probeRun, p *prober) {
	results := make(chan probeCheckDone, numProbeKinds) // at most one check per kind in flight
	var checks sync.WaitGroup
	defer checks.Wait()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	lastErr := [numProbeKinds]string{}
	for {
		now := m.d.now()
		run, wake := p.due(now)
		for _, k := range run {
			pc := probeCheck{
				ID: r.ID, Container: r.Container, Probe: probeOf(r.Container, k),
				Timeout: p.probes[k].params.Timeout,
				Host:    m.d.target(r.Pod.UID),
			}
			checks.Go(func() {
				o, msg := m.probeChecker.check(ctx, pc)
				results <- probeCheckDone{kind: k, outcome: o, message: msg}
			})
		}
		var tick <-chan time.Time
		if !wake.IsZero() {
			timer.Reset(wake.Sub(now))
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case d := <-results:
			if ctx.Err() != nil {
				return
			}
			ev := p.observe(d.kind, d.outcome)
			m.report(r, d, ev, &lastErr[d.kind])
			if ev.Changed && m.current(r) {
				m.d.publish(r, ev.Started, ev.Ready)
			}
			if ev.Kill && m.current(r) {
				reason, msg := probeKillReason(r, d, ev)
				m.d.log.Warn("container failed its "+d.kind.String()+" probe; killing it, to be restarted per the pod's restart policy",
					"container", r.ID, "probe", d.kind.String(), "failures", ev.Count, "message", d.message)
				m.d.kill(r.parent, r, reason, msg)
			}
		}
	}
}

// report logs a check: each failure at debug level, result flips and
// errors (once per distinct message) at info level.
func (m *probeManager) report(r *probeRun, d probeCheckDone, ev probeEvent, lastErr *string) {
	attrs := []any{"container", r.ID, "probe", d.kind.String()}
	switch {
	case d.outcome == probeError:
		if d.message != *lastErr {
			m.d.log.Info("probe could not be checked; the result is ignored", append(attrs, "err", d.message)...)
		}
		*lastErr = d.message
		return
	case ev.Flipped && ev.Passing:
		m.d.log.Info("probe passes", attrs...)
	case ev.Flipped:
		m.d.log.Info("probe fails", append(attrs, "failures", ev.Count, "message", d.message)...)
	case d.outcome == probeFailure:
		m.d.log.Debug("probe check failed", append(attrs, "message", d.message)...)
	}
	*lastErr = ""
}

// Termination reasons of containers the agent killed.
const (
	reasonLivenessProbeFailed = "LivenessProbeFailed"
	reasonStartupProbeFailed  = "StartupProbeFailed"
)

// probeKillReason is the termination reason and message of a run killed by a
// failed probe.
func probeKillReason(r *probeRun, d probeCheckDone, ev probeEvent) (reason, message string) {
	reason = reasonLivenessProbeFailed
	if d.kind == probeStartup {
		reason = reasonStartupProbeFailed
	}
	message = "container " + r.Container.Name + " failed its " + d.kind.String() + " probe"
	if ev.Count > 1 {
		message += " " + strconv.Itoa(ev.Count) + " times in a row"
	}
	message += " and was killed"
	if d.message != "" {
		message += ": " + d.message
	}
	return reason, message
}

// probeHook starts a container's probes once it runs and stops them before
// it is killed.
type probeHook struct {
	m    *probeManager
	list probeLister
}

// probeLister is the part of Runtime the probe hook needs.
type probeLister interface {
	List(ctx context.Context) ([]ContainerInfo, error)
}

var (
	_ poststartHook = (*probeHook)(nil)
	_ killHook      = (*probeHook)(nil)
)

func (h *probeHook) Name() string { return "probes" }

// Poststart starts the probes, timed from the container's start as the
// runtime recorded it.
func (h *probeHook) Poststart(ctx context.Context, req *poststartRequest) error {
	if !hasProbes(req.Container) {
		return nil
	}
	startedAt := h.m.d.now()
	infos, err := h.list.List(ctx)
	if err != nil {
		h.m.d.log.Warn("probes: list containers to find the start time; using now", "container", req.ID, "err", err)
	}
	for _, info := range infos {
		if info.ID == req.ID && info.State == StateRunning {
			startedAt = info.StartedAt
		}
	}
	h.m.start(ctx, req.Pod, req.Container, req.ID, startedAt, nil)
	return nil
}

// Prekill stops the probes, so a container being stopped is not probed.
func (h *probeHook) Prekill(_ context.Context, req *killRequest) error {
	h.m.stop(req.ID)
	return nil
}
