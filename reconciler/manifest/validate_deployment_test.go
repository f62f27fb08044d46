package manifest

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

func TestValidateDeploymentRollout(t *testing.T) {
	tests := []struct {
		name string
		spec string // spec fields besides selector and template, as YAML
		want []string
	}{
		{name: "nothing set", spec: "{}"},
		{name: "empty strategy as kubectl writes it", spec: "strategy: {}"},
		{name: "RollingUpdate defaults", spec: "strategy: {type: RollingUpdate}"},
		{name: "RollingUpdate integers", spec: "strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 2, maxUnavailable: 1}}"},
		{name: "RollingUpdate percentages", spec: "strategy: {rollingUpdate: {maxSurge: 150%, maxUnavailable: 100%}}"},
		{name: "maxUnavailable 0", spec: "strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}"},
		{name: "maxSurge 0", spec: "strategy: {rollingUpdate: {maxSurge: 0%, maxUnavailable: 25%}}"},
		{name: "only maxSurge 0 (maxUnavailable defaults to 25%)", spec: "strategy: {rollingUpdate: {maxSurge: 0}}"},
		{name: "both 0", spec: "strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 0}}",
			want: []string{"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0\": may not be 0 when `maxSurge` is 0"}},
		{name: "both 0%", spec: "strategy: {rollingUpdate: {maxSurge: 0%, maxUnavailable: 0}}",
			want: []string{"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0\": may not be 0 when `maxSurge` is 0"}},
		{name: "negative", spec: "strategy: {rollingUpdate: {maxSurge: -1}}",
			want: []string{"spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal to 0"}},
		{name: "not a percentage", spec: "strategy: {rollingUpdate: {maxUnavailable: ten}}",
			want: []string{"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"ten\": must be an integer or percentage (e.g '5%')"}},
		{name: "fractional percentage", spec: "strategy: {rollingUpdate: {maxSurge: 2.5%}}",
			want: []string{"spec.strategy.rollingUpdate.maxSurge: Invalid value: \"2.5%\": must be an integer or percentage"}},
		{name: "maxUnavailable over 100%", spec: "strategy: {rollingUpdate: {maxUnavailable: 101%}}",
			want: []string{"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"101%\": must not be greater than 100%"}},
		{name: "Recreate", spec: "strategy: {type: Recreate}"},
		{name: "Recreate with rollingUpdate", spec: "strategy: {type: Recreate, rollingUpdate: {maxSurge: 1}}",
			want: []string{"spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"}},
		{name: "unknown type", spec: "strategy: {type: BlueGreen}",
			want: []string{`spec.strategy.type: Unsupported value: "BlueGreen": supported values: "Recreate", "RollingUpdate"`}},
		{name: "paused", spec: "paused: true"},
		{name: "progress deadline", spec: "progressDeadlineSeconds: 120\nminReadySeconds: 10"},
		{name: "progress deadline not above minReadySeconds", spec: "progressDeadlineSeconds: 10\nminReadySeconds: 10",
			want: []string{"spec.progressDeadlineSeconds: Invalid value: 10: must be greater than minReadySeconds (10)"}},
		{name: "progress deadline 0", spec: "progressDeadlineSeconds: 0",
			want: []string{"spec.progressDeadlineSeconds: Invalid value: 0: must be greater than minReadySeconds (0)"}},
		{name: "negative progress deadline", spec: "progressDeadlineSeconds: -5",
			want: []string{"spec.progressDeadlineSeconds: Invalid value: -5: must be greater than or equal to 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spec appsv1.DeploymentSpec
			if err := yaml.UnmarshalStrict([]byte(tt.spec), &spec); err != nil {
				t.Fatal(err)
			}
			errs := validateDeploymentRollout(&spec, field.NewPath("spec"))
			if len(errs) != len(tt.want) {
				t.Fatalf("errors %v, want %q", errs, tt.want)
			}
			for i, e := range errs {
				if !strings.HasPrefix(e.Error(), tt.want[i]) {
					t.Errorf("error %q, want it to start with %q", e.Error(), tt.want[i])
				}
			}
		})
	}
}

// The allow-list lets the rollout fields through to the typed object.
func TestDeploymentRolloutFieldsLoad(t *testing.T) {
	src := `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  paused: true
  progressDeadlineSeconds: 300
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 50%, maxUnavailable: 0}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
`
	objs, err := Load(map[string][]byte{"web.yaml": []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	s := objs.Deployments[0].Spec
	if !s.Paused || *s.ProgressDeadlineSeconds != 300 || s.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType ||
		s.Strategy.RollingUpdate.MaxSurge.String() != "50%" || s.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Fatalf("spec %+v", s)
	}
	bad := strings.Replace(src, "maxSurge: 50%", "maxSurge: 50%, partition: 1", 1)
	if _, err := Load(map[string][]byte{"web.yaml": []byte(bad)}); err == nil ||
		!strings.Contains(err.Error(), "spec.strategy.rollingUpdate.partition: unknown field") {
		t.Fatalf("unknown rollingUpdate field: %v", err)
	}
}
