package planner

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
)

const onceJob = `apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: c, image: busybox}
`

// TestJobTimesFromPods: a Job's startTime and completionTime (kubectl's
// DURATION) come from its pod's status as the node reported it, not from
// when the server planned.
func TestJobTimesFromPods(t *testing.T) {
	at := func(d time.Duration) *metav1.Time { m := metav1.NewTime(t0.Add(d)); return &m }
	for _, tc := range []struct {
		name      string
		phase     corev1.PodPhase
		started   *metav1.Time // pod status.startTime
		finished  *metav1.Time // the container's terminated finishedAt
		now       time.Duration
		wantStart time.Duration
		wantEnd   time.Duration // -1: none
	}{
		{"running", corev1.PodRunning, at(3 * time.Second), nil, 5 * time.Second, 3 * time.Second, -1},
		{"succeeded", corev1.PodSucceeded, at(3 * time.Second), at(4 * time.Second), 20 * time.Second, 3 * time.Second, 4 * time.Second},
		{"no times reported", corev1.PodSucceeded, nil, nil, 20 * time.Second, 0, 20 * time.Second},
		{"node clock ahead", corev1.PodSucceeded, at(30 * time.Second), at(40 * time.Second), 20 * time.Second, 20 * time.Second, 20 * time.Second},
		{"failed", corev1.PodFailed, at(2 * time.Second), at(6 * time.Second), 20 * time.Second, 2 * time.Second, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Commit: "c1", Objects: batchObjects(t, onceJob), Nodes: []Node{{Name: "n1", Ready: true}}, Now: t0}
			carry := func(out *Output) {
				in.Previous, in.Allocations = out.Placement, out.Allocations
				in.JobStates, in.CronJobStates = roundTrip(t, out.JobStates), roundTrip(t, out.CronJobStates)
			}
			out := Plan(in)
			carry(out)
			pods := out.Nodes["n1"].Pods
			if len(pods) != 1 {
				t.Fatalf("planned %d pods", len(pods))
			}
			p := pods[0]
			cs := corev1.ContainerStatus{Name: "c"}
			if tc.finished != nil || tc.phase != corev1.PodRunning {
				cs.State.Terminated = &corev1.ContainerStateTerminated{StartedAt: metav1.NewTime(t0.Add(time.Hour))}
				if tc.finished != nil {
					cs.State.Terminated.FinishedAt = *tc.finished
				}
			}
			in.Status = map[string][]api.PodStatus{"n1": {{Namespace: p.Namespace, Name: p.Name, UID: p.UID,
				Status: corev1.PodStatus{Phase: tc.phase, StartTime: tc.started, ContainerStatuses: []corev1.ContainerStatus{cs}}}}}
			check := func(out *Output) {
				t.Helper()
				if len(out.Jobs) != 1 {
					t.Fatalf("%d jobs", len(out.Jobs))
				}
				st := out.Jobs[0].Job.Status
				if st.StartTime == nil || !st.StartTime.Equal(at(tc.wantStart)) {
					t.Errorf("startTime %v, want +%s", st.StartTime, tc.wantStart)
				}
				switch {
				case tc.wantEnd < 0 && st.CompletionTime != nil:
					t.Errorf("completionTime %v, want none", st.CompletionTime)
				case tc.wantEnd >= 0 && (st.CompletionTime == nil || !st.CompletionTime.Equal(at(tc.wantEnd))):
					t.Errorf("completionTime %v, want +%s", st.CompletionTime, tc.wantEnd)
				}
			}
			in.Now = t0.Add(tc.now)
			out = Plan(in)
			check(out)
			// The persisted times survive later plans, with or without
			// the node's reports.
			carry(out)
			in.Now = t0.Add(time.Hour)
			check(Plan(in))
			if tc.phase != corev1.PodRunning {
				in.Status = nil
				check(Plan(in))
			}
		})
	}
}
