package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moor-dev/moor/netplane/proxy"
	"github.com/moor-dev/moor/nodeagent"
	"github.com/moor-dev/moor/nodeagent/containerd"
)

// agentOptions are the flags of `moor agent`.
type agentOptions struct {
	agent              nodeagent.Config
	tokenFile          string
	labels             []string
	containerdSocket   string
	runcRoot           string
	cgroupParent       string
	insecureRegistries []string
	nodeIP             string
	podNetwork         bool
	bridge             string
	proxyBackend       string
	cleanupNetwork     bool
	vault              vaultOptions
}

func (o *agentOptions) bind(cmd *cobra.Command) {
	host, _ := os.Hostname()
	f := cmd.Flags()
	f.StringVar(&o.agent.Server, "server", "", "URL of the moor server (https://host:7443)")
	f.StringVar(&o.agent.Token, "token", "", "join token (the server writes it to <data-dir>/token); needed only on the first start")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the join token")
	f.StringVar(&o.agent.Name, "name", strings.ToLower(host), "node name")
	f.StringVar(&o.agent.DataDir, "data-dir", "/var/lib/moor/agent", "directory for the node's certificate and local state")
	f.StringSliceVar(&o.labels, "label", nil, "node label key=value (repeatable)")
	f.StringVar(&o.containerdSocket, "containerd", "/run/containerd/containerd.sock", "containerd socket")
	f.StringVar(&o.runcRoot, "runc-root", "", "runc state directory (default <data-dir>/runc)")
	f.StringVar(&o.cgroupParent, "cgroup-parent", "", "cgroup parent for containers (default /moor-<name>)")
	f.StringSliceVar(&o.insecureRegistries, "insecure-registry", nil, "registry host:port to pull from over plain HTTP (repeatable)")
	f.DurationVar(&o.agent.PollWait, "poll-wait", 30*time.Second, "long-poll wait for desired state")
	o.bindNetwork(f)
	o.vault.bind(f)
}

// defaultBridge is the bridge pods attach to unless --bridge says otherwise.
const defaultBridge = "moor0"

func (o *agentOptions) bindNetwork(f *pflag.FlagSet) {
	f.StringVar(&o.nodeIP, "node-ip", "", "this node's address, which other nodes route its pods through (default: the source address of the route to the server)")
	f.BoolVar(&o.podNetwork, "pod-network", true, "give each pod its own network namespace on the pod network, with service VIPs and DNS; false runs pods in the host network")
	f.StringVar(&o.bridge, "bridge", defaultBridge, "bridge the pods attach to")
	f.BoolVar(&o.cleanupNetwork, "cleanup-network-on-exit", false, "on exit, remove the bridge, routes and service rules this agent put into the host (running pods lose their network; for decommissioning a node)")
	f.StringVar(&o.proxyBackend, "proxy-backend", string(proxy.KindNFTables), "service proxy backend: nftables (one netlink batch) or iptables (iptables-restore, for hosts that must stay on iptables)")
}

func (o *agentOptions) complete(log *slog.Logger) error {
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		o.agent.Token = strings.TrimSpace(string(b))
	}
	o.agent.Labels = map[string]string{}
	for _, l := range o.labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return fmt.Errorf("--label %q: want key=value", l)
		}
		o.agent.Labels[k] = v
	}
	if o.runcRoot == "" {
		o.runcRoot = filepath.Join(o.agent.DataDir, "runc")
	}
	if o.cgroupParent == "" {
		o.cgroupParent = "/moor-" + o.agent.Name
	}
	if err := o.completeNetwork(); err != nil {
		return err
	}
	o.agent.Log = log
	return o.agent.Validate()
}

func newAgentCommand(logs *logOptions) *cobra.Command {
	o := &agentOptions{}
	cmd := &cobra.Command{
		Use:     "agent",
		Short:   "Run a node agent: pull this node's desired state and run its pods on containerd",
		Example: `  moor agent --server https://10.0.0.1:7443 --token-file /etc/moor/token --name node-a`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.logger()
			if err != nil {
				return err
			}
			if err := o.complete(log); err != nil {
				return err
			}
			return runAgent(cmd.Context(), o, log)
		},
	}
	o.bind(cmd)
	_ = cmd.MarkFlagRequired("server")
	return cmd
}

// runAgent runs an agent until ctx ends. The agent's containers keep
// running after it stops: a restarted agent adopts them.
func runAgent(ctx context.Context, o *agentOptions, log *slog.Logger) error {
	rt, err := newRuntime(ctx, o, log)
	if err != nil {
		return err
	}
	defer rt.Close()
	closeNet, err := o.attachNetwork(log)
	if err != nil {
		return err
	}
	// The pods keep running after the agent stops, so their network stays
	// unless the operator asks for it to go (the pods then lose it).
	defer closeNet(context.WithoutCancel(ctx), o.cleanupNetwork)
	vault, err := o.vault.manager(log)
	if err != nil {
		return err
	}
	if vault != nil {
		o.agent.Secrets = vaultSecrets{vault}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- vault.Run(ctx) }()
		defer func() { cancel(); <-done }()
	}
	a, err := nodeagent.New(o.agent, rt)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func newRuntime(ctx context.Context, o *agentOptions, log *slog.Logger) (*containerd.Runtime, error) {
	return containerd.New(ctx, containerd.Config{
		Address: o.containerdSocket, RuncRoot: o.runcRoot, CgroupParent: o.cgroupParent,
		InsecureRegistries: o.insecureRegistries, Log: log.With("component", "containerd"),
	})
}
