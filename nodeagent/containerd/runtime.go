// Package containerd is the nodeagent.Runtime on a containerd daemon (1.6 or
// later) through the containerd v1.7 Go client.
//
// It owns, in its containerd namespace (default "moor"): the containers,
// their tasks and snapshots, the images it pulls, and the log files named in
// ContainerSpec.LogPath; runc state under Config.RuncRoot and cgroups under
// Config.CgroupParent. It must not touch other namespaces, the daemon's
// lifetime (see nodeagent/containerdproc) or any network: a container joins
// the network namespace named in ContainerSpec.NetNSPath (made by the
// agent's pod network), or the host's when it is empty.
//
// Bookkeeping the daemon does not keep (start time, log path, stop signal,
// last exit of a deleted task) lives in container labels under
// the prefix "runtime.moor.dev/", which List hides.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"

	"github.com/moor-dev/moor/nodeagent"
)

var _ nodeagent.Runtime = (*Runtime)(nil)

// Config configures the runtime.
type Config struct {
	// Address is the containerd gRPC socket. Required.
	Address string
	// Namespace is the containerd namespace; default "moor".
	Namespace string
	// Snapshotter defaults to "overlayfs".
	Snapshotter string
	// RuncRoot is runc's --root for this node's containers. runc keeps state
	// in /run/containerd/runc by default; several nodes on one machine need
	// their own. Empty keeps runc's default.
	RuncRoot string
	// CgroupParent (a cgroupfs path such as "/moor-node1") holds one cgroup
	// per container; empty lets runc choose.
	CgroupParent string
	// InsecureRegistries are host:port registries reached over plain HTTP.
	InsecureRegistries []string
	// Log defaults to discarding.
	Log *slog.Logger
}

// Validate fills defaults and checks the config.
func (c *Config) Validate() error {
	if c.Address == "" {
		return errors.New("containerd runtime: Config.Address is required: set the containerd socket path")
	}
	if c.Namespace == "" {
		c.Namespace = "moor"
	}
	if c.Snapshotter == "" {
		c.Snapshotter = "overlayfs"
	}
	if c.CgroupParent != "" && c.CgroupParent[0] != '/' {
		return fmt.Errorf("containerd runtime: CgroupParent %q must be an absolute cgroupfs path such as /moor-node1", c.CgroupParent)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Runtime talks to one containerd daemon. It is safe for concurrent use.
type Runtime struct {
	cfg      Config
	client   *containerd.Client
	resolver remotes.Resolver
	log      *slog.Logger
}

// New connects to containerd and checks that it answers.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := containerd.New(cfg.Address, containerd.WithDefaultNamespace(cfg.Namespace))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", cfg.Address, err)
	}
	v, err := client.Version(ctx)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("containerd at %s does not answer (is it running?): %w", cfg.Address, err)
	}
	r := &Runtime{
		cfg:      cfg,
		client:   client,
		resolver: newResolver(cfg.InsecureRegistries),
		log:      cfg.Log.With("component", "containerd-runtime"),
	}
	r.log.Debug("connected to containerd", "address", cfg.Address, "version", v.Version, "namespace", cfg.Namespace)
	return r, nil
}

// Close closes the client connection; containers keep running.
func (r *Runtime) Close() error { return r.client.Close() }

func newResolver(insecure []string) remotes.Resolver {
	insecure = slices.Clone(insecure)
	hosts := docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(func(host string) (bool, error) {
		return slices.Contains(insecure, host), nil
	}))
	return docker.NewResolver(docker.ResolverOptions{Hosts: hosts})
}

// ns puts the runtime's namespace on ctx.
func (r *Runtime) ns(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.cfg.Namespace)
}

// normalizeRef turns "busybox" into "docker.io/library/busybox:latest", the
// form the resolver needs and images are stored under.
func normalizeRef(ref string) (string, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	return named.String(), nil
}

// PullImage pulls and unpacks ref unless it is already present; a present
// image is unpacked for the snapshotter if it is not yet.
func (r *Runtime) PullImage(ctx context.Context, ref string) error {
	return r.pullWith(ctx, ref, r.resolver, nodeagent.RegistryCredential{})
}
