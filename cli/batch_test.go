package cli

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/moor-dev/moor/api"
)

// The fake serves the batch fixtures to every test; only the batch tests
// ask for them.
func (f *fakeReader) Jobs(context.Context) ([]api.JobView, error) { return jobFixtures(), f.err }
func (f *fakeReader) CronJobs(context.Context) ([]api.CronJobView, error) {
	return cronJobFixtures(), f.err
}

func condition(t batchv1.JobConditionType, d time.Duration) batchv1.JobCondition {
	return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(ago(d))}
}

func jobFixture(ns, name string, created time.Duration, completions *int32) api.JobView {
	j := batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(ago(created))},
		Spec: batchv1.JobSpec{Completions: completions, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"echo", "hi"}}}}}}}
	return api.JobView{Job: j, Commit: shaDeployed}
}

func jobFixtures() []api.JobView {
	once := jobFixture("default", "once", 10*time.Minute, ptr.To[int32](2))
	once.Job.Status = batchv1.JobStatus{Succeeded: 2, StartTime: mtime(10 * time.Minute), CompletionTime: mtime(9*time.Minute + 30*time.Second),
		Conditions: []batchv1.JobCondition{condition(batchv1.JobSuccessCriteriaMet, 9*time.Minute+30*time.Second), condition(batchv1.JobComplete, 9*time.Minute+30*time.Second)}}
	tick := jobFixture("default", "tick-29455385", 20*time.Second, nil)
	tick.Job.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: "tick", UID: "u-tick", Controller: ptr.To(true)}}
	tick.Job.Status = batchv1.JobStatus{Active: 1, StartTime: mtime(20 * time.Second)}
	failing := jobFixture("ops", "failing", 2*time.Hour, ptr.To[int32](1))
	failing.Job.Spec.Parallelism = ptr.To[int32](3)
	failing.Job.Status = batchv1.JobStatus{Failed: 7, StartTime: mtime(2 * time.Hour),
		Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded"}}}
	queue := jobFixture("ops", "queue", time.Minute, nil)
	queue.Job.Spec.Parallelism = ptr.To[int32](3)
	return []api.JobView{once, tick, failing, queue}
}

func cronJobFixtures() []api.CronJobView {
	tmpl := jobFixture("", "", 0, nil).Job.Spec
	tick := batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "tick", CreationTimestamp: metav1.NewTime(ago(72 * time.Hour))},
		Spec: batchv1.CronJobSpec{Schedule: "* * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: tmpl}},
		Status: batchv1.CronJobStatus{LastScheduleTime: mtime(20 * time.Second), LastSuccessfulTime: mtime(80 * time.Second),
			Active: []corev1.ObjectReference{{Kind: "Job", Namespace: "default", Name: "tick-29455385"}}}}
	nightly := batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: "nightly", CreationTimestamp: metav1.NewTime(ago(time.Hour))},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", TimeZone: ptr.To("Europe/Berlin"), Suspend: ptr.To(true), JobTemplate: batchv1.JobTemplateSpec{Spec: tmpl}}}
	return []api.CronJobView{{CronJob: tick, Commit: shaDeployed}, {CronJob: nightly, Commit: shaHead}}
}

func TestGetBatchGolden(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr bool
	}{
		{"jobs", []string{"get", "jobs"}, false},
		{"jobs-all-namespaces-wide", []string{"get", "job", "-A", "-o", "wide"}, false},
		{"cronjobs", []string{"get", "cronjobs", "-A"}, false},
		{"cronjobs-wide", []string{"get", "cj", "-o", "wide"}, false},
		{"jobs-cronjobs", []string{"get", "jobs,cronjobs"}, false},
		{"jobs-json", []string{"get", "jobs", "-o", "json"}, false},
		{"cronjob-yaml", []string{"get", "cronjob/tick", "-o", "yaml"}, false},
		{"batch-name", []string{"get", "jobs.batch,cj", "-A", "-o", "name"}, false},
		{"job-not-found", []string{"get", "job", "nope"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runRoot(t, fakeGet(fixtures()), tc.args...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v\n%s", err, tc.wantErr, got)
			}
			checkGolden(t, "get-"+tc.name, []byte(got))
		})
	}
}

// fakeCreator records the request and answers like the server.
type fakeCreator struct{ got api.CreateJobRequest }

func (f *fakeCreator) CreateJob(_ context.Context, req api.CreateJobRequest) (api.JobView, error) {
	f.got = req
	if req.FromCronJob != "tick" {
		return api.JobView{}, &APIError{StatusCode: 404, Message: fmt.Sprintf("cronjob %s/%s: %v: it is not in the deployed commit", req.Namespace, req.FromCronJob, errdefs.ErrNotFound)}
	}
	v := jobFixture(req.Namespace, req.Name, 0, nil)
	if req.Name == "" {
		v.Job.Name = "tick-manual-1767323045"
	}
	return v, nil
}

func TestCreateJobGolden(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantReq api.CreateJobRequest
		wantErr bool
	}{
		{"named", []string{"create", "job", "now", "--from=cronjob/tick"}, api.CreateJobRequest{Namespace: "default", Name: "now", FromCronJob: "tick"}, false},
		{"unnamed-namespace", []string{"create", "job", "--from", "cj/tick", "-n", "ops", "-o", "name"}, api.CreateJobRequest{Namespace: "ops", FromCronJob: "tick"}, false},
		{"json", []string{"create", "job", "now", "--from=cronjob.batch/tick", "-o", "json"}, api.CreateJobRequest{Namespace: "default", Name: "now", FromCronJob: "tick"}, false},
		{"not-found", []string{"create", "job", "x", "--from=cronjob/nope"}, api.CreateJobRequest{Namespace: "default", Name: "x", FromCronJob: "nope"}, true},
		{"no-from", []string{"create", "job", "x"}, api.CreateJobRequest{}, true},
		{"from-deployment", []string{"create", "job", "x", "--from=deploy/web"}, api.CreateJobRequest{}, true},
		{"all-namespaces", []string{"create", "job", "x", "--from=cj/tick", "-A"}, api.CreateJobRequest{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeCreator{}
			create := func(s Streams) *cobra.Command {
				cmd := &cobra.Command{Use: "create"}
				cmd.AddCommand(newCreateJobCommand(s, func(o Options) (jobCreator, string, error) {
					return fake, effectiveNamespace(o, ""), nil
				}))
				return cmd
			}
			got, err := runRoot(t, create, tc.args...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v\n%s", err, tc.wantErr, got)
			}
			if fake.got != tc.wantReq {
				t.Errorf("request = %+v, want %+v", fake.got, tc.wantReq)
			}
			checkGolden(t, "create-job-"+tc.name, []byte(got))
		})
	}
}
