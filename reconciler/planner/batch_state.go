package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/containerd/errdefs"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/batch"
	"github.com/moor-dev/moor/reconciler/manifest"
)

// JobState is what the planner remembers about one Job between plans: the
// Jobs of Git and those CronJobs created (on schedule or by hand). The
// controller persists Output.JobStates and passes them back as the next
// Input.JobStates; without them a finished Job would run again.
type JobState struct {
	// Job is the Job as accepted: its spec (from Git when it was first
	// planned, or from its CronJob's template), metadata.uid and
	// creationTimestamp as assigned when it was first planned, owner
	// references (a CronJob's Jobs) and the status last computed.
	Job batchv1.Job `json:"job"`
	// Pods are the Job's pods as last planned and observed, sorted by
	// name. A terminal phase is final.
	Pods []JobPod `json:"pods,omitempty"`
	// Expired is set once ttlSecondsAfterFinished has passed: the pods are
	// gone and the status stays frozen while the Job is in Git.
	Expired bool `json:"expired,omitempty"`
}

// JobPod is one pod of a Job: planned (Phase empty until a node reports
// it) or observed.
type JobPod struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
	// Index is the pod's completion slot, Attempt its attempt in the slot.
	Index   int `json:"index"`
	Attempt int `json:"attempt,omitempty"`
	// Phase is the last reported phase; empty when no node reported the
	// pod yet. Succeeded and Failed are final.
	Phase corev1.PodPhase `json:"phase,omitempty"`
	// RestartCount is the highest sum of container restarts reported.
	RestartCount int32 `json:"restartCount,omitempty"`
	// FinishedAt is when the pod reached a terminal phase.
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Node is the node that last reported the pod. A terminated pod stays
	// there, so its final state keeps being reported; it never runs again
	// elsewhere.
	Node string `json:"node,omitempty"`
}

// CronJobState is what the planner remembers about one CronJob.
type CronJobState struct {
	// UID and CreationTimestamp are assigned when the CronJob is first
	// planned; slots before CreationTimestamp never run.
	UID               types.UID   `json:"uid"`
	CreationTimestamp metav1.Time `json:"creationTimestamp"`
	// Status is lastScheduleTime, lastSuccessfulTime and the active Jobs.
	Status batchv1.CronJobStatus `json:"status"`
}

// CronJobEvent is an event of a CronJob (batch.Event) to record: created
// or deleted Jobs, missed schedules, a Job already active. The same event
// may come out of consecutive plans; record each distinct (CronJob,
// Reason, Message) once.
type CronJobEvent struct {
	Namespace, Name string
	batch.Event
}

// ExistingJobs returns the Jobs of Git among states, keyed
// "namespace/name", as manifest.Options.ExistingJobs wants them: a commit
// that edits an immutable field of one of them is then rejected. Jobs
// created from CronJobs are not included.
func ExistingJobs(states map[string]JobState) map[string]batchv1.Job {
	out := map[string]batchv1.Job{}
	for key, st := range states {
		if cronOwner(&st.Job) == "" {
			out[key] = st.Job
		}
	}
	return out
}

// NewManualJob creates the state of a Job that runs the job template of
// a CronJob of objs now, as `kubectl create job NAME --from=cronjob/CJ`
// does. An empty req.Name becomes "<cronjob>-manual-<unix seconds>". The
// controller adds the state to its persisted Job states (under
// JobKey(result)) and plans again, which starts the pods. Errors wrap
// errdefs.ErrNotFound (no such CronJob), errdefs.ErrAlreadyExists (a Job
// of that name exists) or errdefs.ErrInvalidArgument (a bad name).
func NewManualJob(objs *manifest.Objects, states map[string]JobState, req api.CreateJobRequest, now time.Time) (JobState, error) {
	ns := req.Namespace
	if ns == "" {
		ns = defaultNamespace
	}
	var cj *batchv1.CronJob
	if objs != nil {
		for i := range objs.CronJobs {
			if c := &objs.CronJobs[i]; c.Name == req.FromCronJob && namespaceOf(c.Namespace) == ns {
				cj = c
			}
		}
	}
	if cj == nil {
		return JobState{}, fmt.Errorf("cronjob %s/%s: %w: it is not in the deployed commit", ns, req.FromCronJob, errdefs.ErrNotFound)
	}
	name := req.Name
	if name == "" {
		name = batch.ManualJobName(cj.Name, now)
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 || len(name) > batch.MaxJobNameLength {
		return JobState{}, fmt.Errorf("job name %q: %w: use at most %d lower case letters, digits, '-' and '.'",
			name, errdefs.ErrInvalidArgument, batch.MaxJobNameLength)
	}
	key := ns + "/" + name
	if _, taken := states[key]; taken {
		return JobState{}, fmt.Errorf("job %s: %w; pick another name", key, errdefs.ErrAlreadyExists)
	}
	for i := range objs.Jobs {
		if j := &objs.Jobs[i]; j.Name == name && namespaceOf(j.Namespace) == ns {
			return JobState{}, fmt.Errorf("job %s: %w in Git; pick another name", key, errdefs.ErrAlreadyExists)
		}
	}
	c := *cj.DeepCopy()
	c.Namespace = ns
	job := batch.NewManualJob(c, name)
	job.UID = objectUID("Job", ns, name, now.UTC().Format(time.RFC3339Nano))
	job.CreationTimestamp = metav1.NewTime(now)
	return JobState{Job: *job}, nil
}

// JobKey is "namespace/name" of a Job.
func JobKey(j *batchv1.Job) string { return namespaceOf(j.Namespace) + "/" + j.Name }

func namespaceOf(ns string) string {
	if ns == "" {
		return defaultNamespace
	}
	return ns
}

// objectUID is a UUID-shaped digest of its parts.
func objectUID(parts ...string) types.UID {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	sum := h.Sum(nil)
	sum[6] = sum[6]&0x0f | 0x50
	sum[8] = sum[8]&0x3f | 0x80
	s := hex.EncodeToString(sum[:16])
	return types.UID(s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32])
}

// cronOwner is the name of the CronJob that controls j, or "".
func cronOwner(j *batchv1.Job) string {
	for _, o := range j.OwnerReferences {
		if o.Kind == "CronJob" && o.Controller != nil && *o.Controller {
			return o.Name
		}
	}
	return ""
}

func sortedStateKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
