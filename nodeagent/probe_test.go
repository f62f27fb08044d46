package nodeagent

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// simulateProber runs a prober on a fake clock from t=0 to until, answering each
// check at once with the next outcome of its script (the last one repeats),
// and returns one line per check: "<t> <probe> <outcome>", then
// " -> passing" or " -> failing" when the probe's result flipped,
// " => started=<b> ready=<b>" when the container's changed, and " kill".
func simulateProber(p *prober, scripts map[probeKind][]probeOutcome, until time.Duration) []string {
	t0 := time.Unix(1_700_000_000, 0)
	now := t0
	used := map[probeKind]int{}
	var log []string
	for range 1000 {
		run, wake := p.due(now)
		for _, k := range run {
			script := scripts[k]
			o := script[min(used[k], len(script)-1)]
			used[k]++
			ev := p.observe(k, o)
			line := fmt.Sprintf("%s %s %s", now.Sub(t0), k, o)
			if ev.Flipped {
				line += map[bool]string{true: " -> passing", false: " -> failing"}[ev.Passing]
			}
			if ev.Changed {
				line += fmt.Sprintf(" => started=%t ready=%t", ev.Started, ev.Ready)
			}
			if ev.Kill {
				line += " kill"
			}
			log = append(log, line)
		}
		if len(run) > 0 {
			continue // answers may have made other probes due now
		}
		if wake.IsZero() || wake.Sub(t0) > until {
			break
		}
		now = wake
	}
	return log
}

func testProbeParams(delay, period, success, failure int) *probeParams {
	return &probeParams{
		InitialDelay: time.Duration(delay) * time.Second, Period: time.Duration(period) * time.Second,
		Timeout: time.Second, SuccessThreshold: success, FailureThreshold: failure,
	}
}

const (
	S = probeSuccess
	F = probeFailure
	E = probeError
)

func TestProber(t *testing.T) {
	tests := []struct {
		name    string
		params  [numProbeKinds]*probeParams
		resume  *proberResume
		scripts map[probeKind][]probeOutcome
		until   time.Duration
		want    []string
	}{{
		name:    "readiness thresholds and initial delay",
		params:  [numProbeKinds]*probeParams{probeReadiness: testProbeParams(5, 10, 2, 3)},
		scripts: map[probeKind][]probeOutcome{probeReadiness: {F, S, S, S, F, F, F, S}},
		until:   95 * time.Second,
		want: []string{
			"5s readiness failure",
			"15s readiness success",
			"25s readiness success -> passing => started=true ready=true",
			"35s readiness success",
			"45s readiness failure",
			"55s readiness failure",
			"1m5s readiness failure -> failing => started=true ready=false",
			"1m15s readiness success",
			"1m25s readiness success -> passing => started=true ready=true",
			"1m35s readiness success",
		},
	}, {
		name:    "liveness kills after consecutive failures only, then holds",
		params:  [numProbeKinds]*probeParams{probeLiveness: testProbeParams(0, 10, 1, 3)},
		scripts: map[probeKind][]probeOutcome{probeLiveness: {S, F, F, S, F, F, F, S}},
		until:   5 * time.Minute,
		want: []string{
			"0s liveness success",
			"10s liveness failure",
			"20s liveness failure",
			"30s liveness success",
			"40s liveness failure",
			"50s liveness failure",
			"1m0s liveness failure -> failing kill",
		},
	}, {
		name: "startup gates liveness and readiness",
		params: [numProbeKinds]*probeParams{
			probeStartup: testProbeParams(0, 5, 1, 10), probeLiveness: testProbeParams(0, 10, 1, 3), probeReadiness: testProbeParams(0, 10, 1, 3),
		},
		scripts: map[probeKind][]probeOutcome{
			probeStartup: {F, F, S}, probeLiveness: {S}, probeReadiness: {S},
		},
		until: 30 * time.Second,
		want: []string{
			"0s startup failure",
			"5s startup failure",
			"10s startup success -> passing => started=true ready=false",
			"10s liveness success",
			"10s readiness success -> passing => started=true ready=true",
			"20s liveness success",
			"20s readiness success",
			"30s liveness success",
			"30s readiness success",
		},
	}, {
		name: "liveness initial delay counts from the container's start, not the startup probe's",
		params: [numProbeKinds]*probeParams{
			probeStartup: testProbeParams(0, 5, 1, 10), probeLiveness: testProbeParams(15, 10, 1, 3),
		},
		scripts: map[probeKind][]probeOutcome{probeStartup: {F, F, S}, probeLiveness: {S}},
		until:   25 * time.Second,
		want: []string{
			"0s startup failure",
			"5s startup failure",
			"10s startup success -> passing => started=true ready=true",
			"15s liveness success",
			"25s liveness success",
		},
	}, {
		name: "a failing startup probe kills before liveness ever runs",
		params: [numProbeKinds]*probeParams{
			probeStartup: testProbeParams(0, 2, 1, 3), probeLiveness: testProbeParams(0, 10, 1, 3), probeReadiness: testProbeParams(0, 10, 1, 3),
		},
		scripts: map[probeKind][]probeOutcome{probeStartup: {F}, probeLiveness: {S}, probeReadiness: {S}},
		until:   time.Minute,
		want: []string{
			"0s startup failure",
			"2s startup failure",
			"4s startup failure kill",
		},
	}, {
		name:    "errors neither pass nor fail nor break a run",
		params:  [numProbeKinds]*probeParams{probeReadiness: testProbeParams(0, 10, 1, 2)},
		scripts: map[probeKind][]probeOutcome{probeReadiness: {S, F, E, F, E}},
		until:   50 * time.Second,
		want: []string{
			"0s readiness success -> passing => started=true ready=true",
			"10s readiness failure",
			"20s readiness error",
			"30s readiness failure -> failing => started=true ready=false",
			"40s readiness error",
			"50s readiness error",
		},
	}, {
		name: "a resumed run keeps its results",
		params: [numProbeKinds]*probeParams{
			probeStartup: testProbeParams(0, 5, 1, 3), probeReadiness: testProbeParams(0, 10, 1, 3),
		},
		resume:  &proberResume{Started: true, Ready: true},
		scripts: map[probeKind][]probeOutcome{probeStartup: {F}, probeReadiness: {S, F, F, F}},
		until:   30 * time.Second,
		want: []string{
			"0s readiness success",
			"10s readiness failure",
			"20s readiness failure",
			"30s readiness failure -> failing => started=true ready=false",
		},
	}, {
		name: "a resumed run that had not started checks its startup probe",
		params: [numProbeKinds]*probeParams{
			probeStartup: testProbeParams(0, 5, 1, 3), probeReadiness: testProbeParams(0, 10, 1, 3),
		},
		resume:  &proberResume{Started: false, Ready: true},
		scripts: map[probeKind][]probeOutcome{probeStartup: {S}, probeReadiness: {S}},
		until:   0,
		want: []string{
			"0s startup success -> passing => started=true ready=false",
			"0s readiness success -> passing => started=true ready=true",
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := simulateProber(newProber(tc.params, time.Unix(1_700_000_000, 0), tc.resume), tc.scripts, tc.until)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("trace (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProberInFlight: a probe is not handed out again while its check
// runs; a check slower than the period is followed by the next at once.
func TestProberInFlight(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	p := newProber([numProbeKinds]*probeParams{probeReadiness: testProbeParams(0, 10, 1, 3)}, t0, nil)
	if run, _ := p.due(t0); len(run) != 1 {
		t.Fatalf("due at start: %v", run)
	}
	if run, wake := p.due(t0.Add(15 * time.Second)); len(run) != 0 || !wake.IsZero() {
		t.Fatalf("due while in flight: %v, wake %v; want nothing", run, wake)
	}
	p.observe(probeReadiness, probeSuccess)
	if run, _ := p.due(t0.Add(15 * time.Second)); len(run) != 1 {
		t.Fatalf("due after a slow check: %v, want the next check at once", run)
	}
	if run, wake := p.due(t0.Add(16 * time.Second)); len(run) != 0 || !wake.IsZero() {
		t.Errorf("due = %v, %v", run, wake)
	}
	p.observe(probeReadiness, probeSuccess)
	if _, wake := p.due(t0.Add(16 * time.Second)); !wake.Equal(t0.Add(25 * time.Second)) {
		t.Errorf("next check at %v, want 10s after the last one started", wake.Sub(t0))
	}
}

func TestProbeParamsOf(t *testing.T) {
	tests := []struct {
		kind  probeKind
		probe corev1.Probe
		want  probeParams
	}{
		{probeReadiness, corev1.Probe{}, probeParams{0, 10 * time.Millisecond, time.Millisecond, 1, 3}},
		{probeReadiness, corev1.Probe{InitialDelaySeconds: 2, PeriodSeconds: 3, TimeoutSeconds: 4, SuccessThreshold: 5, FailureThreshold: 6},
			probeParams{2 * time.Millisecond, 3 * time.Millisecond, 4 * time.Millisecond, 5, 6}},
		{probeLiveness, corev1.Probe{SuccessThreshold: 5, InitialDelaySeconds: -1}, probeParams{0, 10 * time.Millisecond, time.Millisecond, 1, 3}},
	}
	for _, tc := range tests {
		if got := probeParamsOf(tc.kind, &tc.probe, time.Millisecond); got != tc.want {
			t.Errorf("probeParamsOf(%s, %+v) = %+v, want %+v", tc.kind, tc.probe, got, tc.want)
		}
	}
}
