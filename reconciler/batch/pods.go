package batch

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

// EnvCompletionIndex is the variable an Indexed Job's containers find their
// completion index in, as in Kubernetes.
const EnvCompletionIndex = "JOB_COMPLETION_INDEX"

// suffixAlphabet is Kubernetes' alphabet for generated names (no vowels,
// no look-alike digits).
const suffixAlphabet = "bcdfghjklmnpqrstvwxz2456789"

func podDigest(job *batchv1.Job, index, attempt int) [32]byte {
	return sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%d\x00%d",
		job.Namespace, job.Name, job.UID, index, attempt))
}

// PodName is the name of attempt `attempt` of completion slot `index` of a
// Job: "<job>-<index>-<5 characters>", derived from the Job's namespace,
// name and UID, so it is stable across planning runs and new for every
// replacement.
func PodName(job *batchv1.Job, index, attempt int) string {
	d := podDigest(job, index, attempt)
	suffix := make([]byte, 5)
	for i := range suffix {
		suffix[i] = suffixAlphabet[int(d[i])%len(suffixAlphabet)]
	}
	return job.Name + "-" + strconv.Itoa(index) + "-" + string(suffix)
}

// PodUID is the deterministic UID of the same pod.
func PodUID(job *batchv1.Job, index, attempt int) string {
	d := podDigest(job, index, attempt)
	return hex.EncodeToString(d[:16])
}

// PodTemplateFor returns the pod template of one of the Job's pods: the
// Job's template plus the labels Kubernetes sets (batch.kubernetes.io/
// job-name, job-name, controller-uid when the Job has a UID), moor's owner
// annotation, and for an Indexed Job the completion index as annotation,
// label and JOB_COMPLETION_INDEX variable.
func PodTemplateFor(job *batchv1.Job, p PodToRun) corev1.PodTemplateSpec {
	t := *job.Spec.Template.DeepCopy()
	t.Name = p.Name
	t.Namespace = job.Namespace
	t.UID = ""
	t.Labels = maps.Clone(t.Labels)
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	t.Annotations = maps.Clone(t.Annotations)
	if t.Annotations == nil {
		t.Annotations = map[string]string{}
	}
	t.Labels[batchv1.JobNameLabel] = job.Name
	t.Labels["job-name"] = job.Name
	if job.UID != "" {
		t.Labels[batchv1.ControllerUidLabel] = string(job.UID)
	}
	t.Annotations[api.AnnotationOwner] = "Job/" + job.Name
	if job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion {
		idx := strconv.Itoa(p.Index)
		t.Annotations[batchv1.JobCompletionIndexAnnotation] = idx
		t.Labels[batchv1.JobCompletionIndexAnnotation] = idx
		env := corev1.EnvVar{Name: EnvCompletionIndex, Value: idx}
		for i := range t.Spec.InitContainers {
			t.Spec.InitContainers[i].Env = append(t.Spec.InitContainers[i].Env, env)
		}
		for i := range t.Spec.Containers {
			t.Spec.Containers[i].Env = append(t.Spec.Containers[i].Env, env)
		}
	}
	return t
}
