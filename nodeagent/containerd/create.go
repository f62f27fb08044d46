package containerd

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/moor-dev/moor/nodeagent"
)

// Internal labels, hidden from List.
const (
	labelPrefix     = "runtime.moor.dev/"
	labelImage      = labelPrefix + "image"       // the ref as the spec gave it
	labelLogPath    = labelPrefix + "log-path"    // ContainerSpec.LogPath
	labelStopSignal = labelPrefix + "stop-signal" // signal number
	labelStartedAt  = labelPrefix + "started-at"  // RFC 3339, set at each Start
	labelFinishedAt = labelPrefix + "finished-at" // exit time of the last deleted task
	labelExitCode   = labelPrefix + "exit-code"   // exit code of the last deleted task
)

const runcRuntime = "io.containerd.runc.v2"

var validID = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// validateSpec checks what containerd would reject less clearly.
func validateSpec(spec nodeagent.ContainerSpec) error {
	if !validID.MatchString(spec.ID) {
		return fmt.Errorf("container id %q must match %s: %w", spec.ID, validID, errdefs.ErrInvalidArgument)
	}
	if spec.LogPath != "" && !filepath.IsAbs(spec.LogPath) {
		return fmt.Errorf("container %s: LogPath %q must be absolute: %w", spec.ID, spec.LogPath, errdefs.ErrInvalidArgument)
	}
	if spec.NetNSPath != "" && !filepath.IsAbs(spec.NetNSPath) {
		return fmt.Errorf("container %s: NetNSPath %q must be absolute: %w", spec.ID, spec.NetNSPath, errdefs.ErrInvalidArgument)
	}
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("container %s: mount %s → %s: both paths must be absolute: %w", spec.ID, m.Source, m.Destination, errdefs.ErrInvalidArgument)
		}
	}
	for k := range spec.Labels {
		if strings.HasPrefix(k, labelPrefix) {
			return fmt.Errorf("container %s: label %q uses the reserved prefix %s: %w", spec.ID, k, labelPrefix, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// ResolveArgv computes the process argv as Kubernetes does: Command replaces
// the image's ENTRYPOINT (and then the image's CMD is ignored), Args replaces
// the image's CMD.
func ResolveArgv(entrypoint, cmd, command, args []string) []string {
	var argv []string
	switch {
	case len(command) > 0:
		argv = append(argv, command...)
		argv = append(argv, args...)
	case len(args) > 0:
		argv = append(argv, entrypoint...)
		argv = append(argv, args...)
	default:
		argv = append(argv, entrypoint...)
		argv = append(argv, cmd...)
	}
	return argv
}

// Create creates the container and its snapshot; the image must have been
// pulled.
func (r *Runtime) Create(ctx context.Context, spec nodeagent.ContainerSpec) error {
	ctx = r.ns(ctx)
	if err := validateSpec(spec); err != nil {
		return err
	}
	if _, err := r.client.LoadContainer(ctx, spec.ID); err == nil {
		return fmt.Errorf("create container %s: %w", spec.ID, errdefs.ErrAlreadyExists)
	}
	name, err := normalizeRef(spec.Image)
	if err != nil {
		return fmt.Errorf("create container %s: %w", spec.ID, err)
	}
	img, err := r.client.GetImage(ctx, name)
	if err != nil {
		return fmt.Errorf("create container %s: image %s (pull it first): %w", spec.ID, name, err)
	}
	imgSpec, err := img.Spec(ctx)
	if err != nil {
		return fmt.Errorf("create container %s: read config of image %s: %w", spec.ID, name, err)
	}
	argv := ResolveArgv(imgSpec.Config.Entrypoint, imgSpec.Config.Cmd, spec.Command, spec.Args)
	if len(argv) == 0 {
		return fmt.Errorf("create container %s: image %s has no entrypoint or cmd and the spec sets no command: %w",
			spec.ID, name, errdefs.ErrInvalidArgument)
	}

	specOpts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithProcessArgs(argv...),
		oci.WithEnv(spec.Env),
	}
	specOpts = append(specOpts, sandboxOpts(spec)...)
	if spec.WorkingDir != "" {
		specOpts = append(specOpts, oci.WithProcessCwd(spec.WorkingDir))
	}
	if r.cfg.CgroupParent != "" {
		specOpts = append(specOpts, oci.WithCgroup(path.Join(r.cfg.CgroupParent, spec.ID)))
	}
	var runcOpts any
	if r.cfg.RuncRoot != "" {
		runcOpts = &options.Options{Root: r.cfg.RuncRoot}
	}
	_, err = r.client.NewContainer(ctx, spec.ID,
		containerd.WithImage(img),
		containerd.WithSnapshotter(r.cfg.Snapshotter),
		containerd.WithNewSnapshot(spec.ID, img),
		containerd.WithRuntime(runcRuntime, runcOpts),
		containerd.WithNewSpec(specOpts...),
		containerd.WithContainerLabels(containerLabels(spec)),
	)
	if err != nil {
		return fmt.Errorf("create container %s: %w", spec.ID, err)
	}
	r.log.Debug("created container", "id", spec.ID, "image", name, "argv", argv)
	return nil
}

// containerLabels merges the spec's labels with the internal ones.
func containerLabels(spec nodeagent.ContainerSpec) map[string]string {
	labels := make(map[string]string, len(spec.Labels)+3)
	for k, v := range spec.Labels {
		labels[k] = v
	}
	sig := spec.StopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	labels[labelImage] = spec.Image
	labels[labelLogPath] = spec.LogPath
	labels[labelStopSignal] = strconv.Itoa(int(sig))
	return labels
}

// userLabels returns labels without the internal ones.
func userLabels(all map[string]string) map[string]string {
	out := make(map[string]string, len(all))
	for k, v := range all {
		if !strings.HasPrefix(k, labelPrefix) {
			out[k] = v
		}
	}
	return out
}

// sandboxOpts are the spec options of the pod's sandbox: its network
// namespace (the host's when NetNSPath is empty), host name and bind
// mounts. In the host network the host's /etc/hosts and /etc/resolv.conf
// are mounted unless Mounts provides them.
func sandboxOpts(spec nodeagent.ContainerSpec) []oci.SpecOpts {
	var opts []oci.SpecOpts
	mounted := map[string]bool{}
	var mounts []specs.Mount
	for _, m := range spec.Mounts {
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		mounted[path.Clean(m.Destination)] = true
		mounts = append(mounts, specs.Mount{Type: "bind", Source: m.Source, Destination: m.Destination,
			Options: []string{"rbind", "rprivate", mode}})
	}
	if spec.NetNSPath != "" {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: spec.NetNSPath}))
	} else {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace))
		if !mounted["/etc/hosts"] {
			opts = append(opts, oci.WithHostHostsFile)
		}
		if !mounted["/etc/resolv.conf"] {
			opts = append(opts, oci.WithHostResolvconf)
		}
	}
	if spec.Hostname != "" {
		opts = append(opts, oci.WithHostname(spec.Hostname))
	}
	if len(mounts) > 0 {
		opts = append(opts, oci.WithMounts(mounts))
	}
	return opts
}
