package manifest

// Allow-lists of the batch/v1 kinds. Job features moor does not implement
// (selector, podFailurePolicy, successPolicy, ...) are allowed through
// here and rejected by package batch with a message of their own, so each
// problem is reported once.

// jobPodSpec is spec.template.spec of a Job: a workload's pod spec whose
// restartPolicy must be Never or OnFailure (checked by batch).
var jobPodSpec = templatePodSpec

// jobSpecFields is a Job's spec, and a CronJob's spec.jobTemplate.spec.
var jobSpecFields = fields{
	"completions":             value,
	"parallelism":             value,
	"backoffLimit":            value,
	"activeDeadlineSeconds":   value,
	"ttlSecondsAfterFinished": value,
	"completionMode":          value,
	"suspend":                 value,
	"template":                fields{"metadata": templateMeta, "spec": jobPodSpec},
	// Rejected (or accepted only when off) by batch.ValidateJobSpec.
	"selector":             value,
	"manualSelector":       value,
	"podFailurePolicy":     value,
	"successPolicy":        value,
	"backoffLimitPerIndex": value,
	"maxFailedIndexes":     value,
	"podReplacementPolicy": value,
	"managedBy":            value,
}

var jobFields = fields{
	"apiVersion": value,
	"kind":       value,
	"metadata":   objectMeta,
	"spec":       jobSpecFields,
	"status":     statusField,
}

var cronJobFields = fields{
	"apiVersion": value,
	"kind":       value,
	"metadata":   objectMeta,
	"spec": fields{
		"schedule":                   value,
		"timeZone":                   value,
		"concurrencyPolicy":          value,
		"suspend":                    value,
		"startingDeadlineSeconds":    value,
		"successfulJobsHistoryLimit": value,
		"failedJobsHistoryLimit":     value,
		"jobTemplate":                fields{"metadata": templateMeta, "spec": jobSpecFields},
	},
	"status": statusField,
}
