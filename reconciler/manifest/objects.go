package manifest

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Objects is every supported object of one commit, after parsing,
// defaulting (namespace "default" where none is given) and validation.
// Each slice is sorted by namespace, then name.
type Objects struct {
	Namespaces  []corev1.Namespace
	Pods        []corev1.Pod
	Deployments []appsv1.Deployment
	Services    []corev1.Service
	Jobs        []batchv1.Job
	CronJobs    []batchv1.CronJob
	// Secrets carry where their values live in Vault (annotations), never
	// values, unless Options.AllowPlainSecrets let data through. Type is
	// defaulted to Opaque.
	Secrets []corev1.Secret
}
