package batch

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Event reasons PlanCronJob reports. They match Kubernetes' CronJob
// controller where it has one.
const (
	ReasonSuccessfulCreate   = "SuccessfulCreate"
	ReasonSuccessfulDelete   = "SuccessfulDelete"
	ReasonJobAlreadyActive   = "JobAlreadyActive"
	ReasonTooManyMissedTimes = "TooManyMissedTimes"
	ReasonMissSchedule       = "MissSchedule"
)

// Default history limits, as in Kubernetes.
const (
	DefaultSuccessfulJobsHistoryLimit = 3
	DefaultFailedJobsHistoryLimit     = 1
)

// ErrNoCreationTime is returned by PlanCronJob for a CronJob that has neither
// status.lastScheduleTime nor metadata.creationTimestamp: without one of
// them the scheduler cannot tell which slots are missed.
var ErrNoCreationTime = errors.New("cronjob has neither status.lastScheduleTime nor metadata.creationTimestamp")

// Event is something worth telling the user, recorded by the controller
// against the CronJob. It is a pure function of the input, so the controller
// should record an event once per distinct (Reason, Message).
type Event struct {
	Type    string // corev1.EventTypeNormal or corev1.EventTypeWarning
	Reason  string
	Message string
}

// CronInput is everything PlanCronJob needs.
type CronInput struct {
	// CronJob is the manifest from Git, with ObjectMeta.CreationTimestamp
	// (when the server first saw it) and Status (lastScheduleTime,
	// lastSuccessfulTime) as last persisted by the controller.
	CronJob batchv1.CronJob
	// Now is the scheduler's clock.
	Now time.Time
	// Jobs are the CronJob's child Jobs with their current status, both
	// scheduled and manual ones.
	Jobs []batchv1.Job
}

// CronResult is what the controller must do and persist.
type CronResult struct {
	// Create is the Job to create for the slot that is due, or nil.
	Create *batchv1.Job
	// Delete names child Jobs to delete with their pods, sorted: active Jobs
	// replaced under concurrencyPolicy Replace and finished Jobs beyond the
	// history limits.
	Delete []string
	// Status is the CronJob status to persist (active Jobs including Create,
	// lastScheduleTime, lastSuccessfulTime).
	Status batchv1.CronJobStatus
	// Events to record, in order.
	Events []Event
	// NextSchedule is the first slot after Now (zero when suspended or the
	// schedule never fires again); RequeueAfter is NextSchedule-Now. The
	// controller must also re-plan when a child Job finishes.
	NextSchedule time.Time
	RequeueAfter time.Duration
}

// PlanCronJob decides, at in.Now, whether the CronJob's most recent unmet
// slot runs, which child Jobs go, and what status to persist. It returns an
// error only for a schedule or time zone that validation should have
// rejected, or when ErrNoCreationTime applies.
func PlanCronJob(in CronInput) (CronResult, error) {
	cj := &in.CronJob
	sched, err := ParseSchedule(cj.Spec.Schedule, cj.Spec.TimeZone)
	if err != nil {
		return CronResult{}, fmt.Errorf("cronjob %s/%s: %w", cj.Namespace, cj.Name, err)
	}
	earliest := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		earliest = cj.Status.LastScheduleTime.Time
	}
	if earliest.IsZero() {
		return CronResult{}, fmt.Errorf("cronjob %s/%s: %w", cj.Namespace, cj.Name, ErrNoCreationTime)
	}

	loc, _ := loadZone(cj.Spec.TimeZone) // valid: ParseSchedule accepted it
	p := cronPlan{in: in, sched: sched, loc: loc}
	p.res.Status.LastScheduleTime = cj.Status.LastScheduleTime
	p.res.Status.LastSuccessfulTime = cj.Status.LastSuccessfulTime
	p.classify()
	p.collectHistory()
	if cj.Spec.Suspend == nil || !*cj.Spec.Suspend {
		p.schedule(earliest)
		p.res.NextSchedule = sched.Next(in.Now)
		if !p.res.NextSchedule.IsZero() {
			p.res.RequeueAfter = p.res.NextSchedule.Sub(in.Now)
		}
	}
	p.finish()
	return p.res, nil
}

type cronPlan struct {
	in     CronInput
	sched  cron.Schedule
	loc    *time.Location
	res    CronResult
	active []*batchv1.Job
	// succeeded and failed are finished Jobs, oldest first.
	succeeded, failed []*batchv1.Job
	deleted           map[string]bool
}

func (p *cronPlan) classify() {
	for i := range p.in.Jobs {
		j := &p.in.Jobs[i]
		cond, at, done := JobFinished(j)
		switch {
		case !done:
			p.active = append(p.active, j)
		case cond == batchv1.JobComplete:
			p.succeeded = append(p.succeeded, j)
			last := p.res.Status.LastSuccessfulTime
			if last == nil || at.After(last.Time) {
				p.res.Status.LastSuccessfulTime = &metav1.Time{Time: at}
			}
		default:
			p.failed = append(p.failed, j)
		}
	}
	sortJobs(p.active)
	sortJobs(p.succeeded)
	sortJobs(p.failed)
}

// collectHistory deletes the oldest finished Jobs beyond the limits.
func (p *cronPlan) collectHistory() {
	spec := p.in.CronJob.Spec
	p.trim(p.succeeded, limit(spec.SuccessfulJobsHistoryLimit, DefaultSuccessfulJobsHistoryLimit))
	p.trim(p.failed, limit(spec.FailedJobsHistoryLimit, DefaultFailedJobsHistoryLimit))
}

func limit(v *int32, def int) int {
	if v == nil {
		return def
	}
	return int(*v)
}

func (p *cronPlan) trim(jobs []*batchv1.Job, keep int) {
	for i := 0; i < len(jobs)-keep; i++ {
		p.delete(jobs[i].Name)
	}
}

func (p *cronPlan) delete(name string) {
	if p.deleted == nil {
		p.deleted = map[string]bool{}
	}
	p.deleted[name] = true
	p.res.Delete = append(p.res.Delete, name)
	p.event(corev1.EventTypeNormal, ReasonSuccessfulDelete, "Deleted job "+name)
}

func (p *cronPlan) event(typ, reason, msg string) {
	p.res.Events = append(p.res.Events, Event{Type: typ, Reason: reason, Message: msg})
}

// schedule runs the most recent unmet slot, if any is due and allowed.
func (p *cronPlan) schedule(earliest time.Time) {
	cj, now := &p.in.CronJob, p.in.Now
	after := earliest
	var deadline time.Duration
	if d := cj.Spec.StartingDeadlineSeconds; d != nil {
		deadline = time.Duration(*d) * time.Second
		if w := now.Add(-deadline); w.After(after) {
			after = w
		}
	}
	slots := UnmetSlots(p.sched, after, now)
	if slots.MostRecent.IsZero() {
		if after.After(earliest) {
			p.reportMissedDeadline(earliest, after, deadline)
		}
		return
	}
	slot := slots.MostRecent
	if slots.TooMany() {
		p.event(corev1.EventTypeWarning, ReasonTooManyMissedTimes, fmt.Sprintf(
			"more than %d missed start times since %s; only the most recent, %s, will run. "+
				"Set or decrease .spec.startingDeadlineSeconds or check the server's clock",
			MaxMissedSlots, p.format(after), p.format(slot)))
	}
	name := JobNameForSlot(cj.Name, slot)
	for i := range p.in.Jobs {
		if p.in.Jobs[i].Name == name { // created before a crash; just record it
			p.res.Status.LastScheduleTime = &metav1.Time{Time: slot}
			return
		}
	}
	if len(p.active) > 0 {
		switch cj.Spec.ConcurrencyPolicy {
		case batchv1.ForbidConcurrent:
			// Like Kubernetes, lastScheduleTime stays put, so the slot still
			// runs when the active Job ends within the starting deadline.
			p.event(corev1.EventTypeNormal, ReasonJobAlreadyActive,
				"Not starting job because prior execution is running and concurrency policy is Forbid")
			return
		case batchv1.ReplaceConcurrent:
			for _, j := range p.active {
				p.delete(j.Name)
			}
		}
	}
	p.res.Create = NewJobFromCronJob(*cj, slot)
	p.res.Status.LastScheduleTime = &metav1.Time{Time: slot}
	p.event(corev1.EventTypeNormal, ReasonSuccessfulCreate, "Created job "+name)
}

// reportMissedDeadline warns when a slot after earliest passed more than
// startingDeadlineSeconds ago and so will never run.
func (p *cronPlan) reportMissedDeadline(earliest, windowStart time.Time, deadline time.Duration) {
	first := p.sched.Next(earliest)
	if first.IsZero() || first.After(windowStart) {
		return
	}
	missed := lastSlotUpTo(p.sched, first, windowStart)
	p.event(corev1.EventTypeWarning, ReasonMissSchedule, fmt.Sprintf(
		"Missed scheduled time to start a job: %s is more than startingDeadlineSeconds (%d) ago",
		p.format(missed), int64(deadline/time.Second)))
}

// finish fills Status.Active with the Jobs that remain or start.
func (p *cronPlan) finish() {
	var refs []corev1.ObjectReference
	for _, j := range p.active {
		if !p.deleted[j.Name] {
			refs = append(refs, jobRef(j))
		}
	}
	if p.res.Create != nil {
		refs = append(refs, jobRef(p.res.Create))
	}
	sort.Slice(refs, func(a, b int) bool { return refs[a].Name < refs[b].Name })
	p.res.Status.Active = refs
	sort.Strings(p.res.Delete)
}

func jobRef(j *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{
		APIVersion: "batch/v1", Kind: "Job",
		Namespace: j.Namespace, Name: j.Name, UID: j.UID,
	}
}

// format shows a time in the CronJob's zone.
func (p *cronPlan) format(t time.Time) string { return t.In(p.loc).Format(time.RFC3339) }

// sortJobs orders Jobs oldest first: by scheduled time (annotation), then
// start time, then name.
func sortJobs(jobs []*batchv1.Job) {
	sort.SliceStable(jobs, func(a, b int) bool {
		ta, tb := jobTime(jobs[a]), jobTime(jobs[b])
		if !ta.Equal(tb) {
			return ta.Before(tb)
		}
		return jobs[a].Name < jobs[b].Name
	})
}

func jobTime(j *batchv1.Job) time.Time {
	if s, ok := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; ok {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t
		}
	}
	if j.Status.StartTime != nil {
		return j.Status.StartTime.Time
	}
	return j.CreationTimestamp.Time
}
