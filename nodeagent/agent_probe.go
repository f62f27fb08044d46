package nodeagent

import (
	"context"
	"net/netip"
)

// The agent's side of probes (probe_hook.go): where they go, and what
// their results change.

// probeTarget is where pod uid's network probes go: 127.0.0.1 in
// host-network mode, else the pod's IP (invalid until it has one).
func (a *Agent) probeTarget(uid string) netip.Addr {
	if a.net == nil {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.Pods[uid].IP
}

// recordProbes records a run's Started and Ready in its container record
// (which status reads and state.json keeps) and reports the change at once.
func (a *Agent) recordProbes(r *probeRun, started, ready bool) {
	pr := &probeRecord{StartedAt: r.StartedAt, Started: started, Ready: ready}
	a.mu.Lock()
	rec := a.probeRecordLocked(r)
	if ready {
		pr.ReadyAt = a.now()
		if old := rec.Probe; old.forRun(r.StartedAt) && old.Ready {
			pr.ReadyAt = old.ReadyAt // still ready: keep when it became so
		}
	}
	changed := rec.Probe == nil || *rec.Probe != *pr
	rec.Probe = pr
	a.st.Containers[r.ID] = rec
	a.mu.Unlock()
	if !changed {
		return
	}
	a.log.Info("container readiness changed", "container", r.ID, "started", started, "ready", ready)
	a.persist()
	signal(a.reportNow)
}

// probeRecordLocked returns the record of r's container, a new one when it
// has none for r's pod incarnation (the first result of a new container
// can come before the record of its creation).
func (a *Agent) probeRecordLocked(r *probeRun) containerRecord {
	hash := specHash(r.Pod)
	rec := a.st.Containers[r.ID]
	if !rec.matches(r.Pod.UID, hash) {
		rec = containerRecord{PodUID: r.Pod.UID, SpecHash: hash, GraceSeconds: int64(podGrace(r.Pod).Seconds())}
	}
	return rec
}

// killUnhealthy stops a container whose liveness or startup probe failed,
// within its pod's grace period, after recording why; the reconcile loop
// then restarts it per the pod's restart policy, with the crash backoff,
// and status shows the reason as the run's termination reason. A container
// with another action in flight is left to that action.
func (a *Agent) killUnhealthy(ctx context.Context, r *probeRun, reason, message string) {
	a.mu.Lock()
	if a.inflight[r.ID] {
		a.mu.Unlock()
		return
	}
	a.inflight[r.ID] = true
	rec := a.probeRecordLocked(r)
	rec.Killed = &killRecord{StartedAt: r.StartedAt, Reason: reason, Message: message}
	a.st.Containers[r.ID] = rec
	a.mu.Unlock()
	a.persist()

	grace := podGrace(r.Pod)
	a.log.Info("container action", "action", "stop", "container", r.ID, "reason", message, "grace", grace)
	err := a.rt.Stop(ctx, r.ID, grace)

	a.mu.Lock()
	delete(a.inflight, r.ID)
	a.doneGen++
	a.mu.Unlock()
	switch {
	case err != nil && ctx.Err() != nil:
		a.log.Info("stop of an unhealthy container interrupted by agent shutdown", "container", r.ID)
	case err != nil:
		// Still running: forget the kill and probe it afresh.
		a.log.Error("stop unhealthy container; probing it again", "container", r.ID, "err", err)
		a.mu.Lock()
		if rec, ok := a.st.Containers[r.ID]; ok && rec.Killed != nil && rec.Killed.StartedAt.Equal(r.StartedAt) {
			rec.Killed = nil
			a.st.Containers[r.ID] = rec
		}
		a.mu.Unlock()
		a.probes.stop(r.ID)
	default:
		a.log.Info("container action done", "action", "stop", "container", r.ID)
	}
	signal(a.kick)
}
