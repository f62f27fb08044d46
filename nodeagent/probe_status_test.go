package nodeagent

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

// TestStatusWithProbes: probes decide Started and Ready of a running
// container, and so the pod's Ready and ContainersReady; a recorded probe
// result counts only for the run it was recorded for.
func TestStatusWithProbes(t *testing.T) {
	exec := corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}
	withProbes := func(startup, readiness bool) api.Pod {
		p := testPod("web", "1111aaaa-aaaa", "", "app")
		if startup {
			p.Spec.Containers[0].StartupProbe = &corev1.Probe{ProbeHandler: exec}
		}
		if readiness {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: exec}
		}
		p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: exec} // never matters
		return p
	}
	started := t0.Add(-time.Minute) // ctr's StartedAt
	tests := []struct {
		name               string
		startup, readiness bool
		probe              *probeRecord
		wantStarted        bool
		wantReady          bool
	}{
		{name: "liveness only: ready when running", wantStarted: true, wantReady: true},
		{name: "readiness not yet checked", readiness: true, wantStarted: true},
		{name: "readiness passing", readiness: true, probe: &probeRecord{StartedAt: started, Started: true, Ready: true}, wantStarted: true, wantReady: true},
		{name: "readiness failing", readiness: true, probe: &probeRecord{StartedAt: started, Started: true}, wantStarted: true},
		{name: "readiness passed in an earlier run", readiness: true, probe: &probeRecord{StartedAt: started.Add(-time.Hour), Started: true, Ready: true}, wantStarted: true},
		{name: "startup not passed", startup: true},
		{name: "startup passed, no readiness probe", startup: true, probe: &probeRecord{StartedAt: started, Started: true, Ready: true}, wantStarted: true, wantReady: true},
		{name: "startup and readiness passed", startup: true, readiness: true, probe: &probeRecord{StartedAt: started, Started: true, Ready: true}, wantStarted: true, wantReady: true},
		{name: "startup passed, readiness not", startup: true, readiness: true, probe: &probeRecord{StartedAt: started, Started: true}, wantStarted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := withProbes(tc.startup, tc.readiness)
			id := ContainerID(p.Namespace, p.Name, p.UID, "app")
			st := buildStatus(statusInput{
				Pods:    []api.Pod{p},
				Actual:  []ContainerInfo{ctr(p, "app", StateRunning)},
				Records: map[string]containerRecord{id: rec(p, func(r *containerRecord) { r.Probe = tc.probe })},
				Now:     t0,
			})
			s := st.Pods[0].Status
			cs := s.ContainerStatuses[0]
			if cs.State.Running == nil || cs.Started == nil || *cs.Started != tc.wantStarted || cs.Ready != tc.wantReady {
				t.Errorf("container: running %v started %v ready %v; want running, started %v, ready %v",
					cs.State.Running != nil, cs.Started, cs.Ready, tc.wantStarted, tc.wantReady)
			}
			if s.Phase != corev1.PodRunning {
				t.Errorf("phase %s, want Running", s.Phase)
			}
			want := corev1.ConditionFalse
			if tc.wantReady {
				want = corev1.ConditionTrue
			}
			for _, c := range s.Conditions {
				if (c.Type == corev1.PodReady || c.Type == corev1.ContainersReady) && c.Status != want {
					t.Errorf("condition %s = %s, want %s", c.Type, c.Status, want)
				}
			}
		})
	}
}

// TestProbeKillReason: the run a failed probe killed terminates with the
// probe's reason and message, in status while it waits for its restart,
// and as the last termination once restarted; other runs keep theirs.
func TestProbeKillReason(t *testing.T) {
	p := testPod("web", "1111aaaa-aaaa", "", "app")
	id := ContainerID(p.Namespace, p.Name, p.UID, "app")
	exited := ctr(p, "app", StateExited, func(i *ContainerInfo) { i.ExitCode = 143 })
	kill := &killRecord{StartedAt: exited.StartedAt, Reason: reasonLivenessProbeFailed, Message: "failed its liveness probe"}

	for _, tc := range []struct {
		name       string
		kill       *killRecord
		wantReason string
	}{
		{"killed by a probe", kill, reasonLivenessProbeFailed},
		{"an earlier run was killed", &killRecord{StartedAt: exited.StartedAt.Add(-time.Hour), Reason: reasonLivenessProbeFailed}, "Error"},
		{"not killed", nil, "Error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rec(p, func(r *containerRecord) { r.Killed = tc.kill })
			st := buildStatus(statusInput{Pods: []api.Pod{p}, Actual: []ContainerInfo{exited},
				Records: map[string]containerRecord{id: r}, Now: t0})
			last := st.Pods[0].Status.ContainerStatuses[0].LastTerminationState.Terminated
			if last == nil || last.Reason != tc.wantReason || last.ExitCode != 143 {
				t.Fatalf("status while waiting: last termination %+v, want reason %s", last, tc.wantReason)
			}
			if tc.wantReason == reasonLivenessProbeFailed && last.Message != kill.Message {
				t.Errorf("message %q, want %q", last.Message, kill.Message)
			}

			s := newState()
			s.Containers[id] = r
			restart := action{Kind: actRestart, ID: id, Pod: &p, Container: &p.Spec.Containers[0], Exited: &exited}
			recordOutcome(s, restart, outcome{Removed: true, Started: true}, t0, backoffPolicy{Base: time.Second, Max: time.Minute})
			got := s.Containers[id]
			if got.LastTermination == nil || got.LastTermination.Reason != tc.wantReason || got.RestartCount != 1 || got.Killed != nil {
				t.Errorf("after the restart: %+v (last %+v), want reason %s, one restart, kill note cleared", got, got.LastTermination, tc.wantReason)
			}
		})
	}
}
