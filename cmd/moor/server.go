package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moor-dev/moor/reconciler/manifest"
	"github.com/moor-dev/moor/reconciler/planner"
	"github.com/moor-dev/moor/reconciler/server"
	"github.com/moor-dev/moor/reconciler/source"
)

func newServerCommand(logs *logOptions) *cobra.Command {
	var cfg server.Config
	var nodePorts string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the reconciler: follow a Git branch and publish each node's desired state",
		Example: `  moor server --repo https://git.example.com/org/deploy.git --branch main --path clusters/prod \
    --token-file /etc/moor/git-token --data-dir /var/lib/moor`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.logger()
			if err != nil {
				return err
			}
			cfg.Log = log
			if cfg.Network.NodePortRange, err = parsePortRange(nodePorts); err != nil {
				return err
			}
			s, err := server.Start(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return s.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Source.URL, "repo", "", "Git repository URL (file://, https://, ssh:// or git@host:path)")
	f.StringVar(&cfg.Source.Branch, "branch", "main", "branch to follow")
	f.StringVar(&cfg.Source.Path, "path", "", "directory inside the repository holding the manifests")
	f.BoolVar(&cfg.AllowPlainSecrets, "allow-plain-secrets", false, "DEVELOPMENT ONLY: accept Secrets with data or stringData and send their values to the nodes (the values sit in Git and in the server's state); without it every Secret must name a Vault path")
	f.StringVar(&cfg.Source.TokenFile, "token-file", "", "file holding an HTTPS access token for the repository")
	f.StringVar(&cfg.Source.Username, "username", "", "HTTPS user name to send with the token")
	f.StringVar(&cfg.Source.SSHKeyFile, "ssh-key", "", "private key file for ssh repositories")
	f.StringVar(&cfg.Source.SSHKnownHostsFile, "ssh-known-hosts", "", "known_hosts file for ssh repositories (default ~/.ssh/known_hosts)")
	f.StringVar(&cfg.DataDir, "data-dir", "/var/lib/moor/server", "directory for the state store, PKI, token and admin.conf")
	f.StringVar(&cfg.Listen, "listen", ":7443", "HTTPS listen address")
	f.StringVar(&cfg.AdvertiseURL, "advertise-url", "", "URL agents and the CLI use to reach this server (default https://127.0.0.1:PORT)")
	f.StringSliceVar(&cfg.Hosts, "tls-san", nil, "extra host names or IPs for the serving certificate")
	f.DurationVar(&cfg.PollInterval, "poll-interval", 30*time.Second, "how often to poll the branch (jittered); webhooks sync at once")
	f.StringVar(&cfg.WebhookSecretsFile, "webhook-secrets", "", "file (mode 0600, YAML or JSON: github, gitlab, gitea, forgejo, bitbucket, generic) with webhook secrets; MOOR_WEBHOOK_<PROVIDER>_SECRET overrides")
	f.StringVar(&cfg.WebhookListen, "webhook-listen", "", "also serve /hooks/ and health checks over plain HTTP on this address (behind a TLS-terminating proxy)")
	f.TextVar(&cfg.Network.ClusterCIDR, "cluster-cidr", planner.DefaultClusterCIDR, "CIDR pods get their addresses from; each node gets a slice of it")
	f.IntVar(&cfg.Network.NodeCIDRSize, "node-cidr-size", planner.DefaultNodeCIDRSize, "prefix length of each node's slice of --cluster-cidr")
	f.TextVar(&cfg.Network.ServiceCIDR, "service-cidr", manifest.DefaultServiceCIDR, "CIDR Services get their cluster IPs from; the cluster DNS gets its tenth address")
	f.StringVar(&nodePorts, "service-node-port-range", fmt.Sprintf("%d-%d", manifest.DefaultNodePortRange[0], manifest.DefaultNodePortRange[1]), "port range of NodePort Services, FIRST-LAST")
	_ = cmd.MarkFlagRequired("repo")
	return cmd
}

// parsePortRange parses "FIRST-LAST".
func parsePortRange(s string) ([2]int, error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return [2]int{}, fmt.Errorf("--service-node-port-range %q: want FIRST-LAST within 1-65535, e.g. 30000-32767", s)
	}
	return [2]int{lo, hi}, nil
}

func sourceConfig(repo, branch, path string) source.Config {
	return source.Config{URL: repo, Branch: branch, Path: path}
}
