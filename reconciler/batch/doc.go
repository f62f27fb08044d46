// Package batch is moor's pure core for run-to-completion workloads: the Job
// controller (PlanJob) and the CronJob scheduler (PlanCronJob), plus the
// commit-time validation of both kinds (ValidateJob, ValidateCronJob,
// CheckJobUpdate, ParseSchedule).
//
// Everything here is a deterministic function of its inputs. The package
// does no I/O, starts no goroutines and never reads the clock: the caller
// passes Now, the persisted status and the observed pods or child Jobs, and
// persists what comes back. It must not touch the store, the planner's
// placement, HTTP or the node agent; the controller shell owns those.
//
// # Jobs
//
// A Job's work is cut into completion slots (indexes). Each slot runs
// attempts; the pod of attempt a of slot i is named PodName(job, i, a), a
// name derived from the Job's namespace, name and UID, so planning twice from
// the same observations yields the same pods, and a pod that failed under
// restartPolicy Never is replaced by a pod with a new name, which is how
// failures are counted. Under OnFailure the agent restarts containers in
// place and their restart counts count toward backoffLimit, as in
// Kubernetes. Terminated pods stay in the desired set (so the agent keeps
// reporting their final state) until the Job finishes; a finished Job's
// status is frozen and re-planning it never starts a pod again, whatever
// commit lands later. The parallelism window covers the lowest-indexed
// unfinished slots and only slides forward, so a pod that was planned but
// not yet reported is never withdrawn for another. A failed slot's
// replacement waits 10s·2^(n-1), at most 6 minutes, n being that slot's
// failures (Kubernetes counts the whole Job's; per slot keeps planning
// monotone). Once ttlSecondsAfterFinished has passed (JobResult.Expired)
// the controller deletes the pods; it should keep the finished status while
// the manifest stays in Git, or the Job would run again.
//
// Status times come from the pods as their nodes report them, so that
// kubectl's DURATION (completionTime - startTime) is the pods' time, not
// the planner's: startTime is the earliest status.startTime of the Job's
// pods since it was last resumed (the time it was first planned until a
// node reports one), completionTime the latest finish of its succeeded
// pods; both are capped at Now against node clocks running ahead.
//
// Immutability: like Kubernetes, the pod template, completions, completion
// mode and selector of an existing Job cannot change. CheckJobUpdate rejects
// such an edit at commit time with "field is immutable" naming the field;
// to run a changed Job, rename it (or delete it in one commit and add it in
// the next). parallelism, activeDeadlineSeconds, backoffLimit,
// ttlSecondsAfterFinished and suspend may change.
//
// # CronJobs
//
// Schedules are parsed with robfig/cron/v3 (five fields or @yearly,
// @monthly, @weekly, @daily, @hourly, @every) in spec.timeZone, or UTC when
// unset (Kubernetes uses the controller's local zone; moor prefers a result
// that does not depend on the host). Across daylight-saving changes a
// skipped wall-clock time is skipped (robfig/cron's behaviour), and a
// repeated wall-clock time runs once for schedules with a fixed hour (as
// Vixie cron does; raw robfig/cron would run it twice), while schedules
// whose hour field is "*" run in both repeated hours.
//
// The scheduler follows Kubernetes' CronJob controller v2: it looks for the
// most recent unmet slot after status.lastScheduleTime (or the CronJob's
// creationTimestamp, which the controller must set to when it first saw the
// CronJob and persist), bounded below by now-startingDeadlineSeconds; it
// runs only that slot; more than 100 missed slots yield a warning event but
// never a stall. A slot's Job is named "<cronjob>-<unix minutes>", so a slot
// cannot run twice even if the server crashes after creating the Job and
// before persisting lastScheduleTime.
package batch
