package batch

import (
	"sort"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Job defaults and backoff, as in Kubernetes.
const (
	DefaultBackoffLimit = 6
	// The replacement of a failed pod waits BaseBackoff·2^(n-1), at most
	// MaxBackoff, after the failure, n being its slot's failed attempts.
	BaseBackoff = 10 * time.Second
	MaxBackoff  = 6 * time.Minute
)

// Condition reasons and messages PlanJob sets besides Kubernetes' own
// batchv1.JobReason* constants.
const (
	ReasonJobSuspended = "JobSuspended"
	ReasonJobResumed   = "JobResumed"
)

// PodState is what the agents last reported about one pod of a Job.
type PodState struct {
	Name  string
	Phase corev1.PodPhase
	// RestartCount is the sum of the pod's container restarts; under
	// restartPolicy OnFailure they count toward backoffLimit.
	RestartCount int32
	// FinishedAt is when the pod reached Succeeded or Failed: when its
	// last container terminated, as its node reported.
	FinishedAt time.Time
	// StartedAt is the pod's status.startTime as its node reported it
	// (when the node took the pod on); zero when unknown.
	StartedAt time.Time
}

// JobInput is everything PlanJob needs.
type JobInput struct {
	// Job is the manifest with Status as last persisted by the controller.
	Job batchv1.Job
	// Now is the controller's clock.
	Now time.Time
	// Pods are the reported pods of this Job (any name; pods PlanJob does
	// not recognise are deleted).
	Pods []PodState
}

// PodToRun is a pod of the Job that must exist on some node. Attempt counts
// the replacements of the completion slot Index; UID is deterministic.
type PodToRun struct {
	Name    string
	UID     string
	Index   int
	Attempt int
}

// JobResult is what the controller must do and persist.
type JobResult struct {
	// Pods are the pods that must exist, sorted by index then attempt:
	// running and new ones, and terminated ones kept so that the agent keeps
	// reporting their final state. Build each with PodTemplateFor.
	Pods []PodToRun
	// Delete names reported pods to stop, sorted.
	Delete []string
	// Status is the Job status to persist.
	Status batchv1.JobStatus
	// Finished is true once the Job has a Complete or Failed condition; it
	// then never starts a pod again.
	Finished bool
	// ExpireAt is when a finished Job with ttlSecondsAfterFinished must be
	// garbage-collected with its pods.
	ExpireAt *time.Time
	// Expired is true once Now has reached ExpireAt.
	Expired bool
	// RequeueAfter, when non-zero, is when the Job needs planning again
	// without any new report: the end of a retry backoff, the active
	// deadline, or ExpireAt.
	RequeueAfter time.Duration
}

// PlanJob advances a Job: which pods run, which stop, and its new status.
// It is deterministic: the same input always gives the same result.
func PlanJob(in JobInput) JobResult {
	p := newJobPlan(in)
	switch {
	case p.frozen():
		p.stopAll()
	case p.suspended():
		p.suspend()
	default:
		p.run()
	}
	return p.result()
}

type slotState struct {
	index   int
	kept    []PodToRun // observed attempts, in order
	next    int        // first attempt with no report
	done    bool       // an attempt succeeded
	active  bool       // the last observed attempt is pending or running
	started bool       // any attempt observed
	// failures and lastFailure are the slot's failed attempts and when the
	// latest one ended; they set the slot's retry backoff.
	failures    int
	lastFailure time.Time
}

type jobPlan struct {
	in       JobInput
	job      *batchv1.Job
	observed map[string]PodState
	known    map[string]bool
	slots    []slotState
	res      JobResult

	succeeded, failed, restarts int
}

func newJobPlan(in JobInput) *jobPlan {
	p := &jobPlan{in: in, job: &in.Job, observed: map[string]PodState{}, known: map[string]bool{}}
	for _, s := range in.Pods {
		p.observed[s.Name] = s
	}
	p.res.Status = *in.Job.Status.DeepCopy()
	for i := 0; i < p.slotCount(); i++ {
		p.slots = append(p.slots, p.walkSlot(i))
	}
	return p
}

func (p *jobPlan) slotCount() int {
	if c := p.job.Spec.Completions; c != nil {
		return int(*c)
	}
	return p.parallelism() // work queue: one slot per worker
}

func (p *jobPlan) parallelism() int {
	if v := p.job.Spec.Parallelism; v != nil {
		return int(*v)
	}
	return 1
}

// walkSlot follows a slot's attempts through the reports.
func (p *jobPlan) walkSlot(i int) slotState {
	s := slotState{index: i}
	for a := 0; ; a++ {
		name := PodName(p.job, i, a)
		st, ok := p.observed[name]
		if !ok {
			s.next = a
			return s
		}
		p.known[name] = true
		s.started = true
		s.kept = append(s.kept, p.podToRun(i, a))
		switch st.Phase {
		case corev1.PodSucceeded:
			s.done = true
			p.succeeded++
			return s
		case corev1.PodFailed:
			p.failed++
			s.failures++
			if st.FinishedAt.After(s.lastFailure) {
				s.lastFailure = st.FinishedAt
			}
		default:
			s.active = true
			if p.job.Spec.Template.Spec.RestartPolicy == corev1.RestartPolicyOnFailure {
				p.restarts += int(st.RestartCount)
			}
			return s
		}
	}
}

func (p *jobPlan) podToRun(i, a int) PodToRun {
	return PodToRun{Name: PodName(p.job, i, a), UID: PodUID(p.job, i, a), Index: i, Attempt: a}
}

func (p *jobPlan) frozen() bool {
	_, _, done := JobFinished(p.job)
	return done
}

func (p *jobPlan) suspended() bool {
	return p.job.Spec.Suspend != nil && *p.job.Spec.Suspend
}

// stopAll keeps terminated pods and stops every running one.
func (p *jobPlan) stopAll() {
	for _, s := range p.slots {
		for _, k := range s.kept {
			if st := p.observed[k.Name]; isTerminal(st.Phase) {
				p.res.Pods = append(p.res.Pods, k)
			}
		}
	}
	p.res.Status.Active = 0
}

func (p *jobPlan) suspend() {
	p.countStatus()
	p.stopAll()
	p.res.Status.StartTime = nil
	p.setCondition(batchv1.JobSuspended, corev1.ConditionTrue, ReasonJobSuspended, "Job suspended")
}

func (p *jobPlan) run() {
	now := p.in.Now
	if p.res.Status.StartTime == nil {
		p.res.Status.StartTime = &metav1.Time{Time: now}
	}
	if c := p.conditionIndex(batchv1.JobSuspended); c >= 0 && p.res.Status.Conditions[c].Status == corev1.ConditionTrue {
		p.setCondition(batchv1.JobSuspended, corev1.ConditionFalse, ReasonJobResumed, "Job resumed")
	}
	if start, ok := p.podsStarted(); ok {
		p.res.Status.StartTime = &metav1.Time{Time: start}
	}
	p.countStatus()
	active := 0
	for _, s := range p.slots {
		if s.active {
			active++
		}
	}
	backoffLimit := DefaultBackoffLimit
	if b := p.job.Spec.BackoffLimit; b != nil {
		backoffLimit = int(*b)
	}
	deadline := p.deadline()
	switch {
	case p.complete(active):
		p.stopAll()
		p.res.Status.CompletionTime = &metav1.Time{Time: p.podsFinished()}
		p.setCondition(batchv1.JobComplete, corev1.ConditionTrue,
			batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods")
	case p.failed+p.restarts > backoffLimit:
		p.stopAll()
		p.setCondition(batchv1.JobFailed, corev1.ConditionTrue,
			batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit")
	case !deadline.IsZero() && !now.Before(deadline):
		p.stopAll()
		p.setCondition(batchv1.JobFailed, corev1.ConditionTrue,
			batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline")
	default:
		p.startPods(active)
		if !deadline.IsZero() {
			p.requeue(deadline.Sub(now))
		}
	}
}

// podsStarted is when the Job's pods started, as their nodes reported:
// the earliest status.startTime of its pods since it was last resumed,
// at most Now. ok is false before any pod reported one; the Job then
// keeps the time it was first planned.
func (p *jobPlan) podsStarted() (start time.Time, ok bool) {
	var since time.Time
	if c := p.conditionIndex(batchv1.JobSuspended); c >= 0 {
		since = p.res.Status.Conditions[c].LastTransitionTime.Time
	}
	for name := range p.known {
		t := p.observed[name].StartedAt
		if t.IsZero() || t.Before(since) {
			continue
		}
		if !ok || t.Before(start) {
			start, ok = t, true
		}
	}
	if ok && start.After(p.in.Now) {
		start = p.in.Now // a node clock ahead of ours
	}
	return start, ok
}

// podsFinished is when the Job completed, as its nodes reported: the
// latest finish of its succeeded pods, within [StartTime, Now]; Now when
// no pod reported one.
func (p *jobPlan) podsFinished() time.Time {
	var end time.Time
	for name := range p.known {
		if st := p.observed[name]; st.Phase == corev1.PodSucceeded && st.FinishedAt.After(end) {
			end = st.FinishedAt
		}
	}
	if end.IsZero() || end.After(p.in.Now) {
		return p.in.Now
	}
	if s := p.res.Status.StartTime; s != nil && end.Before(s.Time) {
		return s.Time
	}
	return end
}

// complete: all completions succeeded, or, for a work queue (no
// completions), one pod succeeded and none is still running.
func (p *jobPlan) complete(active int) bool {
	if c := p.job.Spec.Completions; c != nil {
		return p.succeeded >= int(*c)
	}
	return p.succeeded > 0 && active == 0
}

func (p *jobPlan) deadline() time.Time {
	d := p.job.Spec.ActiveDeadlineSeconds
	if d == nil || p.res.Status.StartTime == nil {
		return time.Time{}
	}
	return p.res.Status.StartTime.Add(time.Duration(*d) * time.Second)
}

// startPods keeps every observed attempt and fills the parallelism window
// with the lowest-indexed slots that are neither done nor running: first
// attempts, and replacements once the slot's backoff has passed. The
// backoff counts the slot's own failures (Kubernetes counts the Job's), so
// a failure elsewhere never withdraws a replacement already planned. The window only
// slides forward, so a pod planned but not yet reported is never dropped in
// favour of another slot. Running pods are never stopped to honour a lower
// parallelism.
func (p *jobPlan) startPods(active int) {
	room := p.parallelism() - active
	if p.job.Spec.Completions == nil && p.succeeded > 0 {
		room = 0 // a work queue starts nothing once a worker succeeded
	}
	for _, s := range p.slots {
		p.res.Pods = append(p.res.Pods, s.kept...)
		if s.done || s.active || room <= 0 {
			continue
		}
		room-- // a slot waiting out its backoff keeps its place in the window
		retryAt := s.lastFailure.Add(backoff(s.failures))
		if s.started && p.in.Now.Before(retryAt) { // last attempt failed
			p.requeue(retryAt.Sub(p.in.Now))
			continue
		}
		p.res.Pods = append(p.res.Pods, p.podToRun(s.index, s.next))
		p.res.Status.Active++
	}
}

func backoff(failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := BaseBackoff
	for i := 1; i < failures && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

func (p *jobPlan) requeue(d time.Duration) {
	if d > 0 && (p.res.RequeueAfter == 0 || d < p.res.RequeueAfter) {
		p.res.RequeueAfter = d
	}
}

// countStatus sets the pod counts from the reports.
func (p *jobPlan) countStatus() {
	p.res.Status.Active, p.res.Status.Succeeded, p.res.Status.Failed = 0, int32(p.succeeded), int32(p.failed)
	for _, s := range p.slots {
		if s.active {
			p.res.Status.Active++
		}
	}
}

func (p *jobPlan) conditionIndex(t batchv1.JobConditionType) int {
	for i, c := range p.res.Status.Conditions {
		if c.Type == t {
			return i
		}
	}
	return -1
}

func (p *jobPlan) setCondition(t batchv1.JobConditionType, status corev1.ConditionStatus, reason, msg string) {
	now := metav1.Time{Time: p.in.Now}
	c := batchv1.JobCondition{Type: t, Status: status, Reason: reason, Message: msg,
		LastProbeTime: now, LastTransitionTime: now}
	if i := p.conditionIndex(t); i >= 0 {
		if p.res.Status.Conditions[i].Status == status {
			c.LastTransitionTime = p.res.Status.Conditions[i].LastTransitionTime
		}
		p.res.Status.Conditions[i] = c
		return
	}
	p.res.Status.Conditions = append(p.res.Status.Conditions, c)
}

func isTerminal(phase corev1.PodPhase) bool {
	return phase == corev1.PodSucceeded || phase == corev1.PodFailed
}

// result sorts the output, lists the pods to stop and computes expiry.
func (p *jobPlan) result() JobResult {
	kept := map[string]bool{}
	for _, k := range p.res.Pods {
		kept[k.Name] = true
	}
	for name, st := range p.observed {
		if !kept[name] && !isTerminal(st.Phase) {
			p.res.Delete = append(p.res.Delete, name)
		}
	}
	sort.Strings(p.res.Delete)
	sort.Slice(p.res.Pods, func(a, b int) bool {
		x, y := p.res.Pods[a], p.res.Pods[b]
		if x.Index != y.Index {
			return x.Index < y.Index
		}
		return x.Attempt < y.Attempt
	})
	if n := int32(len(p.res.Delete)); n > 0 {
		p.res.Status.Terminating = &n
	} else {
		p.res.Status.Terminating = nil
	}
	finishedJob := batchv1.Job{Status: p.res.Status}
	_, at, done := JobFinished(&finishedJob)
	p.res.Finished = done
	if ttl := p.job.Spec.TTLSecondsAfterFinished; done && ttl != nil {
		exp := at.Add(time.Duration(*ttl) * time.Second)
		p.res.ExpireAt = &exp
		p.res.Expired = !p.in.Now.Before(exp)
		p.res.RequeueAfter = max(exp.Sub(p.in.Now), 0)
	}
	return p.res
}
