package manifest

import (
	batchv1 "k8s.io/api/batch/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/moor-dev/moor/reconciler/batch"
)

// validateJob checks a Job: metadata, the Job fields (package batch), its
// pod template, and, when the Job already exists (Options.ExistingJobs),
// that no immutable field changed.
func validateJob(j *batchv1.Job, opts *Options) field.ErrorList {
	errs := validateMeta(&j.ObjectMeta, validation.IsDNS1123Subdomain, true, field.NewPath("metadata"))
	errs = append(errs, batch.ValidateJob(j)...)
	errs = append(errs, validateJobTemplate(&j.Spec, field.NewPath("spec"))...)
	if old, ok := opts.ExistingJobs[j.Namespace+"/"+j.Name]; ok {
		errs = append(errs, batch.CheckJobUpdate(&old, j)...)
	}
	return errs
}

// validateCronJob checks a CronJob: metadata, schedule, time zone and the
// other CronJob fields (package batch), and its job template.
func validateCronJob(cj *batchv1.CronJob, _ *Options) field.ErrorList {
	errs := validateMeta(&cj.ObjectMeta, validation.IsDNS1123Subdomain, true, field.NewPath("metadata"))
	errs = append(errs, batch.ValidateCronJob(cj)...)
	tmpl := field.NewPath("spec", "jobTemplate")
	errs = append(errs, metavalidation.ValidateLabels(cj.Spec.JobTemplate.Labels, tmpl.Child("metadata", "labels"))...)
	errs = append(errs, apivalidation.ValidateAnnotations(cj.Spec.JobTemplate.Annotations, tmpl.Child("metadata", "annotations"))...)
	return append(errs, validateJobTemplate(&cj.Spec.JobTemplate.Spec, tmpl.Child("spec"))...)
}

// validateJobTemplate checks the pod template of a JobSpec at spec; the
// restart policy and the need for a container are batch's checks.
func validateJobTemplate(spec *batchv1.JobSpec, path *field.Path) field.ErrorList {
	tmpl := path.Child("template")
	errs := metavalidation.ValidateLabels(spec.Template.Labels, tmpl.Child("metadata", "labels"))
	errs = append(errs, apivalidation.ValidateAnnotations(spec.Template.Annotations, tmpl.Child("metadata", "annotations"))...)
	return append(errs, validatePodSpecBody(&spec.Template.Spec, tmpl.Child("spec"))...)
}
