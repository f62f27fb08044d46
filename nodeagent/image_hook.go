package nodeagent

import (
	"context"
	"fmt"
	"strings"
)

// imagePuller is the part of Runtime the image hook needs.
type imagePuller interface {
	PullImage(ctx context.Context, ref string) error
}

// imagePullHook makes the container's image present before it is created.
// A failure is ErrImagePull; the runner retries with backoff, during which
// status shows ImagePullBackOff, and other pods are unaffected.
//
// imagePullPolicy is not distinguished yet: the runtime pulls only missing
// images, which is IfNotPresent; Always would need a forced pull.
type imagePullHook struct {
	puller imagePuller
}

var _ prestartHook = (*imagePullHook)(nil)

func (h *imagePullHook) Name() string { return "image" }

func (h *imagePullHook) Prestart(ctx context.Context, req *prestartRequest, _ *prestartResponse) error {
	ref := req.Spec.Image
	if strings.TrimSpace(ref) == "" || strings.ContainsAny(ref, " \t\n") {
		return &waitingError{Reason: reasonInvalidImageName, Err: fmt.Errorf("container %q has invalid image %q", req.Container.Name, ref)}
	}
	if err := h.puller.PullImage(ctx, ref); err != nil {
		return &waitingError{Reason: reasonErrImagePull, Err: fmt.Errorf("pull image %q: %w", ref, err)}
	}
	return nil
}
