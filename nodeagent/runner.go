package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// runner executes plan's actions against the runtime, through the hooks.
// It keeps no state: outcomes are recorded by recordOutcome.
type runner struct {
	rt     Runtime
	hooks  []hook
	logDir string
	log    *slog.Logger
}

// outcome is what executing one action did.
type outcome struct {
	// Removed is set when the container (kill) or its exited run (restart)
	// was removed.
	Removed bool
	// Started is set when the container now runs.
	Started bool
	Err     error
}

// run executes a. It blocks for as long as the action takes (a kill waits
// up to the grace period), so the agent runs each action in its own
// goroutine.
func (r *runner) run(ctx context.Context, a action) outcome {
	switch a.Kind {
	case actCreate:
		return r.create(ctx, a)
	case actStart:
		return r.start(ctx, a)
	case actRestart:
		if err := r.rt.Remove(ctx, a.ID); err != nil {
			return outcome{Err: &waitingError{Reason: reasonRunContainerError,
				Err: fmt.Errorf("remove exited container %s before its restart: %w", a.ID, err)}}
		}
		// Keep the finished run's log for `moor logs --previous`.
		if err := rotateLog(r.logDir, a.ID); err != nil {
			r.log.Warn("the previous run's log is lost", "container", a.ID, "err", err)
		}
		out := r.create(ctx, a)
		out.Removed = true
		return out
	case actKill:
		return r.kill(ctx, a)
	}
	return outcome{Err: fmt.Errorf("unknown action %v for container %s", a.Kind, a.ID)}
}

// create runs the prestart hooks, then creates and starts the container.
func (r *runner) create(ctx context.Context, a action) outcome {
	c := a.Container
	spec := ContainerSpec{
		ID:         a.ID,
		Image:      c.Image,
		Command:    c.Command,
		Args:       c.Args,
		WorkingDir: c.WorkingDir,
		Labels:     containerLabels(a.Pod, c.Name),
		LogPath:    filepath.Join(r.logDir, a.ID+".log"),
	}
	req := &prestartRequest{Pod: a.Pod, Container: c, Spec: &spec}
	for _, h := range r.hooks {
		if ph, ok := h.(prestartHook); ok {
			if err := ph.Prestart(ctx, req, &prestartResponse{}); err != nil {
				return outcome{Err: fmt.Errorf("%s hook: %w", ph.Name(), err)}
			}
		}
	}
	if err := os.MkdirAll(r.logDir, 0o750); err != nil {
		return outcome{Err: &waitingError{Reason: reasonCreateContainerError, Err: fmt.Errorf("create log directory: %w", err)}}
	}
	if err := r.rt.Create(ctx, spec); err != nil {
		return outcome{Err: &waitingError{Reason: reasonCreateContainerError, Err: fmt.Errorf("create container %s: %w", a.ID, err)}}
	}
	return r.start(ctx, a)
}

// start starts a created container and runs the poststart hooks.
func (r *runner) start(ctx context.Context, a action) outcome {
	if err := r.rt.Start(ctx, a.ID); err != nil {
		return outcome{Err: &waitingError{Reason: reasonRunContainerError, Err: fmt.Errorf("start container %s: %w", a.ID, err)}}
	}
	req := &poststartRequest{Pod: a.Pod, Container: a.Container, ID: a.ID}
	for _, h := range r.hooks {
		if ph, ok := h.(poststartHook); ok {
			if err := ph.Poststart(ctx, req); err != nil {
				r.log.Warn("poststart hook failed", "hook", ph.Name(), "container", a.ID, "err", err)
			}
		}
	}
	return outcome{Started: true}
}

// kill runs the kill hooks, stops the container within its grace period
// and removes it.
func (r *runner) kill(ctx context.Context, a action) outcome {
	req := &killRequest{ID: a.ID, Pod: a.Pod, Grace: a.Grace}
	for _, h := range r.hooks {
		if kh, ok := h.(killHook); ok {
			if err := kh.Prekill(ctx, req); err != nil {
				r.log.Warn("prekill hook failed; stopping anyway", "hook", kh.Name(), "container", a.ID, "err", err)
			}
		}
	}
	if err := r.rt.Stop(ctx, a.ID, a.Grace); err != nil {
		return outcome{Err: fmt.Errorf("stop container %s: %w", a.ID, err)}
	}
	if err := r.rt.Remove(ctx, a.ID); err != nil {
		return outcome{Err: fmt.Errorf("remove container %s: %w", a.ID, err)}
	}
	return outcome{Removed: true}
}

// recordOutcome updates the container records after an action: restart
// counts and the last termination after a restart, and the retry backoff
// and waiting reason after a failure. Kills leave records alone; records of
// containers that are gone are pruned by the agent.
func recordOutcome(st *agentState, a action, out outcome, now time.Time, b backoffPolicy) {
	if a.Kind == actKill || a.Pod == nil {
		return
	}
	hash := specHash(a.Pod)
	rec := st.Containers[a.ID]
	if !rec.matches(a.Pod.UID, hash) {
		rec = containerRecord{PodUID: a.Pod.UID, SpecHash: hash}
	}
	rec.GraceSeconds = int64(podGrace(a.Pod) / time.Second)
	if a.Kind == actRestart && out.Removed && a.Exited != nil {
		t := terminationOf(a.Exited)
		rec.Killed.applyTo(&t)
		rec.Killed = nil
		rec.LastTermination = &t
		rec.CrashCount = crashIndex(rec, a.Exited) + 1
		rec.RestartCount++
	}
	if out.Err != nil {
		rec.Failures++
		rec.NextAttempt = now.Add(b.delay(rec.Failures - 1))
		rec.WaitingReason = reasonOf(out.Err)
		rec.WaitingMessage = out.Err.Error()
	} else {
		rec.Failures, rec.NextAttempt = 0, time.Time{}
		rec.WaitingReason, rec.WaitingMessage = "", ""
	}
	st.Containers[a.ID] = rec
}

// reasonOf is the waiting reason an action error carries.
func reasonOf(err error) string {
	var we *waitingError
	if errors.As(err, &we) {
		return we.Reason
	}
	return reasonCreateContainerError
}

// terminationOf describes the run that ended in info.
func terminationOf(info *ContainerInfo) termination {
	return termination{
		ExitCode:   int32(info.ExitCode),
		Reason:     exitReason(info.ExitCode),
		StartedAt:  info.StartedAt,
		FinishedAt: info.FinishedAt,
	}
}

// exitReason is the Kubernetes reason of a terminated container.
func exitReason(code uint32) string {
	if code == 0 {
		return "Completed"
	}
	return "Error"
}
