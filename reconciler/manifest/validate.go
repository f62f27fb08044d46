package manifest

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxDeploymentName keeps "<name>-<10 hex>-<5 chars>", the names the planner
// gives a Deployment's pods, within the 253 characters of a DNS subdomain.
const maxDeploymentName = validation.DNS1123SubdomainMaxLength - len("-0123456789-abcde")

func validateNamespace(ns *corev1.Namespace, _ *Options) field.ErrorList {
	return validateMeta(&ns.ObjectMeta, validation.IsDNS1123Label, false, field.NewPath("metadata"))
}

func validatePod(pod *corev1.Pod, _ *Options) field.ErrorList {
	errs := validateMeta(&pod.ObjectMeta, validation.IsDNS1123Subdomain, true, field.NewPath("metadata"))
	return append(errs, validatePodSpec(&pod.Spec, field.NewPath("spec"))...)
}

func validateDeployment(d *appsv1.Deployment, _ *Options) field.ErrorList {
	meta := field.NewPath("metadata")
	errs := validateMeta(&d.ObjectMeta, validation.IsDNS1123Subdomain, true, meta)
	if len(d.Name) > maxDeploymentName {
		errs = append(errs, field.Invalid(meta.Child("name"), d.Name, fmt.Sprintf(
			"must be at most %d characters so that the names of its pods (<name>-<hash>-<suffix>) stay valid", maxDeploymentName)))
	}
	spec := field.NewPath("spec")
	if d.Spec.Replicas != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*d.Spec.Replicas), spec.Child("replicas"))...)
	}
	if d.Spec.RevisionHistoryLimit != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*d.Spec.RevisionHistoryLimit), spec.Child("revisionHistoryLimit"))...)
	}
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(d.Spec.MinReadySeconds), spec.Child("minReadySeconds"))...)
	errs = append(errs, validateSelector(d.Spec.Selector, d.Spec.Template.Labels, spec)...)

	errs = append(errs, validateDeploymentRollout(&d.Spec, spec)...)
	tmpl := spec.Child("template")
	errs = append(errs, metavalidation.ValidateLabels(d.Spec.Template.Labels, tmpl.Child("metadata", "labels"))...)
	errs = append(errs, apivalidation.ValidateAnnotations(d.Spec.Template.Annotations, tmpl.Child("metadata", "annotations"))...)
	return append(errs, validatePodSpec(&d.Spec.Template.Spec, tmpl.Child("spec"))...)
}

// validateSelector checks a workload's selector and that it selects the
// workload's own pod template.
func validateSelector(sel *metav1.LabelSelector, podLabels map[string]string, spec *field.Path) field.ErrorList {
	path := spec.Child("selector")
	if sel == nil || len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		return field.ErrorList{field.Required(path, "set spec.selector.matchLabels to labels of spec.template.metadata.labels")}
	}
	errs := metavalidation.ValidateLabelSelector(sel, metavalidation.LabelSelectorValidationOptions{}, path)
	if len(errs) > 0 {
		return errs
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return field.ErrorList{field.Invalid(path, sel, err.Error())}
	}
	if !selector.Matches(labels.Set(podLabels)) {
		return field.ErrorList{field.Invalid(spec.Child("template", "metadata", "labels"), podLabels, "`selector` does not match template `labels`")}
	}
	return nil
}

// validateMeta checks metadata; the namespace is already defaulted.
func validateMeta(meta *metav1.ObjectMeta, isName func(string) []string, namespaced bool, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if meta.Name == "" {
		errs = append(errs, field.Required(path.Child("name"), "every object needs a name"))
	} else {
		for _, msg := range isName(meta.Name) {
			errs = append(errs, field.Invalid(path.Child("name"), meta.Name, msg))
		}
	}
	if namespaced {
		for _, msg := range validation.IsDNS1123Label(meta.Namespace) {
			errs = append(errs, field.Invalid(path.Child("namespace"), meta.Namespace, msg))
		}
	}
	errs = append(errs, metavalidation.ValidateLabels(meta.Labels, path.Child("labels"))...)
	return append(errs, apivalidation.ValidateAnnotations(meta.Annotations, path.Child("annotations"))...)
}

// validatePodSpec checks the spec of a Pod or a Deployment's pods, which
// restart always.
func validatePodSpec(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(spec.Containers) == 0 {
		errs = append(errs, field.Required(path.Child("containers"), "a pod needs at least one container"))
	}
	switch spec.RestartPolicy {
	case "", corev1.RestartPolicyAlways:
	default:
		errs = append(errs, field.Invalid(path.Child("restartPolicy"), string(spec.RestartPolicy),
			"only Always is supported for Pods and Deployments; for pods that run to completion use a Job (apiVersion: batch/v1, kind: Job), whose pods may use Never or OnFailure"))
	}
	return append(errs, validatePodSpecBody(spec, path)...)
}

// validatePodSpecBody checks what every pod spec shares: containers, node
// selection and grace period. The restart policy and the need for a
// container are the caller's (a Job's are checked by package batch).
func validatePodSpecBody(spec *corev1.PodSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	for i := range spec.Containers {
		c := &spec.Containers[i]
		p := path.Child("containers").Index(i)
		if names.Has(c.Name) && c.Name != "" {
			errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
		}
		names.Insert(c.Name)
		errs = append(errs, validateContainer(c, p)...)
	}
	errs = append(errs, metavalidation.ValidateLabels(spec.NodeSelector, path.Child("nodeSelector"))...)
	if spec.NodeName != "" {
		for _, msg := range validation.IsDNS1123Subdomain(spec.NodeName) {
			errs = append(errs, field.Invalid(path.Child("nodeName"), spec.NodeName, msg))
		}
	}
	if g := spec.TerminationGracePeriodSeconds; g != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(*g, path.Child("terminationGracePeriodSeconds"))...)
	}
	// Secrets: env valueFrom, envFrom, volumes, mounts, imagePullSecrets.
	return append(errs, validatePodSecrets(spec, path)...)
}

func validateContainer(c *corev1.Container, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.Name == "" {
		errs = append(errs, field.Required(path.Child("name"), "every container needs a name"))
	} else {
		for _, msg := range validation.IsDNS1123Label(c.Name) {
			errs = append(errs, field.Invalid(path.Child("name"), c.Name, msg))
		}
	}
	switch {
	case c.Image == "":
		errs = append(errs, field.Required(path.Child("image"), "every container needs an image"))
	case strings.TrimSpace(c.Image) != c.Image:
		errs = append(errs, field.Invalid(path.Child("image"), c.Image, "must not have leading or trailing whitespace"))
	}
	switch c.ImagePullPolicy {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		errs = append(errs, field.NotSupported(path.Child("imagePullPolicy"), c.ImagePullPolicy,
			[]corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}))
	}
	for i, e := range c.Env {
		p := path.Child("env").Index(i)
		if e.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), "every environment variable needs a name"))
			continue
		}
		for _, msg := range validation.IsEnvVarName(e.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), e.Name, msg))
		}
	}
	for i, port := range c.Ports {
		errs = append(errs, validatePort(&port, path.Child("ports").Index(i))...)
	}
	return append(errs, validateProbes(c, path)...)
}

func validatePort(port *corev1.ContainerPort, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsValidPortNum(int(port.ContainerPort)) {
		errs = append(errs, field.Invalid(path.Child("containerPort"), port.ContainerPort, msg))
	}
	if port.Name != "" {
		for _, msg := range validation.IsValidPortName(port.Name) {
			errs = append(errs, field.Invalid(path.Child("name"), port.Name, msg))
		}
	}
	switch port.Protocol {
	case "", corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
	default:
		errs = append(errs, field.NotSupported(path.Child("protocol"), port.Protocol,
			[]corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}))
	}
	return errs
}
