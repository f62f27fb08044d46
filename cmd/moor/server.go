package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/moor-dev/moor/reconciler/server"
	"github.com/moor-dev/moor/reconciler/source"
)

func newServerCommand(logs *logOptions) *cobra.Command {
	var cfg server.Config
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
	f.StringVar(&cfg.Source.TokenFile, "token-file", "", "file holding an HTTPS access token for the repository")
	f.StringVar(&cfg.Source.Username, "username", "", "HTTPS user name to send with the token")
	f.StringVar(&cfg.Source.SSHKeyFile, "ssh-key", "", "private key file for ssh repositories")
	f.StringVar(&cfg.Source.SSHKnownHostsFile, "ssh-known-hosts", "", "known_hosts file for ssh repositories (default ~/.ssh/known_hosts)")
	f.StringVar(&cfg.DataDir, "data-dir", "/var/lib/moor/server", "directory for the state store, PKI, token and admin.conf")
	f.StringVar(&cfg.Listen, "listen", ":7443", "HTTPS listen address")
	f.StringVar(&cfg.AdvertiseURL, "advertise-url", "", "URL agents and the CLI use to reach this server (default https://127.0.0.1:PORT)")
	f.StringSliceVar(&cfg.Hosts, "tls-san", nil, "extra host names or IPs for the serving certificate")
	f.DurationVar(&cfg.PollInterval, "poll-interval", 30*time.Second, "how often to poll the branch (jittered)")
	_ = cmd.MarkFlagRequired("repo")
	return cmd
}

func sourceConfig(repo, branch, path string) source.Config {
	return source.Config{URL: repo, Branch: branch, Path: path}
}
