package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"

	"github.com/moor-dev/moor/api"
)

// Kubernetes' defaults that moor's controllers apply to unset fields
// (manifests are not defaulted, so describe shows what is in effect).
const (
	defaultMaxSurgeUnavailable        = "25%"
	defaultParallelism                = 1
	defaultBackoffLimit               = 6
	defaultSuccessfulJobsHistoryLimit = 3
	defaultFailedJobsHistoryLimit     = 1
)

// describeDeployment renders a Deployment as kubectl describe deployment
// does; the rollout and its revisions (moor's ReplicaSets) follow the
// conditions.
func describeDeployment(w io.Writer, v api.DeploymentView, now time.Time) error {
	dep := &v.Deployment
	d := newDescriber()
	d.field(0, "Name", dep.Name)
	d.field(0, "Namespace", dep.Namespace)
	if !dep.CreationTimestamp.IsZero() {
		d.field(0, "CreationTimestamp", stamp(dep.CreationTimestamp.Time, now))
	}
	d.list(0, "Labels", pairs(dep.Labels, "="))
	d.list(0, "Annotations", pairs(dep.Annotations, ": "))
	d.field(0, "Selector", selectorColumn(dep.Spec.Selector))
	desired := int32(1)
	if dep.Spec.Replicas != nil {
		desired = *dep.Spec.Replicas
	}
	st := &dep.Status
	d.field(0, "Replicas", fmt.Sprintf("%d desired | %d updated | %d total | %d available | %d unavailable",
		desired, st.UpdatedReplicas, st.Replicas, st.AvailableReplicas, st.UnavailableReplicas))
	strategy := dep.Spec.Strategy.Type
	if strategy == "" {
		strategy = appsv1.RollingUpdateDeploymentStrategyType
	}
	d.field(0, "StrategyType", string(strategy))
	d.field(0, "MinReadySeconds", strconv.Itoa(int(dep.Spec.MinReadySeconds)))
	if strategy == appsv1.RollingUpdateDeploymentStrategyType {
		surge, unavailable := defaultMaxSurgeUnavailable, defaultMaxSurgeUnavailable
		if ru := dep.Spec.Strategy.RollingUpdate; ru != nil {
			if ru.MaxSurge != nil {
				surge = ru.MaxSurge.String()
			}
			if ru.MaxUnavailable != nil {
				unavailable = ru.MaxUnavailable.String()
			}
		}
		d.field(0, "RollingUpdateStrategy", unavailable+" max unavailable, "+surge+" max surge")
	}
	d.field(0, "Commit", shortSHA(v.Commit))
	describePodTemplate(d, &dep.Spec.Template, now)
	var conds [][]string
	for _, c := range st.Conditions {
		conds = append(conds, []string{string(c.Type), string(c.Status), orNone(c.Reason)})
	}
	d.table(0, "Conditions", []string{"Type", "Status", "Reason"}, conds)
	ro := &v.Rollout
	switch {
	case ro.State == "":
		d.field(0, "Rollout", "<none>")
	case ro.Message == "":
		d.field(0, "Rollout", ro.State)
	default:
		d.field(0, "Rollout", ro.State+": "+oneLine(ro.Message))
	}
	var revs [][]string
	for _, r := range ro.Revisions {
		hash := r.Hash
		if r.Current {
			hash += " (current)"
		}
		revs = append(revs, []string{hash, fmt.Sprint(r.Replicas), fmt.Sprint(r.Ready), fmt.Sprint(r.Available), orNone(strings.Join(r.Images, ","))})
	}
	d.table(0, "Revisions", []string{"Hash", "Pods", "Ready", "Available", "Images"}, revs)
	return d.writeTo(w)
}

// describeJob renders a Job as kubectl describe job does, with its
// conditions.
func describeJob(w io.Writer, v api.JobView, now time.Time) error {
	j := &v.Job
	d := newDescriber()
	d.field(0, "Name", j.Name)
	d.field(0, "Namespace", j.Namespace)
	d.field(0, "Selector", selectorColumn(j.Spec.Selector))
	d.list(0, "Labels", pairs(j.Labels, "="))
	d.list(0, "Annotations", pairs(j.Annotations, ": "))
	if c := controllerOf(&j.ObjectMeta); c != "" {
		d.field(0, "Controlled By", c)
	}
	d.field(0, "Parallelism", strconv.Itoa(int(deref(j.Spec.Parallelism, defaultParallelism))))
	d.field(0, "Completions", orUnset(j.Spec.Completions, itoa32))
	if m := j.Spec.CompletionMode; m != nil {
		d.field(0, "Completion Mode", string(*m))
	}
	d.field(0, "Suspend", strconv.FormatBool(ptrTrue(j.Spec.Suspend)))
	d.field(0, "Backoff Limit", strconv.Itoa(int(deref(j.Spec.BackoffLimit, defaultBackoffLimit))))
	if t := j.Spec.TTLSecondsAfterFinished; t != nil {
		d.field(0, "TTL Seconds After Finished", itoa32(*t))
	}
	start, done := j.Status.StartTime, j.Status.CompletionTime
	if start != nil {
		d.field(0, "Start Time", stamp(start.Time, now))
	}
	if done != nil {
		d.field(0, "Completed At", stamp(done.Time, now))
	}
	switch {
	case start != nil && done != nil:
		d.field(0, "Duration", humanDuration(done.Sub(start.Time)))
	case start != nil && jobStatus(j) == "Running":
		d.field(0, "Duration", humanDuration(now.Sub(start.Time))+" (running)")
	}
	if a := j.Spec.ActiveDeadlineSeconds; a != nil {
		d.field(0, "Active Deadline Seconds", fmt.Sprintf("%ds", *a))
	}
	pods := fmt.Sprintf("%d Active / %d Succeeded / %d Failed", j.Status.Active, j.Status.Succeeded, j.Status.Failed)
	if r := j.Status.Ready; r != nil {
		pods = fmt.Sprintf("%d Active (%d Ready) / %d Succeeded / %d Failed", j.Status.Active, *r, j.Status.Succeeded, j.Status.Failed)
	}
	d.field(0, "Pods Statuses", pods)
	d.field(0, "Commit", shortSHA(v.Commit))
	describePodTemplate(d, &j.Spec.Template, now)
	d.table(0, "Conditions", []string{"Type", "Status", "Reason", "Message"}, jobConditions(j.Status.Conditions))
	return d.writeTo(w)
}

func jobConditions(cs []batchv1.JobCondition) [][]string {
	var rows [][]string
	for _, c := range cs {
		rows = append(rows, []string{string(c.Type), string(c.Status), orNone(c.Reason), orNone(oneLine(c.Message))})
	}
	return rows
}

// describeCronJob renders a CronJob as kubectl describe cronjob does,
// with the time zone and last successful time.
func describeCronJob(w io.Writer, v api.CronJobView, now time.Time) error {
	c := &v.CronJob
	d := newDescriber()
	d.field(0, "Name", c.Name)
	d.field(0, "Namespace", c.Namespace)
	d.list(0, "Labels", pairs(c.Labels, "="))
	d.list(0, "Annotations", pairs(c.Annotations, ": "))
	d.field(0, "Schedule", c.Spec.Schedule)
	d.field(0, "Time Zone", orUnset(c.Spec.TimeZone, func(s string) string { return s }))
	policy := c.Spec.ConcurrencyPolicy
	if policy == "" {
		policy = batchv1.AllowConcurrent
	}
	d.field(0, "Concurrency Policy", string(policy))
	d.field(0, "Suspend", boolWord(ptrTrue(c.Spec.Suspend)))
	d.field(0, "Successful Job History Limit", itoa32(deref(c.Spec.SuccessfulJobsHistoryLimit, defaultSuccessfulJobsHistoryLimit)))
	d.field(0, "Failed Job History Limit", itoa32(deref(c.Spec.FailedJobsHistoryLimit, defaultFailedJobsHistoryLimit)))
	d.field(0, "Starting Deadline Seconds", orUnset(c.Spec.StartingDeadlineSeconds, func(s int64) string { return fmt.Sprintf("%ds", s) }))
	jt := &c.Spec.JobTemplate.Spec
	sel := "<unset>"
	if jt.Selector != nil {
		sel = selectorColumn(jt.Selector)
	}
	d.field(0, "Selector", sel)
	d.field(0, "Parallelism", orUnset(jt.Parallelism, itoa32))
	d.field(0, "Completions", orUnset(jt.Completions, itoa32))
	if a := jt.ActiveDeadlineSeconds; a != nil {
		d.field(0, "Active Deadline Seconds", fmt.Sprintf("%ds", *a))
	}
	d.field(0, "Commit", shortSHA(v.Commit))
	describePodTemplate(d, &jt.Template, now)
	last := "<unset>"
	if t := c.Status.LastScheduleTime; t != nil {
		last = stamp(t.Time, now)
	}
	d.field(0, "Last Schedule Time", last)
	success := "<unset>"
	if t := c.Status.LastSuccessfulTime; t != nil {
		success = stamp(t.Time, now)
	}
	d.field(0, "Last Successful Time", success)
	var active []string
	for _, j := range c.Status.Active {
		active = append(active, j.Name)
	}
	d.field(0, "Active Jobs", orNone(strings.Join(active, ", ")))
	return d.writeTo(w)
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func itoa32(v int32) string { return strconv.Itoa(int(v)) }
