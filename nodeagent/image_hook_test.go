package nodeagent

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

type pullerFunc func(ctx context.Context, ref string) error

func (f pullerFunc) PullImage(ctx context.Context, ref string) error { return f(ctx, ref) }

func TestImagePullHook(t *testing.T) {
	notFound := errors.New("not found")
	tests := []struct {
		name, image string
		pullErr     error
		wantReason  string // "" = success
	}{
		{"pulled", "registry.local/app:1", nil, ""},
		{"pull fails", "registry.local/app:1", notFound, reasonErrImagePull},
		{"empty image", "", nil, reasonInvalidImageName},
		{"image with spaces", "a b", nil, reasonInvalidImageName},
	}
	for _, tt := range tests {
		var pulled []string
		h := &imagePullHook{puller: pullerFunc(func(_ context.Context, ref string) error {
			pulled = append(pulled, ref)
			return tt.pullErr
		})}
		req := &prestartRequest{Container: &corev1.Container{Name: "app", Image: tt.image}, Spec: &ContainerSpec{Image: tt.image}}
		err := h.Prestart(context.Background(), req, &prestartResponse{})
		if got := ""; err != nil {
			got = reasonOf(err)
			if got != tt.wantReason {
				t.Errorf("%s: reason %q, want %q (err %v)", tt.name, got, tt.wantReason, err)
			}
			if tt.pullErr != nil && !errors.Is(err, tt.pullErr) {
				t.Errorf("%s: error %v does not wrap the runtime's", tt.name, err)
			}
		} else if tt.wantReason != "" {
			t.Errorf("%s: no error, want %s", tt.name, tt.wantReason)
		}
		if tt.wantReason != reasonInvalidImageName && (len(pulled) != 1 || pulled[0] != tt.image) {
			t.Errorf("%s: pulled %v", tt.name, pulled)
		}
	}
}
