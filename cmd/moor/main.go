// Command moor is the single binary of moor: the reconciler (server), the
// node agent (agent), the all-in-one (up) and the kubectl-like client verbs.
// This package only wires the other packages together.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/moor-dev/moor/cli"
)

// Set by the linker: -ldflags "-X main.version=v0.1.0".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(cli.ExitCode(err)) // 1, or the exit code of moor exec's command
	}
}

type logOptions struct {
	level  string
	format string
}

func (o *logOptions) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", o.level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch o.format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", o.format)
}

func newRoot() *cobra.Command {
	streams := cli.Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	logs := &logOptions{}
	root := &cobra.Command{
		Use:           "moor",
		Short:         "Git-driven container orchestration with pull-based nodes",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.PersistentFlags().StringVar(&logs.level, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&logs.format, "log-format", "text", "log format: text or json")
	cli.AddConfigFlags(root)
	root.AddCommand(
		newServerCommand(logs),
		newAgentCommand(logs),
		newUpCommand(logs),
		cli.NewGetCommand(streams),
		cli.NewSyncCommand(streams),
		cli.NewCreateCommand(streams),
		cli.NewLogsCommand(streams),
		cli.NewExecCommand(streams),
		cli.NewDescribeCommand(streams),
		cli.NewRolloutCommand(streams),
		cli.NewDashboardCommand(streams),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version of moor",
			Args:  cobra.NoArgs,
			Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "moor", version) },
		},
	)
	return root
}
