package planner

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/batch"
)

// planCronJob runs batch.PlanCronJob for one CronJob of the commit: it
// may create the Job of the slot that is due (planned at once, so its pods
// start in this plan) and delete Jobs beyond the history limits or
// replaced under concurrencyPolicy Replace.
func (b *batchPlan) planCronJob(key string, src *batchv1.CronJob) {
	now := b.in.Now
	cj := *src.DeepCopy()
	cj.Namespace = namespaceOf(cj.Namespace)
	st, ok := b.in.CronJobStates[key]
	if !ok {
		st = CronJobState{
			UID:               objectUID("CronJob", cj.Namespace, cj.Name, now.UTC().Format(time.RFC3339Nano)),
			CreationTimestamp: metav1.NewTime(now),
		}
	}
	cj.UID, cj.CreationTimestamp, cj.Status = st.UID, st.CreationTimestamp, *st.Status.DeepCopy()
	res, err := batch.PlanCronJob(batch.CronInput{CronJob: cj, Now: now, Jobs: b.children(&cj)})
	if err != nil {
		b.warn("CronJob %s is not scheduled: %v", key, err)
		b.cronStates[key] = st
		b.cronView(cj)
		return
	}
	for _, name := range res.Delete {
		if e := b.jobs[cj.Namespace+"/"+name]; e != nil && cronOwner(&e.job) == cj.Name {
			e.deleted = true
		}
	}
	if res.Create != nil {
		b.createJob(&cj, res.Create, &res.Status)
	}
	for _, ev := range res.Events {
		b.events = append(b.events, CronJobEvent{Namespace: cj.Namespace, Name: cj.Name, Event: ev})
	}
	b.requeueAfter(res.RequeueAfter)
	st.Status = res.Status
	b.cronStates[key] = st
	cj.Status = *res.Status.DeepCopy()
	b.cronView(cj)
}

// children are the CronJob's Jobs that remain, with fresh status.
func (b *batchPlan) children(cj *batchv1.CronJob) []batchv1.Job {
	var out []batchv1.Job
	for _, key := range sortedStateKeys(b.jobs) {
		e := b.jobs[key]
		if !e.deleted && e.job.Namespace == cj.Namespace && cronOwner(&e.job) == cj.Name {
			out = append(out, e.job)
		}
	}
	return out
}

// createJob adds the Job of a slot. Its UID derives from its name, which
// names the slot, so a slot planned twice (a plan not persisted) runs the
// same pods.
func (b *batchPlan) createJob(cj *batchv1.CronJob, job *batchv1.Job, status *batchv1.CronJobStatus) {
	key := JobKey(job)
	if _, taken := b.jobs[key]; taken {
		b.warn("CronJob %s/%s: Job %s is not created: a Job of that name exists; rename one of them", cj.Namespace, cj.Name, key)
		return
	}
	job.UID = objectUID("Job", job.Namespace, job.Name)
	job.CreationTimestamp = metav1.NewTime(b.in.Now)
	for i := range status.Active {
		if status.Active[i].Name == job.Name {
			status.Active[i].UID = job.UID
		}
	}
	e := &jobEntry{key: key, job: *job}
	b.jobs[key] = e
	b.planJob(e)
}

func (b *batchPlan) cronView(cj batchv1.CronJob) {
	cj.APIVersion, cj.Kind = "batch/v1", "CronJob"
	b.cronViews = append(b.cronViews, api.CronJobView{CronJob: cj, Commit: b.in.Commit})
}
