package planner

import (
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/batch"
	"github.com/moor-dev/moor/reconciler/manifest"
)

// ownerKindJob prefixes api.Pod.Owner for Job pods.
const ownerKindJob = "Job"

// jobEntry is one Job being planned.
type jobEntry struct {
	key     string
	job     batchv1.Job
	pods    []JobPod // planned and observed pods, from the state
	expired bool
	res     batch.JobResult
	deleted bool // deleted by its CronJob (history, Replace) or expired
}

// batchPlan is the outcome of planning Jobs and CronJobs: the pods to
// schedule with the others and what the controller persists and shows.
type batchPlan struct {
	in   *Input
	rep  map[podIdent][]nodeReport
	jobs map[string]*jobEntry

	pods []api.Pod
	// finished maps the key of a terminated pod to the node it last ran
	// on: it stays there and is never scheduled anew.
	finished   map[string]string
	views      []api.JobView
	cronViews  []api.CronJobView
	jobStates  map[string]JobState
	cronStates map[string]CronJobState
	events     []CronJobEvent
	requeue    time.Duration
	warnings   []string
}

// podIdent is one pod incarnation.
type podIdent struct{ ns, name, uid string }

type nodeReport struct {
	node string
	st   *api.PodStatus
}

// planBatch plans every Job of Git, every CronJob and the Jobs the
// CronJobs created: Jobs first (so their CronJobs see fresh status), then
// the CronJobs, whose new Jobs are planned at once.
func planBatch(in *Input, objs *manifest.Objects) *batchPlan {
	b := &batchPlan{in: in, rep: indexJobReports(in.Status), jobs: map[string]*jobEntry{},
		finished: map[string]string{}, jobStates: map[string]JobState{}, cronStates: map[string]CronJobState{}}
	crons := map[string]*batchv1.CronJob{}
	for i := range objs.CronJobs {
		cj := &objs.CronJobs[i]
		crons[namespaceOf(cj.Namespace)+"/"+cj.Name] = cj
	}
	b.gitJobs(objs.Jobs)
	for _, key := range sortedStateKeys(in.JobStates) {
		st := in.JobStates[key]
		owner := cronOwner(&st.Job)
		if owner == "" || b.jobs[key] != nil || crons[namespaceOf(st.Job.Namespace)+"/"+owner] == nil {
			continue // a Git Job (handled above) or an orphan: deleted with its CronJob
		}
		b.jobs[key] = &jobEntry{key: key, job: *st.Job.DeepCopy(), pods: st.Pods, expired: st.Expired}
	}
	for _, key := range sortedStateKeys(b.jobs) {
		b.planJob(b.jobs[key])
	}
	for _, key := range sortedStateKeys(crons) {
		b.planCronJob(key, crons[key])
	}
	b.emit()
	return b
}

// gitJobs adds the Jobs of the commit, each with its state when it has one.
func (b *batchPlan) gitJobs(jobs []batchv1.Job) {
	for i := range jobs {
		job := jobs[i].DeepCopy()
		job.Namespace = namespaceOf(job.Namespace)
		key := JobKey(job)
		e := &jobEntry{key: key}
		st, ok := b.in.JobStates[key]
		switch {
		case ok && cronOwner(&st.Job) != "":
			b.warn("Job %s is not run: a Job of CronJob %s has the same name; rename the Job", key, cronOwner(&st.Job))
			continue
		case ok:
			if errs := batch.CheckJobUpdate(&st.Job, job); len(errs) > 0 {
				b.warn("Job %s: %s; the Job keeps running as first accepted", key, errs.ToAggregate().Error())
				job.Spec = st.Job.Spec
			}
			job.UID, job.CreationTimestamp, job.Status = st.Job.UID, st.Job.CreationTimestamp, st.Job.Status
			e.pods, e.expired = st.Pods, st.Expired
		default:
			job.UID = objectUID("Job", job.Namespace, job.Name, b.in.Now.UTC().Format(time.RFC3339Nano))
			job.CreationTimestamp = metav1.NewTime(b.in.Now)
			job.Status = batchv1.JobStatus{}
		}
		e.job = *job
		b.jobs[key] = e
	}
}

// planJob runs batch.PlanJob over the Job's pods as planned and reported.
func (b *batchPlan) planJob(e *jobEntry) {
	if e.expired {
		e.res = batch.JobResult{Status: e.job.Status, Finished: true, Expired: true}
		e.pods = nil
		e.deleted = cronOwner(&e.job) != ""
		return
	}
	known := b.observe(e)
	var observed []batch.PodState
	for _, p := range known {
		if p.Phase != "" {
			observed = append(observed, batch.PodState{Name: p.Name, Phase: p.Phase, RestartCount: p.RestartCount,
				FinishedAt: p.FinishedAt, StartedAt: podStarted(b.report(e.job.Namespace, p).st)})
		}
	}
	e.res = batch.PlanJob(batch.JobInput{Job: e.job, Now: b.in.Now, Pods: observed})
	e.job.Status = e.res.Status
	byName := map[string]JobPod{}
	for _, p := range known {
		byName[p.Name] = p
	}
	e.pods = nil
	if e.res.Expired {
		e.expired = true
		e.deleted = cronOwner(&e.job) != "" // a CronJob's Job goes, as in Kubernetes
		return
	}
	for _, p := range e.res.Pods {
		jp := byName[p.Name]
		jp.Name, jp.UID, jp.Index, jp.Attempt = p.Name, p.UID, p.Index, p.Attempt
		e.pods = append(e.pods, jp)
	}
}

// observe merges the Job's known pods with what nodes report about them.
// A terminal phase is final; restart counts only grow.
func (b *batchPlan) observe(e *jobEntry) []JobPod {
	out := make([]JobPod, 0, len(e.pods))
	for _, p := range e.pods {
		if isTerminal(p.Phase) {
			out = append(out, p)
			continue
		}
		r := b.report(e.job.Namespace, p)
		if r.st == nil {
			out = append(out, p)
			continue
		}
		p.Node, p.Phase = r.node, r.st.Status.Phase
		var restarts int32
		var finished time.Time
		for _, cs := range r.st.Status.ContainerStatuses {
			restarts += cs.RestartCount
			if t := cs.State.Terminated; t != nil && t.FinishedAt.After(finished) {
				finished = t.FinishedAt.Time
			}
		}
		p.RestartCount = max(p.RestartCount, restarts)
		if isTerminal(p.Phase) {
			p.FinishedAt = finished
			if p.FinishedAt.IsZero() {
				p.FinishedAt = b.in.Now
			}
		}
		out = append(out, p)
	}
	return out
}

// podStarted is a reported pod's status.startTime (when its node took it
// on), zero without a report or one. Terminated pods keep being reported,
// so the Job's start time keeps coming from all of its pods.
func podStarted(st *api.PodStatus) time.Time {
	if st == nil || st.Status.StartTime == nil {
		return time.Time{}
	}
	return st.Status.StartTime.Time
}

// report finds the report of a Job pod: from the node it was placed on,
// else from the first node by name that reports this very pod.
func (b *batchPlan) report(ns string, p JobPod) nodeReport {
	rs := b.rep[podIdent{ns, p.Name, p.UID}]
	prev := b.in.Previous[ns+"/"+p.Name]
	for _, r := range rs {
		if r.node == prev {
			return r
		}
	}
	if len(rs) > 0 {
		return rs[0]
	}
	return nodeReport{}
}

func isTerminal(phase corev1.PodPhase) bool {
	return phase == corev1.PodSucceeded || phase == corev1.PodFailed
}

// indexJobReports indexes every reported pod by identity, nodes sorted by
// name.
func indexJobReports(status map[string][]api.PodStatus) map[podIdent][]nodeReport {
	out := map[podIdent][]nodeReport{}
	for _, node := range sortedStateKeys(status) {
		pods := status[node]
		for i := range pods {
			p := &pods[i]
			id := podIdent{p.Namespace, p.Name, p.UID}
			out[id] = append(out[id], nodeReport{node: node, st: p})
		}
	}
	return out
}

// emit collects pods, views and states of the Jobs that remain.
func (b *batchPlan) emit() {
	for _, key := range sortedStateKeys(b.jobs) {
		e := b.jobs[key]
		if e.deleted {
			continue
		}
		b.requeueAfter(e.res.RequeueAfter)
		b.jobStates[key] = JobState{Job: *e.job.DeepCopy(), Pods: e.pods, Expired: e.expired}
		view := *e.job.DeepCopy()
		view.APIVersion, view.Kind = "batch/v1", "Job"
		b.views = append(b.views, api.JobView{Job: view, Commit: b.in.Commit})
		for _, p := range e.pods {
			pod := jobPod(&e.job, p)
			if isTerminal(p.Phase) {
				node := p.Node
				if prev, ok := b.in.Previous[pod.Key()]; ok {
					node = prev
				}
				b.finished[pod.Key()] = node
			}
			b.pods = append(b.pods, pod)
		}
	}
}

// jobPod builds the api.Pod of one pod of a Job.
func jobPod(job *batchv1.Job, p JobPod) api.Pod {
	t := batch.PodTemplateFor(job, batch.PodToRun{Name: p.Name, UID: p.UID, Index: p.Index, Attempt: p.Attempt})
	return api.Pod{
		Namespace:   job.Namespace,
		Name:        p.Name,
		UID:         p.UID,
		Labels:      copyMap(t.Labels),
		Annotations: copyMap(t.Annotations),
		Owner:       ownerKindJob + "/" + job.Name,
		SpecHash:    api.HashObject(t.Spec),
		Spec:        t.Spec,
	}
}

func (b *batchPlan) requeueAfter(d time.Duration) {
	if d > 0 && (b.requeue == 0 || d < b.requeue) {
		b.requeue = d
	}
}

func (b *batchPlan) warn(format string, args ...any) {
	b.warnings = append(b.warnings, fmt.Sprintf(format, args...))
}
