package containerd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	remoteerrors "github.com/containerd/containerd/remotes/errors"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"

	"github.com/moor-dev/moor/nodeagent"
)

var _ nodeagent.CredentialPuller = (*Runtime)(nil)

// PullImageWithCredentials is PullImage answering the registry's basic or
// token authentication challenge with cred (for cred.Host only; Docker
// Hub's "docker.io" also matches its registry host). Insecure registries
// stay on plain HTTP. A zero cred pulls anonymously. A refusal for lack of
// (valid) credentials wraps errdefs.ErrUnauthenticated.
func (r *Runtime) PullImageWithCredentials(ctx context.Context, ref string, cred nodeagent.RegistryCredential) error {
	if named, err := reference.ParseDockerRef(ref); err == nil && !strings.EqualFold(reference.Domain(named), cred.Host) {
		cred = nodeagent.RegistryCredential{} // for another registry: anonymous
	}
	return r.pullWith(ctx, ref, r.credentialResolver(cred), cred)
}

// credentialResolver is the runtime's resolver with an authorizer holding
// cred. It is built per pull: credentials belong to one pod's pull.
func (r *Runtime) credentialResolver(cred nodeagent.RegistryCredential) remotes.Resolver {
	insecure := slices.Clone(r.cfg.InsecureRegistries)
	creds := func(host string) (string, string, error) {
		if cred.Host != "" && (strings.EqualFold(host, cred.Host) || cred.Host == "docker.io" && host == "registry-1.docker.io") {
			return cred.Username, cred.Password, nil
		}
		return "", "", nil
	}
	hosts := docker.ConfigureDefaultRegistries(
		docker.WithPlainHTTP(func(host string) (bool, error) { return slices.Contains(insecure, host), nil }),
		docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(creds))),
	)
	return docker.NewResolver(docker.ResolverOptions{Hosts: hosts})
}

// pullWith pulls and unpacks ref through resolver unless it is present, as
// PullImage does, and classifies authentication failures. cred (possibly
// zero) only names the user in errors.
func (r *Runtime) pullWith(ctx context.Context, ref string, resolver remotes.Resolver, cred nodeagent.RegistryCredential) error {
	ctx = r.ns(ctx)
	name, err := normalizeRef(ref)
	if err != nil {
		return err
	}
	img, err := r.client.GetImage(ctx, name)
	switch {
	case err == nil:
		unpacked, err := img.IsUnpacked(ctx, r.cfg.Snapshotter)
		if err != nil {
			return fmt.Errorf("check image %s is unpacked: %w", name, err)
		}
		if !unpacked {
			if err := img.Unpack(ctx, r.cfg.Snapshotter); err != nil {
				return fmt.Errorf("unpack image %s for %s: %w", name, r.cfg.Snapshotter, err)
			}
		}
		return nil
	case !errdefs.IsNotFound(err):
		return fmt.Errorf("look up image %s: %w", name, err)
	}
	r.log.Info("pulling image", "ref", name, "authenticated", cred.Username != "")
	_, err = r.client.Pull(ctx, name,
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(r.cfg.Snapshotter),
		containerd.WithResolver(resolver))
	if err != nil {
		return pullError(name, cred, err)
	}
	return nil
}

// pullError wraps a failed pull, saying so when the registry wants (other)
// credentials.
func pullError(name string, cred nodeagent.RegistryCredential, err error) error {
	var status remoteerrors.ErrUnexpectedStatus
	unauthorized := errors.Is(err, docker.ErrInvalidAuthorization) ||
		errors.As(err, &status) && status.StatusCode == http.StatusUnauthorized
	switch {
	case !unauthorized:
		return fmt.Errorf("pull image %s: %w", name, err)
	case cred.Username == "":
		return fmt.Errorf("pull image %s: the registry requires authentication: give the pod an imagePullSecret (type kubernetes.io/dockerconfigjson) with credentials for its host (%w): %w",
			name, err, errdefs.ErrUnauthenticated)
	default:
		return fmt.Errorf("pull image %s: the registry refused the credentials of %s; fix the imagePullSecret (%w): %w",
			name, cred, err, errdefs.ErrUnauthenticated)
	}
}
