package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moor-dev/moor/internal/devenv/imagebuild"
	"github.com/moor-dev/moor/internal/devenv/registry"
	"github.com/moor-dev/moor/internal/devenv/seedrepo"
	"github.com/moor-dev/moor/netplane/proxy"
	"github.com/moor-dev/moor/nodeagent"
	"github.com/moor-dev/moor/nodeagent/containerdproc"
	"github.com/moor-dev/moor/reconciler/server"
)

// upOptions are the flags of `moor up`.
type upOptions struct {
	dataDir      string
	repo         string
	example      string
	branch       string
	path         string
	listen       string
	registryAddr string
	containerd   string
	pollInterval time.Duration
	podNetwork   bool
}

func newUpCommand(logs *logOptions) *cobra.Command {
	o := &upOptions{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run moor all-in-one on this machine: registry, containerd, server and one agent",
		Long: `up starts everything moor needs on one machine and deploys a manifests repository:
a loopback OCI registry holding the demo images, a private containerd (unless
--containerd is given), the reconciler and one node agent. Without --repo it
seeds a bare Git repository under the data dir from --example (repo-example/)
and follows it: clone it, edit, commit, git push, and moor deploys the change.
Ctrl-C stops everything up started, containers included.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.logger()
			if err != nil {
				return err
			}
			return runUp(cmd.Context(), o, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", "/var/lib/moor-up", "directory for everything up creates")
	f.StringVar(&o.repo, "repo", "", "Git repository to follow (default: a bare repo seeded from --example)")
	f.StringVar(&o.example, "example", "repo-example", "directory of manifests to seed the default repository from")
	f.StringVar(&o.branch, "branch", "main", "branch to follow")
	f.StringVar(&o.path, "path", "", "directory inside the repository holding the manifests")
	f.StringVar(&o.listen, "listen", "127.0.0.1:7443", "server HTTPS listen address")
	f.StringVar(&o.registryAddr, "registry", "127.0.0.1:5310", "loopback registry address for the demo images")
	f.StringVar(&o.containerd, "containerd", "", "use this containerd socket instead of starting a private containerd")
	f.DurationVar(&o.pollInterval, "poll-interval", 10*time.Second, "how often to poll the branch")
	f.BoolVar(&o.podNetwork, "pod-network", true, "run pods on the pod network (bridge moor0, service VIPs, DNS); false runs them in the host network")
	return cmd
}

func runUp(ctx context.Context, o *upOptions, log *slog.Logger) error {
	if os.Geteuid() != 0 {
		return errors.New("moor up runs containers and must run as root")
	}
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return err
	}
	// Cleanup must run even after Ctrl-C cancelled ctx.
	cleanup := context.WithoutCancel(ctx)

	reg, err := registry.Start(ctx, registry.Config{Dir: filepath.Join(o.dataDir, "registry"), Addr: o.registryAddr, Log: log})
	if err != nil {
		return err
	}
	defer reg.Stop()
	if _, err := imagebuild.Push(ctx, imagebuild.DemoSpec(reg.Addr())); err != nil {
		return fmt.Errorf("build demo image: %w", err)
	}

	repo := o.repo
	if repo == "" {
		bare := filepath.Join(o.dataDir, "repo.git")
		if err := seedrepo.Seed(ctx, o.example, bare, o.branch); err != nil {
			return err
		}
		repo = (&url.URL{Scheme: "file", Path: bare}).String()
		log.Info("following a repository seeded from "+o.example, "clone", "git clone "+bare)
	}

	socket := o.containerd
	if socket == "" {
		d, err := containerdproc.Start(ctx, containerdproc.Config{Dir: filepath.Join(o.dataDir, "containerd"), Log: log})
		if err != nil {
			return err
		}
		defer d.Stop(cleanup)
		socket = d.Socket()
	}

	srv, err := server.Start(ctx, server.Config{
		Source:       sourceConfig(repo, o.branch, o.path),
		DataDir:      filepath.Join(o.dataDir, "server"),
		Listen:       o.listen,
		PollInterval: o.pollInterval,
		Log:          log,
	})
	if err != nil {
		return err
	}
	agentDir := filepath.Join(o.dataDir, "agent")
	host, _ := os.Hostname()
	ao := &agentOptions{
		agent: nodeagent.Config{Server: srv.URL(), Token: srv.Token(), Name: nodeName(host),
			DataDir: agentDir, PollWait: 30 * time.Second},
		containerdSocket:   socket,
		insecureRegistries: []string{reg.Addr()},
		podNetwork:         o.podNetwork,
		bridge:             defaultBridge,
		proxyBackend:       string(proxy.KindNFTables),
	}
	if err := ao.complete(log); err != nil {
		return err
	}
	rt, err := newRuntime(ctx, ao, log)
	if err != nil {
		return err
	}
	defer rt.Close()
	closeNet, err := ao.attachNetwork(log)
	if err != nil {
		return err
	}
	// Runs after stopAll and releaseNetwork (defers run in reverse): the
	// host is left as moor found it.
	defer closeNet(cleanup, true)
	// up owns its containers: stop them before containerd goes away, then
	// release their network namespaces.
	defer releaseNetwork(cleanup, ao.agent.Network, log)
	defer stopAll(cleanup, rt, log)
	a, err := nodeagent.New(ao.agent, rt)
	if err != nil {
		return err
	}

	errc := make(chan error, 2)
	go func() { errc <- srv.Run(ctx) }()
	go func() { errc <- a.Run(ctx) }()
	fmt.Fprintf(os.Stderr, "\nmoor is up. Try:\n  export MOOR_CONFIG=%s\n  moor get pods -A -o wide\n\n",
		server.AdminConfigPath(filepath.Join(o.dataDir, "server")))
	var first error
	for i := 0; i < 2; i++ {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// stopAll stops and removes every container of the runtime.
func stopAll(ctx context.Context, rt nodeagent.Runtime, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	cs, err := rt.List(ctx)
	if err != nil {
		log.Error("list containers to stop", "err", err)
		return
	}
	for _, c := range cs {
		if err := rt.Stop(ctx, c.ID, 10*time.Second); err != nil {
			log.Error("stop container", "id", c.ID, "err", err)
		}
		if err := rt.Remove(ctx, c.ID); err != nil {
			log.Error("remove container", "id", c.ID, "err", err)
		}
	}
}

// releaseNetwork tears down the pod namespaces left after stopAll.
func releaseNetwork(ctx context.Context, n nodeagent.Network, log *slog.Logger) {
	if n == nil {
		return
	}
	uids, err := n.Attached(ctx)
	if err != nil {
		log.Error("list pod network attachments", "err", err)
		return
	}
	for _, uid := range uids {
		if err := n.Detach(ctx, uid); err != nil {
			log.Error("tear down pod network", "pod_uid", uid, "err", err)
		}
	}
}

// nodeName turns a host name into a valid node name.
func nodeName(host string) string {
	host = strings.ToLower(strings.SplitN(host, ".", 2)[0])
	if host == "" {
		return "node"
	}
	return host
}
