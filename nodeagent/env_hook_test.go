package nodeagent

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestEnvHook(t *testing.T) {
	tests := []struct {
		name       string
		c          corev1.Container
		wantEnv    []string
		wantReason string
	}{
		{name: "none", c: corev1.Container{Name: "app"}, wantEnv: []string{}},
		{
			name:    "literal values in order",
			c:       corev1.Container{Name: "app", Env: []corev1.EnvVar{{Name: "B", Value: "2"}, {Name: "A", Value: "x=y"}, {Name: "E"}}},
			wantEnv: []string{"B=2", "A=x=y", "E="},
		},
		{
			name:       "valueFrom",
			c:          corev1.Container{Name: "app", Env: []corev1.EnvVar{{Name: "S", ValueFrom: &corev1.EnvVarSource{}}}},
			wantReason: reasonCreateContainerConfigError,
		},
		{
			name:       "envFrom",
			c:          corev1.Container{Name: "app", EnvFrom: []corev1.EnvFromSource{{}}},
			wantReason: reasonCreateContainerConfigError,
		},
	}
	for _, tt := range tests {
		spec := &ContainerSpec{}
		err := (&envHook{}).Prestart(context.Background(), &prestartRequest{Container: &tt.c, Spec: spec}, &prestartResponse{})
		switch {
		case tt.wantReason != "":
			if err == nil || reasonOf(err) != tt.wantReason {
				t.Errorf("%s: err %v, want reason %s", tt.name, err, tt.wantReason)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case !slices.Equal(spec.Env, tt.wantEnv):
			t.Errorf("%s: env %q, want %q", tt.name, spec.Env, tt.wantEnv)
		}
	}
}
