package nodeagent

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
)

// imagePuller is the part of Runtime the image hook needs.
type imagePuller interface {
	PullImage(ctx context.Context, ref string) error
}

// imagePullHook makes the container's image present before it is created.
// A failure is ErrImagePull; the runner retries with backoff, during which
// status shows ImagePullBackOff, and other pods are unaffected.
//
// For a pod with imagePullSecrets, the first credential for the image's
// registry host (kubernetes.io/dockerconfigjson or dockercfg Secrets, in
// list order) is given to the runtime when it is a CredentialPuller. As in
// Kubernetes, a pull secret that cannot be read does not stop the pull,
// which goes on without it; the secret's problem is then part of the
// pull's error.
//
// imagePullPolicy is not distinguished yet: the runtime pulls only missing
// images, which is IfNotPresent; Always would need a forced pull.
type imagePullHook struct {
	puller  imagePuller
	secrets *secretResolver
}

var _ prestartHook = (*imagePullHook)(nil)

func (h *imagePullHook) Name() string { return "image" }

func (h *imagePullHook) Prestart(ctx context.Context, req *prestartRequest, _ *prestartResponse) error {
	ref := req.Spec.Image
	if strings.TrimSpace(ref) == "" || strings.ContainsAny(ref, " \t\n") {
		return &waitingError{Reason: reasonInvalidImageName, Err: fmt.Errorf("container %q has invalid image %q", req.Container.Name, ref)}
	}
	cp, canAuth := h.puller.(CredentialPuller)
	if !canAuth || req.Pod == nil || len(req.Pod.Spec.ImagePullSecrets) == 0 {
		if err := h.puller.PullImage(ctx, ref); err != nil {
			return &waitingError{Reason: reasonErrImagePull, Err: fmt.Errorf("pull image %q: %w", ref, err)}
		}
		return nil
	}
	cred, credErr := h.credential(ctx, req, ref)
	if err := cp.PullImageWithCredentials(ctx, ref, cred); err != nil {
		err = fmt.Errorf("pull image %q: %w", ref, err)
		if credErr != nil {
			err = fmt.Errorf("%w (image pull secrets: %w)", err, credErr)
		}
		return &waitingError{Reason: reasonErrImagePull, Err: err}
	}
	return nil
}

// credential returns the first credential of the pod's image pull secrets
// for ref's registry (zero when there is none) and the problems of the
// secrets it could not use.
func (h *imagePullHook) credential(ctx context.Context, req *prestartRequest, ref string) (RegistryCredential, error) {
	host, err := imageRegistryHost(ref)
	if err != nil {
		return RegistryCredential{}, err
	}
	var errs []error
	for _, ps := range req.Pod.Spec.ImagePullSecrets {
		s, err := h.secrets.read(ctx, req, ps.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		creds, err := registryCredentials(s.Ref.Type, s.Data)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", describeSecret(&s.Ref), err))
			continue
		}
		if c, ok := credentialFor(creds, host); ok {
			return c, nil
		}
	}
	if len(errs) == 0 {
		errs = append(errs, fmt.Errorf("none has credentials for registry %s: %w", host, errdefs.ErrNotFound))
	}
	return RegistryCredential{}, joinErrors(errs)
}
