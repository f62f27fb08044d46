package nodeagent

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// This file is the pure core of container probes: when each probe is due
// and what a run of results means, with Kubernetes semantics. It does no
// I/O, owns no clock and starts no goroutines; probe_hook.go runs the
// checks (probe_check.go) and feeds the results back.

// probeKind is one of a container's three probes.
type probeKind int

const (
	probeStartup probeKind = iota
	probeLiveness
	probeReadiness
	numProbeKinds
)

func (k probeKind) String() string {
	switch k {
	case probeStartup:
		return "startup"
	case probeLiveness:
		return "liveness"
	case probeReadiness:
		return "readiness"
	}
	return fmt.Sprintf("probe(%d)", int(k))
}

// probeOf returns the container's probe of kind k, nil when it has none.
func probeOf(c *corev1.Container, k probeKind) *corev1.Probe {
	switch k {
	case probeStartup:
		return c.StartupProbe
	case probeLiveness:
		return c.LivenessProbe
	case probeReadiness:
		return c.ReadinessProbe
	}
	return nil
}

// hasProbes reports whether the container has any probe.
func hasProbes(c *corev1.Container) bool {
	return c.StartupProbe != nil || c.LivenessProbe != nil || c.ReadinessProbe != nil
}

// probeOutcome is what one check of a probe found.
type probeOutcome int

const (
	probeNone    probeOutcome = iota // no check yet
	probeSuccess                     // the check passed
	probeFailure                     // the check failed (exit code, HTTP status, refused, timed out)
	// probeError: the check could not be made (the exec did not start,
	// the pod has no IP yet). As in the kubelet, it is thrown away: it
	// neither passes nor fails the probe.
	probeError
)

func (o probeOutcome) String() string {
	switch o {
	case probeNone:
		return "none"
	case probeSuccess:
		return "success"
	case probeFailure:
		return "failure"
	case probeError:
		return "error"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Kubernetes' probe defaults, for fields left at 0 (moor's manifests are
// not defaulted).
const (
	defaultProbePeriod           = 10 // seconds
	defaultProbeTimeout          = 1  // seconds
	defaultProbeSuccessThreshold = 1
	defaultProbeFailureThreshold = 3
)

// probeParams is a probe's timing and thresholds, defaults applied.
type probeParams struct {
	InitialDelay, Period, Timeout      time.Duration
	SuccessThreshold, FailureThreshold int
}

// probeParamsOf converts p's fields with second as the length of one of its
// seconds (tests shorten it). Liveness and startup probes pass on one
// success, whatever they say.
func probeParamsOf(k probeKind, p *corev1.Probe, second time.Duration) probeParams {
	secs := func(v, def int32) time.Duration {
		if v <= 0 {
			v = def
		}
		return time.Duration(v) * second
	}
	count := func(v, def int32) int {
		if v <= 0 {
			v = def
		}
		return int(v)
	}
	pp := probeParams{
		InitialDelay:     time.Duration(max(p.InitialDelaySeconds, 0)) * second,
		Period:           secs(p.PeriodSeconds, defaultProbePeriod),
		Timeout:          secs(p.TimeoutSeconds, defaultProbeTimeout),
		SuccessThreshold: count(p.SuccessThreshold, defaultProbeSuccessThreshold),
		FailureThreshold: count(p.FailureThreshold, defaultProbeFailureThreshold),
	}
	if k != probeReadiness {
		pp.SuccessThreshold = 1
	}
	return pp
}

// probeState is one probe of one container run.
type probeState struct {
	params   probeParams
	next     time.Time // when the next check is due
	inFlight bool      // a check has been handed out and not observed
	last     probeOutcome
	run      int  // consecutive checks with outcome last
	passing  bool // the published result
}

// prober is the probe state of one run of a container (from one start to
// its exit), with Kubernetes semantics:
//   - a probe is first checked InitialDelay after the container started,
//     then every Period (a check that takes longer delays the next one);
//   - its published result flips after SuccessThreshold consecutive
//     successes or FailureThreshold consecutive failures; errors count as
//     neither;
//   - until the startup probe has passed, liveness and readiness are not
//     checked; once it has, it is not checked again, and the other two
//     are checked at once (when past their initial delay);
//   - the container is not ready until its readiness probe passes, is
//     alive until its liveness probe fails, and has not started until its
//     startup probe passes;
//   - a liveness or startup probe that fails asks for the container to be
//     killed, after which nothing is checked until the run ends.
type prober struct {
	probes [numProbeKinds]*probeState
	onHold bool
}

// proberResume is what a restarted agent recorded about a run it adopts.
type proberResume struct {
	Started, Ready bool
}

// newProber returns the prober of a container run that started at
// startedAt; params[k] is nil for a probe the container does not have.
// resume, when not nil, restores the published results recorded for this
// run before an agent restart, so an adopted container stays ready.
func newProber(params [numProbeKinds]*probeParams, startedAt time.Time, resume *proberResume) *prober {
	p := &prober{}
	for k, pp := range params {
		if pp == nil {
			continue
		}
		p.probes[k] = &probeState{params: *pp, next: startedAt.Add(pp.InitialDelay)}
	}
	if s := p.probes[probeLiveness]; s != nil {
		s.passing = true // a container is alive until its probe says otherwise
	}
	if resume != nil {
		if s := p.probes[probeStartup]; s != nil {
			s.passing = resume.Started
		}
		if s := p.probes[probeReadiness]; s != nil {
			s.passing = resume.Ready && p.started()
		}
	}
	return p
}

// started reports whether the container has started: its startup probe
// has passed, or it has none.
func (p *prober) started() bool {
	s := p.probes[probeStartup]
	return s == nil || s.passing
}

// ready reports whether the container is ready: started, and its
// readiness probe passes (or it has none).
func (p *prober) ready() bool {
	s := p.probes[probeReadiness]
	return p.started() && (s == nil || s.passing)
}

// active reports whether probe k is checked in the current phase.
func (p *prober) active(k probeKind) bool {
	if p.probes[k] == nil || p.onHold {
		return false
	}
	if k == probeStartup {
		return !p.started()
	}
	return p.started()
}

// due hands out the probes to check now and marks them in flight (each
// must be answered by observe), and returns when the next one not in
// flight is due (zero: none is, until an observe).
func (p *prober) due(now time.Time) (run []probeKind, wake time.Time) {
	for k := range numProbeKinds {
		s := p.probes[k]
		if !p.active(k) || s.inFlight {
			continue
		}
		if now.Before(s.next) {
			if wake.IsZero() || s.next.Before(wake) {
				wake = s.next
			}
			continue
		}
		run = append(run, k)
		s.inFlight = true
		s.next = now.Add(s.params.Period)
	}
	return run, wake
}

// probeEvent is what an observed outcome changed.
type probeEvent struct {
	// Flipped is set when the probe's published result changed to
	// Passing.
	Flipped, Passing bool
	// Changed is set when the container's Started or Ready changed.
	Changed        bool
	Started, Ready bool
	// Kill is set when a liveness or startup probe failed: the container
	// must be killed (and restarted per its pod's restart policy).
	Kill bool
	// Count is the number of consecutive outcomes that led to a flip.
	Count int
}

// observe records the outcome of probe k's check.
func (p *prober) observe(k probeKind, o probeOutcome) probeEvent {
	s := p.probes[k]
	if s == nil {
		return probeEvent{}
	}
	s.inFlight = false
	if !p.active(k) || o == probeError || o == probeNone {
		return probeEvent{}
	}
	if o == s.last {
		s.run++
	} else {
		s.last, s.run = o, 1
	}
	var passing bool
	switch {
	case o == probeSuccess && s.run >= s.params.SuccessThreshold:
		passing = true
	case o == probeFailure && s.run >= s.params.FailureThreshold:
		passing = false
	default:
		return probeEvent{}
	}
	startedBefore, readyBefore := p.started(), p.ready()
	ev := probeEvent{Flipped: passing != s.passing, Passing: passing, Count: s.run}
	s.passing = passing
	if !passing && (k == probeLiveness || k == probeStartup) {
		p.onHold = true
		ev.Kill = true
		s.run = 0
	}
	ev.Started, ev.Ready = p.started(), p.ready()
	ev.Changed = ev.Started != startedBefore || ev.Ready != readyBefore
	return ev
}
