package batch

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func validJob() *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "default"}}
	j.Spec.Template.Spec = corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
		Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}
	return j
}

func TestValidateJob(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*batchv1.Job)
		want   string // "" for valid
	}{
		{"valid", func(*batchv1.Job) {}, ""},
		{"OnFailure", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure }, ""},
		{"Always", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways },
			`spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"`},
		{"empty restartPolicy", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = "" },
			`spec.template.spec.restartPolicy: Required value: set it to Never or OnFailure: the default, Always, is not allowed for a Job's pods`},
		{"negative completions", func(j *batchv1.Job) { j.Spec.Completions = ptr(int32(-1)) },
			"spec.completions: Invalid value: -1: must be greater than or equal to 0"},
		{"zero deadline", func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = ptr(int64(0)) },
			"spec.activeDeadlineSeconds: Invalid value: 0: must be greater than 0"},
		{"indexed without completions", func(j *batchv1.Job) { j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion) },
			"spec.completions: Required value: when completion mode is Indexed"},
		{"selector", func(j *batchv1.Job) { j.Spec.Selector = &metav1.LabelSelector{} },
			"spec.selector: Forbidden: moor selects a Job's pods itself"},
		{"pod failure policy", func(j *batchv1.Job) { j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{} },
			"spec.podFailurePolicy: Forbidden: not supported by moor"},
		{"long name", func(j *batchv1.Job) { j.Name = strings.Repeat("a", 64) },
			"metadata.name: Too long: may not be more than 63 bytes"},
		{"no containers", func(j *batchv1.Job) { j.Spec.Template.Spec.Containers = nil },
			"spec.template.spec.containers: Required value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := validJob()
			tc.mutate(j)
			errs := ValidateJob(j)
			if tc.want == "" {
				if len(errs) > 0 {
					t.Fatal(errs.ToAggregate())
				}
				return
			}
			if len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), tc.want) {
				t.Fatalf("got %v, want %q", errs.ToAggregate(), tc.want)
			}
		})
	}
}

func TestValidateCronJob(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*batchv1.CronJob)
		want   []string
	}{
		{"valid", func(*batchv1.CronJob) {}, nil},
		{"TZ in schedule", func(cj *batchv1.CronJob) { cj.Spec.Schedule = "CRON_TZ=UTC 0 * * * *" },
			[]string{`spec.schedule: Invalid value: "CRON_TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead`}},
		{"bad zone and bad schedule together", func(cj *batchv1.CronJob) {
			cj.Spec.Schedule, cj.Spec.TimeZone = "0 25 * * *", ptr("Nowhere/City")
		}, []string{`spec.timeZone: Invalid value: "Nowhere/City": unknown time zone Nowhere/City`, "spec.schedule: Invalid value"}},
		{"policy", func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = "Sometimes" },
			[]string{`spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"`}},
		{"limits", func(cj *batchv1.CronJob) {
			cj.Spec.SuccessfulJobsHistoryLimit, cj.Spec.StartingDeadlineSeconds = ptr(int32(-1)), ptr(int64(-5))
		}, []string{"spec.startingDeadlineSeconds: Invalid value: -5", "spec.successfulJobsHistoryLimit: Invalid value: -1"}},
		{"template restartPolicy", func(cj *batchv1.CronJob) {
			cj.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		}, []string{`spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: "Always"`}},
		{"long name", func(cj *batchv1.CronJob) { cj.Name = strings.Repeat("b", 53) },
			[]string{"metadata.name: Too long: may not be more than 52 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cj := testCronJob(t, "*/5 * * * *", ptr("Europe/Paris"))
			tc.mutate(&cj)
			errs := ValidateCronJob(&cj)
			if len(tc.want) == 0 {
				if len(errs) > 0 {
					t.Fatal(errs.ToAggregate())
				}
				return
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors, want %d: %v", len(errs), len(tc.want), errs.ToAggregate())
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d: got %q, want %q", i, errs[i].Error(), w)
				}
			}
		})
	}
}

func TestCheckJobUpdate(t *testing.T) {
	old := validJob()
	for _, tc := range []struct {
		name   string
		mutate func(*batchv1.Job)
		want   string
	}{
		{"unchanged", func(*batchv1.Job) {}, ""},
		{"mutable fields", func(j *batchv1.Job) {
			j.Spec.Parallelism, j.Spec.BackoffLimit, j.Spec.Suspend = ptr(int32(3)), ptr(int32(1)), ptr(true)
			j.Spec.TTLSecondsAfterFinished, j.Spec.ActiveDeadlineSeconds = ptr(int32(5)), ptr(int64(60))
		}, ""},
		{"image", func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "busybox:2" },
			"spec.template: Invalid value: field is immutable"},
		{"completions", func(j *batchv1.Job) { j.Spec.Completions = ptr(int32(2)) },
			"spec.completions: Invalid value: field is immutable"},
		{"explicit default completion mode", func(j *batchv1.Job) { j.Spec.CompletionMode = ptr(batchv1.NonIndexedCompletion) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			updated := old.DeepCopy()
			tc.mutate(updated)
			errs := CheckJobUpdate(old, updated)
			if tc.want == "" {
				if len(errs) > 0 {
					t.Fatal(errs.ToAggregate())
				}
				return
			}
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), tc.want) {
				t.Fatalf("got %v, want %q", errs.ToAggregate(), tc.want)
			}
		})
	}
}
