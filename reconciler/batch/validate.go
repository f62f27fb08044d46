package batch

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Name limits, as in Kubernetes: a Job's name becomes a label value (63
// characters), and a CronJob's Jobs append "-" and 8 to 11 digits.
const (
	MaxJobNameLength     = 63
	MaxCronJobNameLength = 52
)

const unsupportedByMoor = "not supported by moor; remove it"

// ValidateJob checks the Job-specific parts of a Job manifest (pod specs
// themselves are the manifest package's business). Paths are relative to
// the document: metadata.name, spec.template.spec.restartPolicy, ...
func ValidateJob(job *batchv1.Job) field.ErrorList {
	var errs field.ErrorList
	if len(job.Name) > MaxJobNameLength {
		errs = append(errs, field.TooLong(field.NewPath("metadata", "name"), job.Name, MaxJobNameLength))
	}
	return append(errs, ValidateJobSpec(&job.Spec, field.NewPath("spec"))...)
}

// ValidateJobSpec checks a JobSpec found at path (spec, or
// spec.jobTemplate.spec in a CronJob).
func ValidateJobSpec(spec *batchv1.JobSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	nonNegative := func(name string, v *int32) {
		if v != nil && *v < 0 {
			errs = append(errs, field.Invalid(path.Child(name), *v, "must be greater than or equal to 0"))
		}
	}
	nonNegative("completions", spec.Completions)
	nonNegative("parallelism", spec.Parallelism)
	nonNegative("backoffLimit", spec.BackoffLimit)
	nonNegative("ttlSecondsAfterFinished", spec.TTLSecondsAfterFinished)
	if d := spec.ActiveDeadlineSeconds; d != nil && *d <= 0 {
		errs = append(errs, field.Invalid(path.Child("activeDeadlineSeconds"), *d, "must be greater than 0"))
	}
	if m := spec.CompletionMode; m != nil {
		switch *m {
		case batchv1.NonIndexedCompletion:
		case batchv1.IndexedCompletion:
			if spec.Completions == nil {
				errs = append(errs, field.Required(path.Child("completions"),
					fmt.Sprintf("when completion mode is %s", batchv1.IndexedCompletion)))
			}
		default:
			errs = append(errs, field.NotSupported(path.Child("completionMode"), *m,
				[]batchv1.CompletionMode{batchv1.NonIndexedCompletion, batchv1.IndexedCompletion}))
		}
	}
	errs = append(errs, unsupportedJobFields(spec, path)...)
	tmpl := path.Child("template", "spec")
	switch rp := spec.Template.Spec.RestartPolicy; rp {
	case corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
	case "":
		// Kubernetes defaults it to Always and then rejects that; say so.
		errs = append(errs, field.Required(tmpl.Child("restartPolicy"),
			"set it to Never or OnFailure: the default, Always, is not allowed for a Job's pods"))
	default:
		errs = append(errs, field.NotSupported(tmpl.Child("restartPolicy"), rp,
			[]corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}))
	}
	if len(spec.Template.Spec.Containers) == 0 {
		errs = append(errs, field.Required(tmpl.Child("containers"), "a Job needs at least one container"))
	}
	return errs
}

// unsupportedJobFields rejects Job features moor does not implement, so a
// manifest never silently means less than it says.
func unsupportedJobFields(spec *batchv1.JobSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	forbid := func(name string, set bool, msg string) {
		if set {
			errs = append(errs, field.Forbidden(path.Child(name), msg))
		}
	}
	forbid("selector", spec.Selector != nil, "moor selects a Job's pods itself; remove spec.selector")
	forbid("manualSelector", spec.ManualSelector != nil && *spec.ManualSelector, unsupportedByMoor)
	forbid("podFailurePolicy", spec.PodFailurePolicy != nil, unsupportedByMoor)
	forbid("successPolicy", spec.SuccessPolicy != nil, unsupportedByMoor)
	forbid("backoffLimitPerIndex", spec.BackoffLimitPerIndex != nil, unsupportedByMoor)
	forbid("maxFailedIndexes", spec.MaxFailedIndexes != nil, unsupportedByMoor)
	forbid("podReplacementPolicy", spec.PodReplacementPolicy != nil, unsupportedByMoor)
	forbid("managedBy", spec.ManagedBy != nil, unsupportedByMoor)
	return errs
}

// ValidateCronJob checks a CronJob manifest: name length, schedule, time
// zone, concurrency policy, deadlines, history limits and its job template.
func ValidateCronJob(cj *batchv1.CronJob) field.ErrorList {
	var errs field.ErrorList
	if len(cj.Name) > MaxCronJobNameLength {
		errs = append(errs, field.TooLong(field.NewPath("metadata", "name"), cj.Name, MaxCronJobNameLength))
	}
	spec := field.NewPath("spec")
	if _, ferr := loadZone(cj.Spec.TimeZone); ferr != nil {
		errs = append(errs, ferr)
	}
	if _, err := ParseSchedule(cj.Spec.Schedule, nil); err != nil {
		errs = append(errs, err.(*field.Error))
	}
	switch p := cj.Spec.ConcurrencyPolicy; p {
	case "", batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent:
	default:
		errs = append(errs, field.NotSupported(spec.Child("concurrencyPolicy"), p,
			[]batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}))
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil && *d < 0 {
		errs = append(errs, field.Invalid(spec.Child("startingDeadlineSeconds"), *d, "must be greater than or equal to 0"))
	}
	limits := []struct {
		name string
		v    *int32
	}{
		{"successfulJobsHistoryLimit", cj.Spec.SuccessfulJobsHistoryLimit},
		{"failedJobsHistoryLimit", cj.Spec.FailedJobsHistoryLimit},
	}
	for _, l := range limits {
		if l.v != nil && *l.v < 0 {
			errs = append(errs, field.Invalid(spec.Child(l.name), *l.v, "must be greater than or equal to 0"))
		}
	}
	return append(errs, ValidateJobSpec(&cj.Spec.JobTemplate.Spec, spec.Child("jobTemplate", "spec"))...)
}

const immutableMsg = "field is immutable: rename the Job, or delete it in one commit and add it back in the next, to run a changed Job"

// CheckJobUpdate rejects an edit of an existing Job's immutable fields
// (spec.template, spec.completions, spec.completionMode, spec.selector),
// like Kubernetes. Other fields may change.
func CheckJobUpdate(old, updated *batchv1.Job) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	check := func(name string, a, b any) {
		if !apiequality.Semantic.DeepEqual(a, b) {
			errs = append(errs, field.Invalid(spec.Child(name), field.OmitValueType{}, immutableMsg))
		}
	}
	check("template", old.Spec.Template, updated.Spec.Template)
	check("completions", old.Spec.Completions, updated.Spec.Completions)
	check("completionMode", completionMode(old), completionMode(updated))
	check("selector", old.Spec.Selector, updated.Spec.Selector)
	return errs
}

func completionMode(j *batchv1.Job) batchv1.CompletionMode {
	if j.Spec.CompletionMode == nil {
		return batchv1.NonIndexedCompletion
	}
	return *j.Spec.CompletionMode
}
