package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
)

func jobManifest(name string, completions int, image string) string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata: {name: %s}
spec:
  completions: %d
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: %s, command: [echo, hi]}]
`, name, completions, image)
}

func cronManifest(name, schedule string) string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: CronJob
metadata: {name: %s}
spec:
  schedule: %q
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, image: busybox, command: [echo, tick]}]
`, name, schedule)
}

// syncOK fetches and fails the test unless the commit was accepted.
func (h *harness) syncOK() {
	h.t.Helper()
	res, err := h.ctrl.Sync(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	if res.State != api.CommitAccepted {
		h.t.Fatalf("commit %s: state %s, errors %v", res.Commit, res.State, res.Errors)
	}
}

// reportPhases reports every pod of node's document, in the phase phases
// gives it (pods it does not name are reported Running).
func (h *harness) reportPhases(node string, phases map[string]corev1.PodPhase) {
	h.t.Helper()
	d, digest := h.doc(node)
	s := api.NodeStatus{APIVersion: api.Version, Kind: api.KindNodeStatus, Node: node, Commit: d.Commit, DesiredDigest: digest}
	for _, p := range d.Pods {
		phase, ok := phases[p.Name]
		if !ok {
			phase = corev1.PodRunning
		}
		cs := corev1.ContainerStatus{Name: "main"}
		if phase == corev1.PodSucceeded {
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 0, FinishedAt: metav1.NewTime(h.now)}
		} else {
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(h.now)}
		}
		s.Pods = append(s.Pods, api.PodStatus{Namespace: p.Namespace, Name: p.Name, UID: p.UID, Commit: d.Commit,
			Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{cs}}})
	}
	if err := h.ctrl.ReportStatus(context.Background(), s); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) jobs() map[string]api.JobView {
	h.t.Helper()
	vs, err := h.ctrl.Jobs(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]api.JobView{}
	for _, v := range vs {
		out[v.Job.Name] = v
	}
	return out
}

func complete(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func phasesOf(d *api.NodeDesired, phase corev1.PodPhase) map[string]corev1.PodPhase {
	out := map[string]corev1.PodPhase{}
	for _, p := range d.Pods {
		out[p.Name] = phase
	}
	return out
}

func podUIDs(d *api.NodeDesired) map[string]string {
	out := map[string]string{}
	for _, p := range d.Pods {
		out[p.Name] = p.UID
	}
	return out
}

func TestJobRunsToCompletionAndNeverAgain(t *testing.T) {
	h := newHarness(t)
	h.join("a", nil)
	h.src.commit("c1", map[string]string{"job.yaml": jobManifest("once", 2, "busybox")})
	h.syncOK()

	// completions 2, parallelism 1: one pod at a time.
	for i := 0; i < 2; i++ {
		d, _ := h.doc("a")
		if got := len(d.Pods); got != i+1 {
			t.Fatalf("round %d: %d pods published, want %d", i, got, i+1)
		}
		h.now = h.now.Add(5 * time.Second)
		h.reportPhases("a", phasesOf(d, corev1.PodSucceeded))
	}
	j := h.jobs()["once"]
	if !complete(&j.Job) || j.Job.Status.Succeeded != 2 {
		t.Fatalf("job after two successes: succeeded %d, conditions %+v; want Complete with 2", j.Job.Status.Succeeded, j.Job.Status.Conditions)
	}
	done, _ := h.doc("a")
	before := podUIDs(done)

	// An unrelated commit reruns nothing.
	h.now = h.now.Add(time.Minute)
	h.reportPhases("a", phasesOf(done, corev1.PodSucceeded)) // the node stays ready
	h.src.commit("c2", map[string]string{"job.yaml": jobManifest("once", 2, "busybox"), "web.yaml": deployment("web", 1, "nginx")})
	h.syncOK()
	if j := h.jobs()["once"]; !complete(&j.Job) || j.Job.Status.Succeeded != 2 {
		t.Fatalf("job after an unrelated commit: %+v", j.Job.Status)
	}
	d, _ := h.doc("a")
	for name, uid := range podUIDs(d) {
		if old, ok := before[name]; !strings.HasPrefix(name, "web-") && (!ok || old != uid) {
			t.Errorf("job pod %s (uid %s) is new after an unrelated commit; before: %v", name, uid, before)
		}
	}

	// Nor does a restart.
	h.open()
	if j := h.jobs()["once"]; !complete(&j.Job) || j.Job.Status.Succeeded != 2 {
		t.Fatalf("job after a restart: %+v", j.Job.Status)
	}
	d, _ = h.doc("a")
	for name, uid := range podUIDs(d) {
		if old, ok := before[name]; !strings.HasPrefix(name, "web-") && (!ok || old != uid) {
			t.Errorf("job pod %s (uid %s) is new after a restart", name, uid)
		}
	}
}

func TestEditedJobTemplateIsRejected(t *testing.T) {
	h := newHarness(t)
	h.join("a", nil)
	h.src.commit("c1", map[string]string{"job.yaml": jobManifest("once", 1, "busybox:1")})
	h.syncOK()
	h.src.commit("c2", map[string]string{"job.yaml": jobManifest("once", 1, "busybox:2")})
	res, err := h.ctrl.Sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.State != api.CommitRejected || !strings.Contains(strings.Join(res.Errors, "\n"), "immutable") {
		t.Fatalf("edited job template: state %s errors %v; want rejected as immutable", res.State, res.Errors)
	}
	if deployed, _ := h.st.Deployed(context.Background()); deployed != "c1" {
		t.Errorf("deployed = %s, want c1", deployed)
	}
}

// slotJob is the name of the Job a CronJob creates for a slot.
func slotJob(cj string, slot time.Time) string { return fmt.Sprintf("%s-%d", cj, slot.Unix()/60) }

func TestCronJobRunsEachSlotOnceAcrossRestarts(t *testing.T) {
	h := newHarness(t) // now is 03:04:05
	h.join("a", nil)
	h.src.commit("c1", map[string]string{"cron.yaml": cronManifest("tick", "* * * * *")})
	h.syncOK()
	if got := len(h.jobs()); got != 0 {
		t.Fatalf("%d jobs before the first slot", got)
	}
	if got := h.ctrl.RequeueAfter(); got != 55*time.Second {
		t.Errorf("RequeueAfter = %s, want 55s to the next slot", got)
	}
	ctx := context.Background()
	slot1 := time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC)
	h.now = slot1.Add(500 * time.Millisecond)
	h.reportPhases("a", nil) // the node stays ready
	for i := 0; i < 3; i++ { // the same slot, planned again
		if _, err := h.ctrl.replan(ctx); err != nil {
			t.Fatal(err)
		}
	}
	jobs := h.jobs()
	first, ok := jobs[slotJob("tick", slot1)]
	if !ok || len(jobs) != 1 {
		t.Fatalf("jobs at the first slot: %v; want only %s", keys(jobs), slotJob("tick", slot1))
	}
	if d, _ := h.doc("a"); len(d.Pods) != 1 {
		t.Fatalf("%d pods published at the first slot, want 1", len(d.Pods))
	}

	h.open() // restart within the slot
	jobs = h.jobs()
	if again, ok := jobs[slotJob("tick", slot1)]; !ok || len(jobs) != 1 || again.Job.UID != first.Job.UID {
		t.Fatalf("after a restart: jobs %v; want the same single job %s", keys(jobs), first.Job.UID)
	}

	slot2 := slot1.Add(time.Minute)
	h.now = slot2.Add(time.Second)
	h.reportPhases("a", nil)
	if _, err := h.ctrl.replan(ctx); err != nil {
		t.Fatal(err)
	}
	jobs = h.jobs()
	if _, ok := jobs[slotJob("tick", slot2)]; !ok || len(jobs) != 2 {
		t.Fatalf("jobs at the second slot: %v; want %s and %s", keys(jobs), slotJob("tick", slot1), slotJob("tick", slot2))
	}
	cjs, err := h.ctrl.CronJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cjs) != 1 || cjs[0].CronJob.Status.LastScheduleTime == nil || !cjs[0].CronJob.Status.LastScheduleTime.Time.Equal(slot2) {
		t.Fatalf("cronjob views: %+v; want lastScheduleTime %s", cjs, slot2)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestCreateJobFromCronJob(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.ctrl.CreateJob(ctx, api.CreateJobRequest{FromCronJob: "tick"}); !errdefs.IsNotFound(err) {
		t.Fatalf("before any commit: err %v, want not found", err)
	}
	h.join("a", nil)
	h.src.commit("c1", map[string]string{"cron.yaml": cronManifest("tick", "0 0 1 1 *")})
	h.syncOK()

	v, err := h.ctrl.CreateJob(ctx, api.CreateJobRequest{Namespace: "default", Name: "by-hand", FromCronJob: "tick"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Job.Name != "by-hand" || v.Commit != "c1" {
		t.Fatalf("created job view: name %q commit %q", v.Job.Name, v.Commit)
	}
	if d, _ := h.doc("a"); len(d.Pods) != 1 || !strings.HasPrefix(d.Pods[0].Name, "by-hand-") {
		t.Fatalf("pods after create job: %+v; want one by-hand pod", d.Pods)
	}
	for _, tc := range []struct {
		req  api.CreateJobRequest
		want func(error) bool
	}{
		{api.CreateJobRequest{Name: "by-hand", FromCronJob: "tick"}, errdefs.IsAlreadyExists},
		{api.CreateJobRequest{Name: "other", FromCronJob: "nope"}, errdefs.IsNotFound},
		{api.CreateJobRequest{Name: "Bad_Name", FromCronJob: "tick"}, errdefs.IsInvalidArgument},
	} {
		if _, err := h.ctrl.CreateJob(ctx, tc.req); !tc.want(err) {
			t.Errorf("CreateJob(%+v): err %v", tc.req, err)
		}
	}
	h.now = h.now.Add(2 * time.Second)
	v, err = h.ctrl.CreateJob(ctx, api.CreateJobRequest{FromCronJob: "tick"})
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("tick-manual-%d", h.now.Unix()); v.Job.Name != want {
		t.Errorf("unnamed manual job: %q, want %q", v.Job.Name, want)
	}
	h.open()
	if got := len(h.jobs()); got != 2 {
		t.Errorf("%d jobs after a restart, want the 2 manual ones", got)
	}
}

// TestRequeueLoopPlansAtTheNextSlot runs the timer loop against a clock
// 200ms before a slot: without any commit or report, the slot's Job
// appears, and stopping the loop returns.
func TestRequeueLoopPlansAtTheNextSlot(t *testing.T) {
	h := newHarness(t)
	h.now = time.Date(2026, 1, 2, 3, 4, 59, 800_000_000, time.UTC)
	h.join("a", nil)
	h.src.commit("c1", map[string]string{"cron.yaml": cronManifest("tick", "* * * * *")})
	h.syncOK()
	if got := h.ctrl.RequeueAfter(); got != 200*time.Millisecond {
		t.Fatalf("RequeueAfter = %s, want 200ms", got)
	}
	start, base := time.Now(), h.now
	h.ctrl.cfg.Now = func() time.Time { return base.Add(time.Since(start)) }
	stop := h.ctrl.startRequeue(context.Background())
	defer stop()
	want := slotJob("tick", time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := h.jobs()[want]; ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not created by the requeue loop; jobs %v", want, keys(h.jobs()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := h.ctrl.RequeueAfter(); got <= 50*time.Second || got > time.Minute {
		t.Errorf("RequeueAfter after the slot = %s, want about a minute", got)
	}
}
