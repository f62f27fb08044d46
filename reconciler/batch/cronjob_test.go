package batch

import (
	"errors"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
)

func testCronJob(t *testing.T, schedule string, tz *string) batchv1.CronJob {
	t.Helper()
	cj := batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "backup", Namespace: "ops", UID: "cj-uid",
		CreationTimestamp: metav1.Time{Time: mustTime(t, "2024-01-01T00:00:00Z")}}}
	cj.Spec.Schedule, cj.Spec.TimeZone = schedule, tz
	cj.Spec.JobTemplate.Labels = map[string]string{"app": "backup"}
	cj.Spec.JobTemplate.Annotations = map[string]string{"note": "x"}
	cj.Spec.JobTemplate.Spec.Template.Spec = corev1.PodSpec{RestartPolicy: corev1.RestartPolicyOnFailure,
		Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}
	return cj
}

func TestJobNameForSlot(t *testing.T) {
	a := mustTime(t, "2012-11-04T01:30:00-04:00")
	b := mustTime(t, "2012-11-04T01:30:00-05:00") // same wall clock, one hour later
	if JobNameForSlot("x", a) == JobNameForSlot("x", b) {
		t.Fatal("two slots share a name")
	}
	if JobNameForSlot("x", a) != JobNameForSlot("x", a.In(time.UTC)) {
		t.Fatal("one slot has two names")
	}
	seen := map[string]time.Time{}
	for m := range 60 * 24 * 3 {
		slot := a.Add(time.Duration(m) * time.Minute)
		name := JobNameForSlot("x", slot)
		if prev, ok := seen[name]; ok {
			t.Fatalf("%s and %s share %s", prev, slot, name)
		}
		seen[name] = slot
	}
	if got := JobNameForSlot("backup", mustTime(t, "2024-01-01T00:05:00Z")); got != "backup-28401125" {
		t.Fatalf("got %s", got)
	}
}

func TestNewJobFromCronJob(t *testing.T) {
	cj := testCronJob(t, "30 1 * * *", ptr("America/New_York"))
	slot := mustTime(t, "2012-11-04T05:30:00Z")
	j := NewJobFromCronJob(cj, slot)
	if j.Name != "backup-22533450" || j.Namespace != "ops" || j.Kind != "Job" {
		t.Fatalf("got %s/%s %s", j.Namespace, j.Name, j.Kind)
	}
	if got := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != "2012-11-04T01:30:00-04:00" {
		t.Errorf("scheduled timestamp %q", got)
	}
	if j.Annotations[api.AnnotationOwner] != "CronJob/backup" || j.Annotations["note"] != "x" || j.Labels["app"] != "backup" {
		t.Errorf("metadata %v %v", j.Labels, j.Annotations)
	}
	if len(j.OwnerReferences) != 1 || j.OwnerReferences[0].UID != "cj-uid" || !*j.OwnerReferences[0].Controller {
		t.Errorf("owner %v", j.OwnerReferences)
	}
	j.Labels["app"] = "changed"
	if cj.Spec.JobTemplate.Labels["app"] != "backup" {
		t.Fatal("the Job aliases the CronJob's template")
	}

	m := NewManualJob(cj, ManualJobName("backup", mustTime(t, "2024-01-01T00:00:00Z")))
	if m.Name != "backup-manual-1704067200" || m.Annotations[AnnotationInstantiate] != "manual" {
		t.Fatalf("manual job %s %v", m.Name, m.Annotations)
	}
	if _, ok := m.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; ok {
		t.Fatal("manual job has a scheduled timestamp")
	}
}

func TestPlanCronJobEdges(t *testing.T) {
	t.Run("job created before a crash is not created again", func(t *testing.T) {
		cj := testCronJob(t, "*/5 * * * *", nil)
		slot := mustTime(t, "2024-01-01T00:05:00Z")
		existing := *NewJobFromCronJob(cj, slot)
		res, err := PlanCronJob(CronInput{CronJob: cj, Now: slot.Add(time.Second), Jobs: []batchv1.Job{existing}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Create != nil || !res.Status.LastScheduleTime.Time.Equal(slot) || len(res.Status.Active) != 1 {
			t.Fatalf("got %+v", res)
		}
	})
	t.Run("no creation time", func(t *testing.T) {
		cj := testCronJob(t, "*/5 * * * *", nil)
		cj.CreationTimestamp = metav1.Time{}
		_, err := PlanCronJob(CronInput{CronJob: cj, Now: mustTime(t, "2024-01-01T00:05:00Z")})
		if !errors.Is(err, ErrNoCreationTime) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("invalid schedule", func(t *testing.T) {
		cj := testCronJob(t, "TZ=UTC * * * * *", nil)
		if _, err := PlanCronJob(CronInput{CronJob: cj, Now: mustTime(t, "2024-01-01T00:05:00Z")}); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("deterministic", func(t *testing.T) {
		cj := testCronJob(t, "*/5 * * * *", nil)
		in := CronInput{CronJob: cj, Now: mustTime(t, "2024-01-03T00:07:00Z")}
		a, _ := PlanCronJob(in)
		b, _ := PlanCronJob(in)
		if a.Create == nil || a.Create.Name != b.Create.Name || a.Events[0] != b.Events[0] {
			t.Fatalf("%+v\n%+v", a, b)
		}
	})
}
