package planner

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
)

// batchSim plays controller and nodes around Plan: it carries the
// persisted state (placement, allocations, Job and CronJob states) from one
// plan to the next, as the controller must, and reports the phases the
// test sets for pods of the last plan. trace records each step for a
// golden file.
type batchSim struct {
	t      *testing.T
	in     Input
	out    *Output
	phases map[string]corev1.PodPhase // pod name → reported phase
	// restarts is the reported container restart count per pod name.
	restarts map[string]int32
	trace    strings.Builder
}

var t0 = time.Date(2025, 6, 1, 10, 2, 0, 0, time.UTC)

func newBatchSim(t *testing.T, objs *manifest.Objects) *batchSim {
	return &batchSim{t: t, phases: map[string]corev1.PodPhase{}, restarts: map[string]int32{},
		in: Input{Commit: "c1", Objects: objs, Nodes: parseNodes(t, "n1 ready\nn2 ready")}}
}

// plan plans at t0+at with the reports of the previous plan's pods and
// keeps what the controller persists.
func (s *batchSim) plan(step string, at time.Duration) *Output {
	s.t.Helper()
	s.in.Now = t0.Add(at)
	s.in.Status = s.status()
	out := Plan(s.in)
	s.in.Previous, s.in.Allocations = out.Placement, out.Allocations
	// The controller persists the states as JSON: plan from what comes back.
	s.in.JobStates, s.in.CronJobStates = roundTrip(s.t, out.JobStates), roundTrip(s.t, out.CronJobStates)
	s.out = out
	s.record(step)
	return out
}

// status reports every pod of the last plan that has a phase set, from the
// node the pod is placed on.
func (s *batchSim) status() map[string][]api.PodStatus {
	st := map[string][]api.PodStatus{}
	if s.out == nil {
		return st
	}
	for node, d := range s.out.Nodes {
		for _, p := range d.Pods {
			phase, ok := s.phases[p.Name]
			if !ok {
				continue
			}
			cs := corev1.ContainerStatus{Name: "c", RestartCount: s.restarts[p.Name]}
			switch phase {
			case corev1.PodSucceeded, corev1.PodFailed:
				code := int32(0)
				if phase == corev1.PodFailed {
					code = 1
				}
				cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: metav1.NewTime(s.in.Now)}
			case corev1.PodRunning:
				cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(s.in.Now)}
			}
			st[node] = append(st[node], api.PodStatus{Namespace: p.Namespace, Name: p.Name, UID: p.UID,
				Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{cs}}})
		}
	}
	return st
}

// pod is the name of attempt a of slot i of a Job, from the last plan.
func (s *batchSim) pod(job string, i, a int) string {
	s.t.Helper()
	for _, p := range s.out.JobStates[job].Pods {
		if p.Index == i && p.Attempt == a {
			return p.Name
		}
	}
	s.t.Fatalf("job %s has no pod for slot %d attempt %d: %+v", job, i, a, s.out.JobStates[job].Pods)
	return ""
}

func (s *batchSim) set(phase corev1.PodPhase, pods ...string) {
	for _, p := range pods {
		s.phases[p] = phase
	}
}

// record writes the plan: pods per node (with reported phase), Jobs,
// CronJobs, events and requeue.
func (s *batchSim) record(step string) {
	out := s.out
	b := &s.trace
	fmt.Fprintf(b, "== %s (now +%s)\n", step, s.in.Now.Sub(t0))
	for _, n := range sortedKeys(out.Nodes) {
		fmt.Fprintf(b, "node %s:", n)
		for _, p := range out.Nodes[n].Pods {
			phase := string(s.phases[p.Name])
			if phase == "" {
				phase = "new"
			}
			fmt.Fprintf(b, " %s(%s,%s)", p.Name, phase, p.Spec.RestartPolicy)
		}
		b.WriteString("\n")
	}
	for _, p := range out.Pending {
		fmt.Fprintf(b, "pending %s: %s\n", p.Pod.Key(), p.Reason)
	}
	for _, v := range out.Jobs {
		fmt.Fprintf(b, "job %s\n", formatJob(&v.Job))
	}
	for _, v := range out.CronJobs {
		fmt.Fprintf(b, "cronjob %s\n", formatCronJob(&v.CronJob))
	}
	for _, e := range out.Events {
		fmt.Fprintf(b, "event %s/%s %s %s: %s\n", e.Namespace, e.Name, e.Type, e.Reason, e.Message)
	}
	for _, w := range out.Warnings {
		fmt.Fprintf(b, "warning %s\n", w)
	}
	if out.RequeueAfter > 0 {
		fmt.Fprintf(b, "requeue after %s\n", out.RequeueAfter)
	}
}

func rel(t *metav1.Time) string {
	if t == nil {
		return "-"
	}
	return "+" + t.Sub(t0).String()
}

func formatJob(j *batchv1.Job) string {
	st := j.Status
	var conds []string
	for _, c := range st.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason))
	}
	owner := ""
	if o := cronOwner(j); o != "" {
		owner = " owner=CronJob/" + o
	}
	return fmt.Sprintf("%s/%s%s active=%d succeeded=%d failed=%d start=%s completion=%s conditions=[%s]",
		j.Namespace, j.Name, owner, st.Active, st.Succeeded, st.Failed, rel(st.StartTime), rel(st.CompletionTime), strings.Join(conds, " "))
}

func formatCronJob(cj *batchv1.CronJob) string {
	var active []string
	for _, a := range cj.Status.Active {
		active = append(active, a.Name)
	}
	return fmt.Sprintf("%s/%s created=%s active=[%s] lastSchedule=%s lastSuccessful=%s", cj.Namespace, cj.Name,
		rel(&cj.CreationTimestamp), strings.Join(active, " "), rel(cj.Status.LastScheduleTime), rel(cj.Status.LastSuccessfulTime))
}

// goldenFile compares got with testdata/batch/<name>.golden, or rewrites it
// under -update.
func goldenFile(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "batch", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reconciler/planner -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// batchObjects parses YAML with Jobs and CronJobs (and whatever
// parseObjects reads) through the real manifest loader.
func batchObjects(t *testing.T, src string) *manifest.Objects {
	t.Helper()
	objs, err := manifest.Load(map[string][]byte{"m.yaml": []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// jobPodNames lists the pods of the last plan that belong to a Job, sorted.
func jobPodNames(out *Output, job string) []string {
	var names []string
	for _, d := range out.Nodes {
		for _, p := range d.Pods {
			if p.Owner == "Job/"+job {
				names = append(names, p.Name)
			}
		}
	}
	sort.Strings(names)
	return names
}

func roundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
