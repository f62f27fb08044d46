package batch

import (
	"fmt"
	"maps"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
)

// AnnotationInstantiate marks a Job created by hand from a CronJob; key and
// value are kubectl's.
const (
	AnnotationInstantiate = "cronjob.kubernetes.io/instantiate"
	InstantiateManual     = "manual"
)

// JobNameForSlot is the name of the Job a CronJob runs for a slot:
// "<cronjob>-<unix minutes of the slot>", as in Kubernetes. Two slots never
// share a name and one slot always gets the same name, across restarts.
func JobNameForSlot(cronJob string, slot time.Time) string {
	return fmt.Sprintf("%s-%d", cronJob, slot.Unix()/60)
}

// ManualJobName is a default name for a Job instantiated by hand at now:
// "<cronjob>-manual-<unix seconds>".
func ManualJobName(cronJob string, now time.Time) string {
	return fmt.Sprintf("%s-manual-%d", cronJob, now.Unix())
}

// NewJobFromCronJob builds the Job a CronJob runs for a slot: the job
// template's labels, annotations and spec, the scheduled-timestamp
// annotation (RFC 3339 in the CronJob's time zone), moor's owner annotation
// and an owner reference to the CronJob.
func NewJobFromCronJob(cj batchv1.CronJob, slot time.Time) *batchv1.Job {
	j := jobFromTemplate(cj, JobNameForSlot(cj.Name, slot))
	loc, ferr := loadZone(cj.Spec.TimeZone)
	if ferr != nil {
		loc = time.UTC
	}
	j.Annotations[batchv1.CronJobScheduledTimestampAnnotation] = slot.In(loc).Format(time.RFC3339)
	return j
}

// NewManualJob builds a Job named name from a CronJob's template, as
// `kubectl create job NAME --from=cronjob/CJ` does: it carries the
// annotation cronjob.kubernetes.io/instantiate=manual and no scheduled time.
func NewManualJob(cj batchv1.CronJob, name string) *batchv1.Job {
	j := jobFromTemplate(cj, name)
	j.Annotations[AnnotationInstantiate] = InstantiateManual
	return j
}

func jobFromTemplate(cj batchv1.CronJob, name string) *batchv1.Job {
	tmpl := cj.Spec.JobTemplate.DeepCopy()
	annotations := maps.Clone(tmpl.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[api.AnnotationOwner] = "CronJob/" + cj.Name
	isController := true
	return &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   cj.Namespace,
			Labels:      maps.Clone(tmpl.Labels),
			Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "CronJob", Name: cj.Name, UID: cj.UID,
				Controller: &isController, BlockOwnerDeletion: &isController,
			}},
		},
		Spec: tmpl.Spec,
	}
}

// JobFinished reports whether a Job has a true Complete or Failed condition,
// which one, and when it finished (completionTime for Complete, else the
// condition's transition time).
func JobFinished(j *batchv1.Job) (batchv1.JobConditionType, time.Time, bool) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			at := c.LastTransitionTime.Time
			if j.Status.CompletionTime != nil {
				at = j.Status.CompletionTime.Time
			}
			return c.Type, at, true
		case batchv1.JobFailed:
			return c.Type, c.LastTransitionTime.Time, true
		}
	}
	return "", time.Time{}, false
}
