package api

import (
	batchv1 "k8s.io/api/batch/v1"
)

// Paths of the batch views and of the manual Job trigger (admin).
const (
	PathJobs      = "/v1/jobs"        // GET → []JobView (admin)
	PathCronJobs  = "/v1/cronjobs"    // GET → []CronJobView (admin)
	PathCreateJob = "/v1/jobs/create" // POST CreateJobRequest → JobView (admin)
)

// JobView is a Job with the status moor computed: active, succeeded and
// failed pod counts, start and completion times and the Complete, Failed
// (reason BackoffLimitExceeded or DeadlineExceeded) or Suspended
// conditions. Jobs a CronJob created carry an owner reference to it.
type JobView struct {
	Job batchv1.Job `json:"job"`
	// Commit is the commit the Job was planned from.
	Commit string `json:"commit"`
}

// CronJobView is a CronJob with its status: the active Jobs,
// lastScheduleTime and lastSuccessfulTime.
type CronJobView struct {
	CronJob batchv1.CronJob `json:"cronJob"`
	// Commit is the commit the CronJob was planned from.
	Commit string `json:"commit"`
}

// CreateJobRequest asks the server to run a CronJob's job template now, as
// `kubectl create job NAME --from=cronjob/CRONJOB` does. Name may be empty:
// the server then names the Job "<cronjob>-manual-<unix seconds>".
type CreateJobRequest struct {
	Namespace   string `json:"namespace"`
	Name        string `json:"name,omitempty"`
	FromCronJob string `json:"fromCronJob"`
}
