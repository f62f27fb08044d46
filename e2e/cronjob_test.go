package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// batchManifests are a Job that must succeed twice, one pod at a time,
// and a CronJob that runs every minute; both echo and exit 0.
func batchManifests(image string) string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata: {name: twice, namespace: default}
spec:
  completions: 2
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: %[1]s
        command: ["sh", "-c"]
        args: ["echo job done"]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: default}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
          - name: main
            image: %[1]s
            command: ["sh", "-c"]
            args: ["echo tick"]
`, image)
}

// jobs returns the Jobs as `moor get jobs -A -o json` lists them.
func (e *env) jobs() map[string]batchv1.Job {
	e.t.Helper()
	out := map[string]batchv1.Job{}
	for _, j := range getList[batchv1.Job](e, "jobs") {
		out[j.Name] = j
	}
	return out
}

func jobComplete(j batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func TestJobsAndCronJobs(t *testing.T) {
	e := newNodeEnv(t, "batch", batchManifests)

	e.eventually(60*time.Second, "job twice completes 2/2", func() error {
		j, ok := e.jobs()["twice"]
		if !ok {
			return fmt.Errorf("job twice not listed")
		}
		if !jobComplete(j) || j.Status.Succeeded != 2 {
			return fmt.Errorf("job twice: succeeded %d, conditions %+v", j.Status.Succeeded, j.Status.Conditions)
		}
		return nil
	})

	// A manual run of the CronJob's template.
	out := e.mustCLI("create", "job", "by-hand", "--from=cronjob/tick")
	if strings.TrimSpace(out) != "job.batch/by-hand created" {
		t.Fatalf("create job: %q", out)
	}

	// The every-minute CronJob: the next slot is at most a minute away.
	e.eventually(100*time.Second, "a scheduled job of tick and the manual one complete", func() error {
		var scheduled []string
		jobs := e.jobs()
		for name, j := range jobs {
			if strings.HasPrefix(name, "tick-") && len(j.OwnerReferences) == 1 && j.OwnerReferences[0].Name == "tick" && jobComplete(j) {
				scheduled = append(scheduled, name)
			}
		}
		if len(scheduled) == 0 {
			return fmt.Errorf("no complete job of cronjob tick yet; jobs: %d", len(jobs))
		}
		if !jobComplete(jobs["by-hand"]) {
			return fmt.Errorf("job by-hand not complete: %+v", jobs["by-hand"].Status)
		}
		return nil
	})
	t.Logf("moor get jobs,cronjobs:\n%s", e.mustCLI("get", "jobs,cronjobs"))
	if out := e.mustCLI("get", "cronjobs"); !strings.Contains(out, "* * * * *") {
		t.Errorf("get cronjobs:\n%s", out)
	}
}
