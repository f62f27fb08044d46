package planner

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/batch"
)

const migrateJob = `apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  completions: 3
  parallelism: 2
  backoffLimit: 4
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: c, image: busybox}
`

const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: c, image: busybox}
`

// TestJobProgression: completions 3, parallelism 2, one failure retried
// after its backoff, completion, and then an unrelated commit that must
// not run anything again.
func TestJobProgression(t *testing.T) {
	s := newBatchSim(t, batchObjects(t, migrateJob))
	const job = "default/migrate"
	s.plan("first plan starts two pods", 0)
	p0, p1 := s.pod(job, 0, 0), s.pod(job, 1, 0)
	if got := jobPodNames(s.out, "migrate"); len(got) != 2 {
		t.Fatalf("pods %v, want 2", got)
	}
	s.set(corev1.PodRunning, p0, p1)
	s.plan("both run", time.Second)
	s.set(corev1.PodSucceeded, p0)
	s.plan("slot 0 succeeds, slot 2 starts", 2*time.Second)
	p2 := s.pod(job, 2, 0)
	s.set(corev1.PodFailed, p1)
	s.set(corev1.PodRunning, p2)
	s.plan("slot 1 fails: backoff", 3*time.Second)
	if s.out.RequeueAfter != 10*time.Second {
		t.Errorf("requeue after %s, want the 10s backoff", s.out.RequeueAfter)
	}
	s.plan("backoff not over", 8*time.Second)
	s.plan("backoff over: slot 1 retried", 13*time.Second)
	p1b := s.pod(job, 1, 1)
	s.set(corev1.PodSucceeded, p1b, p2)
	s.plan("all succeeded: complete", 20*time.Second)
	done := s.out
	st := done.JobStates[job].Job.Status
	if st.Succeeded != 3 || st.Failed != 1 || st.CompletionTime == nil || st.Active != 0 {
		t.Fatalf("status %+v", st)
	}

	// An unrelated commit: the Job stays complete, its terminated pods
	// stay where they ran with the same spec, nothing new starts.
	s.in.Commit = "c2"
	s.in.Objects = batchObjects(t, migrateJob+"---\n"+webDeployment)
	s.plan("unrelated commit", time.Hour)
	if got, want := jobPodNames(s.out, "migrate"), jobPodNames(done, "migrate"); !slices.Equal(got, want) {
		t.Errorf("pods after an unrelated commit %v, want %v", got, want)
	}
	for node, d := range done.Nodes {
		for _, p := range d.Pods {
			if i := slices.IndexFunc(s.out.Nodes[node].Pods, func(q api.Pod) bool { return q.Name == p.Name }); i < 0 ||
				s.out.Nodes[node].Pods[i].SpecHash != p.SpecHash || s.out.Nodes[node].Pods[i].UID != p.UID {
				t.Errorf("pod %s changed or moved from %s", p.Name, node)
			}
		}
	}
	if a, b := mustJSON(t, s.out.JobStates[job]), mustJSON(t, done.JobStates[job]); a != b {
		t.Errorf("job state changed on an unrelated commit:\n%+v\n%+v", s.out.JobStates[job], done.JobStates[job])
	}

	// Removing the Job from Git deletes it with its pods.
	s.in.Objects = batchObjects(t, webDeployment)
	s.plan("job removed from git", 2*time.Hour)
	if len(s.out.JobStates) != 0 || len(jobPodNames(s.out, "migrate")) != 0 {
		t.Errorf("removed job left state %v or pods", s.out.JobStates)
	}
	goldenFile(t, "progression", s.trace.String())
}

// TestJobBackoffLimit: the second failure exceeds backoffLimit 1 (three
// under OnFailure restarts); no pod starts after that.
func TestJobBackoffLimit(t *testing.T) {
	for _, tt := range []struct {
		name, policy string
	}{{"never", "Never"}, {"onfailure", "OnFailure"}} {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.NewReplacer("completions: 3", "completions: 1", "parallelism: 2", "parallelism: 1",
				"backoffLimit: 4", "backoffLimit: 1", "Never", tt.policy).Replace(migrateJob)
			s := newBatchSim(t, batchObjects(t, src))
			const job = "default/migrate"
			s.plan("start", 0)
			p := s.pod(job, 0, 0)
			if tt.policy == "Never" {
				s.set(corev1.PodFailed, p)
				s.plan("first failure", time.Second)
				s.plan("retry", 20*time.Second)
				s.set(corev1.PodFailed, s.pod(job, 0, 1))
			} else {
				s.set(corev1.PodRunning, p)
				s.restarts[p] = 2 // the agent restarted it in place twice
			}
			s.plan("backoff limit exceeded", 30*time.Second)
			st := s.out.JobStates[job].Job.Status
			if len(st.Conditions) != 1 || st.Conditions[0].Type != batchv1.JobFailed ||
				st.Conditions[0].Reason != batchv1.JobReasonBackoffLimitExceeded {
				t.Fatalf("conditions %+v", st.Conditions)
			}
			before := jobPodNames(s.out, "migrate")
			s.plan("much later", time.Hour)
			if got := jobPodNames(s.out, "migrate"); !slices.Equal(got, before) {
				t.Errorf("a failed job changed pods: %v → %v", before, got)
			}
			goldenFile(t, "backoff-"+tt.name, s.trace.String())
		})
	}
}

const reportCron = `apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  schedule: "*/5 * * * *"
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - {name: c, image: busybox}
`

// TestCronJob: the first slot after the CronJob was first seen creates a
// Job whose pod is planned in the same plan; completion sets
// lastSuccessfulTime; the history limit deletes the older Job and its pod.
func TestCronJob(t *testing.T) {
	s := newBatchSim(t, batchObjects(t, reportCron))
	s.plan("cronjob first seen at 10:02", 0)
	if len(s.out.JobStates) != 0 || s.out.RequeueAfter != 3*time.Minute {
		t.Fatalf("jobs %v, requeue %s; want none and 3m", s.out.JobStates, s.out.RequeueAfter)
	}
	s.plan("10:05:01: slot 10:05 due", 3*time.Minute+time.Second)
	first := "default/" + batch.JobNameForSlot("report", t0.Add(3*time.Minute))
	if _, ok := s.out.JobStates[first]; !ok {
		t.Fatalf("no job %s in %v", first, sortedKeys(s.out.JobStates))
	}
	p := s.pod(first, 0, 0)
	if len(jobPodNames(s.out, strings.TrimPrefix(first, "default/"))) != 1 {
		t.Fatalf("the new job's pod is not planned")
	}
	s.set(corev1.PodSucceeded, p)
	s.plan("job done", 4*time.Minute)
	s.plan("10:10:01: next slot", 8*time.Minute+time.Second)
	second := "default/" + batch.JobNameForSlot("report", t0.Add(8*time.Minute))
	s.set(corev1.PodSucceeded, s.pod(second, 0, 0))
	s.plan("second done: history limit 1 deletes the first", 9*time.Minute)
	if _, ok := s.out.JobStates[first]; ok {
		t.Errorf("job %s survived the history limit", first)
	}
	if len(jobPodNames(s.out, strings.TrimPrefix(first, "default/"))) != 0 {
		t.Errorf("pods of the deleted job are still planned")
	}
	cj := s.out.CronJobs[0].CronJob
	if cj.Status.LastSuccessfulTime == nil || cj.Status.LastScheduleTime == nil ||
		!cj.Status.LastScheduleTime.Time.Equal(t0.Add(8*time.Minute)) {
		t.Errorf("cronjob status %+v", cj.Status)
	}
	// The CronJob leaves Git: its Jobs go with it.
	s.in.Objects = batchObjects(t, webDeployment)
	s.plan("cronjob removed", 10*time.Minute)
	if len(s.out.JobStates) != 0 || len(s.out.CronJobStates) != 0 {
		t.Errorf("state left: %v %v", s.out.JobStates, s.out.CronJobStates)
	}
	goldenFile(t, "cronjob", s.trace.String())
}

// TestManualJob: a Job created by hand from a CronJob runs at once, and a
// second one with the same name is refused.
func TestManualJob(t *testing.T) {
	s := newBatchSim(t, batchObjects(t, reportCron))
	s.plan("cronjob first seen", 0)
	req := api.CreateJobRequest{FromCronJob: "report", Name: "report-now"}
	st, err := NewManualJob(s.in.Objects, s.in.JobStates, req, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if JobKey(&st.Job) != "default/report-now" || cronOwner(&st.Job) != "report" {
		t.Fatalf("manual job %s owned by %q", JobKey(&st.Job), cronOwner(&st.Job))
	}
	states := map[string]JobState{JobKey(&st.Job): st}
	s.in.JobStates = states
	s.plan("manual job", time.Second)
	if len(jobPodNames(s.out, "report-now")) != 1 {
		t.Fatalf("manual job's pod not planned")
	}
	if len(s.out.CronJobs[0].CronJob.Status.Active) != 1 {
		t.Errorf("cronjob does not list the manual job as active: %+v", s.out.CronJobs[0].CronJob.Status)
	}
	for _, tt := range []struct {
		req  api.CreateJobRequest
		want error
	}{
		{req, errdefs.ErrAlreadyExists},
		{api.CreateJobRequest{FromCronJob: "nope"}, errdefs.ErrNotFound},
		{api.CreateJobRequest{FromCronJob: "report", Name: "Bad_Name"}, errdefs.ErrInvalidArgument},
	} {
		if _, err := NewManualJob(s.in.Objects, s.in.JobStates, tt.req, t0); !errors.Is(err, tt.want) {
			t.Errorf("NewManualJob(%+v) = %v, want %v", tt.req, err, tt.want)
		}
	}
	if got, err := NewManualJob(s.in.Objects, s.in.JobStates, api.CreateJobRequest{FromCronJob: "report"}, t0); err != nil ||
		got.Job.Name != "report-manual-"+strconv.FormatInt(t0.Unix(), 10) {
		t.Errorf("default name: %v %v", got.Job.Name, err)
	}
}

// TestJobImmutableInPlanner: if an edited template reaches the planner
// anyway, the Job keeps running as accepted and a warning says why;
// ExistingJobs hands the accepted Jobs to manifest validation.
func TestJobImmutableInPlanner(t *testing.T) {
	s := newBatchSim(t, batchObjects(t, migrateJob))
	s.plan("start", 0)
	before := jobPodNames(s.out, "migrate")
	existing := ExistingJobs(s.out.JobStates)
	if _, ok := existing["default/migrate"]; !ok || len(existing) != 1 {
		t.Fatalf("ExistingJobs = %v", existing)
	}
	s.in.Objects = batchObjects(t, strings.Replace(migrateJob, "image: busybox", "image: busybox:2", 1))
	s.plan("template edited", time.Second)
	if got := jobPodNames(s.out, "migrate"); !slices.Equal(got, before) {
		t.Errorf("pods %v, want %v", got, before)
	}
	for _, d := range s.out.Nodes {
		for _, p := range d.Pods {
			if p.Spec.Containers[0].Image != "busybox" {
				t.Errorf("pod %s runs the edited image", p.Name)
			}
		}
	}
	if len(s.out.Warnings) != 1 || !strings.Contains(s.out.Warnings[0], "field is immutable") {
		t.Errorf("warnings %q", s.out.Warnings)
	}
}

// TestJobDeterminism: the same input with status in another order gives
// the same documents and the same states.
func TestJobDeterminism(t *testing.T) {
	s := newBatchSim(t, batchObjects(t, migrateJob+"---\n"+reportCron+"---\n"+webDeployment))
	s.plan("start", 0)
	s.set(corev1.PodRunning, s.pod("default/migrate", 0, 0))
	s.set(corev1.PodFailed, s.pod("default/migrate", 1, 0))
	s.in.Now = t0.Add(6 * time.Minute)
	s.in.Status = s.status()
	a := Plan(s.in)
	for node, pods := range s.in.Status {
		s.in.Status[node] = append([]api.PodStatus(nil), pods...)
		slices.Reverse(s.in.Status[node])
	}
	s.in.Nodes = []Node{s.in.Nodes[1], s.in.Nodes[0]}
	b := Plan(s.in)
	for node := range a.Nodes {
		ab, ad, _ := a.Nodes[node].Encode()
		bb, bd, _ := b.Nodes[node].Encode()
		if ad != bd {
			t.Errorf("node %s documents differ:\n%s\n%s", node, ab, bb)
		}
	}
	if !reflect.DeepEqual(a.JobStates, b.JobStates) || !reflect.DeepEqual(a.CronJobStates, b.CronJobStates) ||
		!reflect.DeepEqual(a.Jobs, b.Jobs) || !reflect.DeepEqual(a.Events, b.Events) {
		t.Error("job states, views or events differ")
	}
	if len(a.JobStates) != 2 {
		t.Errorf("want the Git job and one cron job, got %v", sortedKeys(a.JobStates))
	}
}

// TestJobTTL: once ttlSecondsAfterFinished has passed, a Git Job's pods
// go but its finished state stays (so it never runs again while in Git);
// a CronJob's Job goes entirely.
func TestJobTTL(t *testing.T) {
	src := strings.NewReplacer("completions: 3", "completions: 1", "parallelism: 2", "parallelism: 1",
		"backoffLimit: 4", "ttlSecondsAfterFinished: 60").Replace(migrateJob)
	cron := strings.Replace(reportCron, "    spec:\n      template:", "    spec:\n      ttlSecondsAfterFinished: 60\n      template:", 1)
	s := newBatchSim(t, batchObjects(t, src+"---\n"+cron))
	s.plan("start", 0)
	s.set(corev1.PodSucceeded, s.pod("default/migrate", 0, 0))
	s.plan("cron slot; job done", 3*time.Minute+time.Second)
	cronJob := "default/" + batch.JobNameForSlot("report", t0.Add(3*time.Minute))
	s.set(corev1.PodSucceeded, s.pod(cronJob, 0, 0))
	s.plan("cron job done", 3*time.Minute+2*time.Second)
	if d := s.out.RequeueAfter; d != 59*time.Second {
		t.Errorf("requeue after %s, want the end of the git job's TTL (59s)", d)
	}
	s.plan("both expired", 5*time.Minute)
	if st, ok := s.out.JobStates["default/migrate"]; !ok || !st.Expired || st.Job.Status.Succeeded != 1 {
		t.Errorf("git job state %+v", st)
	}
	if _, ok := s.out.JobStates[cronJob]; ok {
		t.Errorf("expired cron job %s kept", cronJob)
	}
	s.in.Commit = "c2"
	s.plan("unrelated commit", time.Hour)
	if n := len(jobPodNames(s.out, "migrate")); n != 0 || len(s.out.Jobs) == 0 {
		t.Errorf("expired job has %d pods and %d views", n, len(s.out.Jobs))
	}
	goldenFile(t, "ttl", s.trace.String())
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
