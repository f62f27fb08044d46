package manifest

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/reconciler/batch"
)

const jobYAML = `apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  completions: 3
  parallelism: %PAR%
  template:
    metadata: {labels: {app: migrate}}
    spec:
      restartPolicy: Never
      containers:
      - {name: c, image: %IMAGE%}
`

func jobSource(image, parallelism string) []byte {
	return []byte(strings.NewReplacer("%IMAGE%", image, "%PAR%", parallelism).Replace(jobYAML))
}

// TestJobImmutable: with the accepted Job in Options.ExistingJobs, an edit
// of its template is rejected like Kubernetes does, while a change of a
// mutable field (parallelism) is accepted.
func TestJobImmutable(t *testing.T) {
	objs, err := Load(map[string][]byte{"job.yaml": jobSource("busybox:1", "2")})
	if err != nil {
		t.Fatal(err)
	}
	existing := map[string]batchv1.Job{"default/migrate": objs.Jobs[0]}
	opts := Options{ExistingJobs: existing}
	for _, tt := range []struct {
		name, image, parallelism string
		want                     string
	}{
		{"unchanged", "busybox:1", "2", ""},
		{"mutable field", "busybox:1", "5", ""},
		{"template edited", "busybox:2", "2", "job.yaml: document 0: Job default/migrate: spec.template: Invalid value: " +
			"field is immutable: rename the Job, or delete it in one commit and add it back in the next, to run a changed Job"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadWithOptions(map[string][]byte{"job.yaml": jobSource(tt.image, tt.parallelism)}, opts)
			got := ""
			if err != nil {
				checkErrorClass(t, err)
				got = err.Error()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
	// Another namespace is another Job.
	if _, err := LoadWithOptions(map[string][]byte{"job.yaml": jobSource("busybox:2", "2")},
		Options{ExistingJobs: map[string]batchv1.Job{"other/migrate": objs.Jobs[0]}}); err != nil {
		t.Errorf("a Job of another namespace was compared: %v", err)
	}
}

// checkBatchObjects asserts what Load promises about Jobs and CronJobs.
func checkBatchObjects(t *testing.T, objs *Objects) {
	t.Helper()
	var keys []string
	for _, j := range objs.Jobs {
		keys = append(keys, j.Namespace+"/"+j.Name)
		checkJobSpec(t, "job "+j.Name, &j.Spec)
	}
	if !slices.IsSorted(keys) {
		t.Errorf("jobs not sorted: %v", keys)
	}
	keys = nil
	for _, cj := range objs.CronJobs {
		keys = append(keys, cj.Namespace+"/"+cj.Name)
		checkJobSpec(t, "cronjob "+cj.Name, &cj.Spec.JobTemplate.Spec)
		if _, err := batch.ParseSchedule(cj.Spec.Schedule, cj.Spec.TimeZone); err != nil {
			t.Errorf("cronjob %s accepted with schedule error %v", cj.Name, err)
		}
	}
	if !slices.IsSorted(keys) {
		t.Errorf("cronjobs not sorted: %v", keys)
	}
}

func checkJobSpec(t *testing.T, what string, spec *batchv1.JobSpec) {
	t.Helper()
	switch spec.Template.Spec.RestartPolicy {
	case corev1.RestartPolicyNever, corev1.RestartPolicyOnFailure:
	default:
		t.Errorf("%s accepted with restartPolicy %q", what, spec.Template.Spec.RestartPolicy)
	}
	if len(spec.Template.Spec.Containers) == 0 {
		t.Errorf("%s accepted without containers", what)
	}
}
