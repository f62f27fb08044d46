package manifest

import (
	"fmt"
	"regexp"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// percent is the form of a percentage in maxSurge and maxUnavailable.
var percent = regexp.MustCompile(`^[0-9]+%$`)

// validateDeploymentRollout checks how a Deployment rolls out, as
// Kubernetes does: spec.strategy (RollingUpdate, the default, with
// maxSurge and maxUnavailable as integers or percentages not both 0; or
// Recreate without rollingUpdate) and spec.progressDeadlineSeconds
// (greater than minReadySeconds). spec.paused needs no check.
func validateDeploymentRollout(spec *appsv1.DeploymentSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	sp := path.Child("strategy")
	switch s := spec.Strategy; s.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if s.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(sp.Child("rollingUpdate"),
				"may not be specified when strategy `type` is 'Recreate'; remove it, or use type: RollingUpdate"))
		}
	case appsv1.RollingUpdateDeploymentStrategyType, "":
		if ru := s.RollingUpdate; ru != nil {
			errs = append(errs, validateRollingUpdate(ru, sp.Child("rollingUpdate"))...)
		}
	default:
		errs = append(errs, field.NotSupported(sp.Child("type"), s.Type,
			[]string{string(appsv1.RecreateDeploymentStrategyType), string(appsv1.RollingUpdateDeploymentStrategyType)}))
	}
	if p := spec.ProgressDeadlineSeconds; p != nil {
		pp := path.Child("progressDeadlineSeconds")
		if *p < 0 {
			errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*p), pp)...)
		} else if *p <= spec.MinReadySeconds {
			errs = append(errs, field.Invalid(pp, *p, fmt.Sprintf(
				"must be greater than minReadySeconds (%d): a pod must be able to become available before the rollout counts as stuck", spec.MinReadySeconds)))
		}
	}
	return errs
}

// validateRollingUpdate checks maxSurge and maxUnavailable.
func validateRollingUpdate(ru *appsv1.RollingUpdateDeployment, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	surge, surgeOK := intOrPercent(ru.MaxSurge, path.Child("maxSurge"), false, &errs)
	unavailable, unavailableOK := intOrPercent(ru.MaxUnavailable, path.Child("maxUnavailable"), true, &errs)
	if ru.MaxSurge != nil && ru.MaxUnavailable != nil && surgeOK && unavailableOK && surge == 0 && unavailable == 0 {
		errs = append(errs, field.Invalid(path.Child("maxUnavailable"), ru.MaxUnavailable.String(),
			"may not be 0 when `maxSurge` is 0: the rollout could neither add a new pod nor remove an old one; raise one of them"))
	}
	return errs
}

// intOrPercent checks one of maxSurge and maxUnavailable (unset is the
// default, 25%) and returns its number. atMost100 caps percentages at
// 100%, as only maxUnavailable is.
func intOrPercent(v *intstr.IntOrString, path *field.Path, atMost100 bool, errs *field.ErrorList) (int, bool) {
	if v == nil {
		return -1, false
	}
	switch v.Type {
	case intstr.Int:
		if v.IntVal < 0 {
			*errs = append(*errs, field.Invalid(path, v.IntVal, "must be greater than or equal to 0"))
			return 0, false
		}
		return int(v.IntVal), true
	case intstr.String:
		if !percent.MatchString(v.StrVal) {
			*errs = append(*errs, field.Invalid(path, v.StrVal, "must be an integer or percentage (e.g '5%')"))
			return 0, false
		}
		n, err := strconv.Atoi(v.StrVal[:len(v.StrVal)-1])
		if err != nil {
			*errs = append(*errs, field.Invalid(path, v.StrVal, "must be an integer or percentage (e.g '5%')"))
			return 0, false
		}
		if atMost100 && n > 100 {
			*errs = append(*errs, field.Invalid(path, v.StrVal, "must not be greater than 100%"))
			return 0, false
		}
		return n, true
	}
	return 0, false
}
