package nodeagent

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// statusScenario is a node with one pod in each interesting state.
func statusScenario() statusInput {
	web := testPod("web", "1111aaaa-aaaa", corev1.RestartPolicyAlways, "app", "sidecar")
	job := testPod("job", "2222aaaa-aaaa", corev1.RestartPolicyNever, "run")
	failed := testPod("failed", "3333aaaa-aaaa", corev1.RestartPolicyNever, "run")
	pulling := testPod("pulling", "4444aaaa-aaaa", "", "app")
	fresh := testPod("fresh", "5555aaaa-aaaa", "", "app")
	replaced := testPod("replaced", "6666aaaa-aaaa", "", "app")
	oldSpec := replaced
	oldSpec.SpecHash = "old"
	id := func(p api.Pod, c string) string { return ContainerID(p.Namespace, p.Name, p.UID, c) }
	code := func(c uint32) func(*ContainerInfo) { return func(i *ContainerInfo) { i.ExitCode = c } }
	return statusInput{
		Node:   "node-1",
		Digest: "sha256:abc",
		Commit: "c0ffee",
		Pods:   []api.Pod{web, job, failed, pulling, fresh, replaced},
		Actual: []ContainerInfo{
			ctr(web, "app", StateRunning),
			ctr(web, "sidecar", StateExited, code(2)),
			ctr(job, "run", StateExited, code(0)),
			ctr(failed, "run", StateExited, code(1)),
			ctr(oldSpec, "app", StateRunning),
		},
		Records: map[string]containerRecord{
			id(web, "sidecar"): rec(web, func(r *containerRecord) {
				r.RestartCount, r.CrashCount = 3, 3
				r.LastTermination = &termination{ExitCode: 2, Reason: "Error", StartedAt: t0.Add(-time.Hour), FinishedAt: t0.Add(-50 * time.Minute)}
			}),
			id(pulling, "app"): rec(pulling, func(r *containerRecord) {
				r.Failures, r.NextAttempt = 2, t0.Add(20*time.Second)
				r.WaitingReason, r.WaitingMessage = reasonErrImagePull, `image hook: pull image "x": not found`
			}),
		},
		PodRecords: map[string]podRecord{web.UID: {StartTime: t0.Add(-2 * time.Hour)}},
		Now:        t0,
	}
}

func TestBuildStatus(t *testing.T) {
	st := buildStatus(statusScenario())
	if st.APIVersion != api.Version || st.Kind != api.KindNodeStatus || st.Node != "node-1" || st.DesiredDigest != "sha256:abc" || st.Commit != "c0ffee" {
		t.Fatalf("header: %+v", st)
	}
	type want struct {
		phase    corev1.PodPhase
		ready    corev1.ConditionStatus
		reasons  []string // per container: waiting reason, "running" or "terminated:<code>"
		restarts []int32
	}
	wants := map[string]want{
		"web":      {corev1.PodRunning, corev1.ConditionFalse, []string{"running", reasonCrashLoopBackOff}, []int32{0, 3}},
		"job":      {corev1.PodSucceeded, corev1.ConditionFalse, []string{"terminated:0"}, []int32{0}},
		"failed":   {corev1.PodFailed, corev1.ConditionFalse, []string{"terminated:1"}, []int32{0}},
		"pulling":  {corev1.PodPending, corev1.ConditionFalse, []string{reasonImagePullBackOff}, []int32{0}},
		"fresh":    {corev1.PodPending, corev1.ConditionFalse, []string{reasonContainerCreating}, []int32{0}},
		"replaced": {corev1.PodPending, corev1.ConditionFalse, []string{reasonContainerCreating}, []int32{0}},
	}
	if len(st.Pods) != len(wants) {
		t.Fatalf("got %d pods, want %d", len(st.Pods), len(wants))
	}
	for _, ps := range st.Pods {
		w := wants[ps.Name]
		s := ps.Status
		if s.Phase != w.phase {
			t.Errorf("%s: phase %s, want %s", ps.Name, s.Phase, w.phase)
		}
		for _, c := range s.Conditions {
			if c.Type == corev1.PodReady && c.Status != w.ready {
				t.Errorf("%s: Ready %s, want %s", ps.Name, c.Status, w.ready)
			}
		}
		for i, cs := range s.ContainerStatuses {
			var got string
			switch {
			case cs.State.Running != nil:
				got = "running"
			case cs.State.Terminated != nil:
				got = "terminated:" + string(rune('0'+cs.State.Terminated.ExitCode))
			case cs.State.Waiting != nil:
				got = cs.State.Waiting.Reason
			}
			if got != w.reasons[i] || cs.RestartCount != w.restarts[i] {
				t.Errorf("%s/%s: state %s restarts %d, want %s %d", ps.Name, cs.Name, got, cs.RestartCount, w.reasons[i], w.restarts[i])
			}
			if cs.Ready != (got == "running") {
				t.Errorf("%s/%s: ready %v", ps.Name, cs.Name, cs.Ready)
			}
		}
	}
	web := st.Pods[0].Status
	if web.StartTime == nil || !web.StartTime.Time.Equal(t0.Add(-2*time.Hour)) {
		t.Errorf("web start time %v", web.StartTime)
	}
	side := web.ContainerStatuses[1]
	if side.LastTerminationState.Terminated == nil || side.LastTerminationState.Terminated.ExitCode != 2 {
		t.Errorf("sidecar last termination %+v", side.LastTerminationState)
	}
	if app := web.ContainerStatuses[0]; app.ContainerID != "containerd://"+ContainerID("default", "web", "1111aaaa-aaaa", "app") {
		t.Errorf("app container id %q", app.ContainerID)
	}
}

func TestBuildStatusReady(t *testing.T) {
	p := testPod("web", "1111aaaa-aaaa", "", "app")
	st := buildStatus(statusInput{Pods: []api.Pod{p}, Actual: []ContainerInfo{ctr(p, "app", StateRunning)}, Now: t0})
	s := st.Pods[0].Status
	if s.Phase != corev1.PodRunning {
		t.Errorf("phase %s", s.Phase)
	}
	started := ctr(p, "app", StateRunning).StartedAt
	for _, c := range s.Conditions {
		if c.Status != corev1.ConditionTrue {
			t.Errorf("condition %s is %s", c.Type, c.Status)
		}
		// minReadySeconds counts from Ready's transition: without a
		// readiness probe, the container's start.
		if (c.Type == corev1.PodReady || c.Type == corev1.ContainersReady) && !c.LastTransitionTime.Time.Equal(started.UTC()) {
			t.Errorf("condition %s transition %v, want the start %v", c.Type, c.LastTransitionTime, started)
		}
	}
}

func TestBuildStatusGolden(t *testing.T) {
	st := buildStatus(statusScenario())
	got, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "status.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("status differs from %s (run go test -update if the change is intended):\n%s", path, got)
	}
}
