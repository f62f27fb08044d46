package cli

import (
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
)

// jobTable prints kubectl's (1.28+) Job columns; wide adds CONTAINERS,
// IMAGES, SELECTOR and the commit.
func jobTable(jobs []api.JobView, o tableOptions) table {
	h := []string{"NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"}
	if o.Wide {
		h = append(h, "CONTAINERS", "IMAGES", "SELECTOR", "COMMIT")
	}
	t := newTable(kindJob, o, h...)
	for i := range jobs {
		j := &jobs[i].Job
		cells := []string{jobStatus(j), jobCompletions(j), jobDuration(j, o), age(j.CreationTimestamp.Time, o.Now)}
		if o.Wide {
			names, images := podContainerColumns(&j.Spec.Template.Spec)
			cells = append(cells, names, images, selectorColumn(j.Spec.Selector), shortSHA(jobs[i].Commit))
		}
		t.addRow(kindJob, o, j.Namespace, j.Name, cells...)
	}
	return t
}

// cronJobTable prints kubectl's CronJob columns; wide adds CONTAINERS,
// IMAGES, SELECTOR and the commit.
func cronJobTable(cjs []api.CronJobView, o tableOptions) table {
	h := []string{"NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"}
	if o.Wide {
		h = append(h, "CONTAINERS", "IMAGES", "SELECTOR", "COMMIT")
	}
	t := newTable(kindCronJob, o, h...)
	for i := range cjs {
		c := &cjs[i].CronJob
		tz, last := "<none>", "<none>"
		if c.Spec.TimeZone != nil {
			tz = *c.Spec.TimeZone
		}
		if c.Status.LastScheduleTime != nil {
			last = age(c.Status.LastScheduleTime.Time, o.Now)
		}
		suspend := "False"
		if c.Spec.Suspend != nil && *c.Spec.Suspend {
			suspend = "True"
		}
		cells := []string{c.Spec.Schedule, tz, suspend, fmt.Sprint(len(c.Status.Active)), last, age(c.CreationTimestamp.Time, o.Now)}
		if o.Wide {
			names, images := podContainerColumns(&c.Spec.JobTemplate.Spec.Template.Spec)
			cells = append(cells, names, images, selectorColumn(c.Spec.JobTemplate.Spec.Selector), shortSHA(cjs[i].Commit))
		}
		t.addRow(kindCronJob, o, c.Namespace, c.Name, cells...)
	}
	return t
}

// jobStatus is kubectl's STATUS column of a Job.
func jobStatus(j *batchv1.Job) string {
	switch {
	case jobCondition(j, batchv1.JobComplete):
		return "Complete"
	case jobCondition(j, batchv1.JobFailed):
		return "Failed"
	case j.DeletionTimestamp != nil:
		return "Terminating"
	case jobCondition(j, batchv1.JobSuspended):
		return "Suspended"
	case jobCondition(j, batchv1.JobFailureTarget):
		return "FailureTarget"
	}
	return "Running"
}

func jobCondition(j *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// jobCompletions is kubectl's COMPLETIONS: "succeeded/completions", or
// "n/1 of parallelism" for a work queue.
func jobCompletions(j *batchv1.Job) string {
	if j.Spec.Completions != nil {
		return fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
	}
	if p := j.Spec.Parallelism; p != nil && *p > 1 {
		return fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, *p)
	}
	return fmt.Sprintf("%d/1", j.Status.Succeeded)
}

// jobDuration is kubectl's DURATION: start to completion, or to now while
// the Job runs; empty before it started.
func jobDuration(j *batchv1.Job, o tableOptions) string {
	switch {
	case j.Status.StartTime == nil:
		return ""
	case j.Status.CompletionTime == nil:
		return humanDuration(o.Now.Sub(j.Status.StartTime.Time))
	}
	return humanDuration(j.Status.CompletionTime.Sub(j.Status.StartTime.Time))
}

func podContainerColumns(spec *corev1.PodSpec) (names, images string) {
	var n, im []string
	for _, c := range spec.Containers {
		n, im = append(n, c.Name), append(im, c.Image)
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}

func selectorColumn(s *metav1.LabelSelector) string {
	if s == nil {
		return "<none>"
	}
	return metav1.FormatLabelSelector(s)
}
