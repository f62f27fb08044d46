// Package cli owns the kubectl-like client verbs of the moor binary
// (`moor get`, `moor sync`): client configuration discovery, the HTTPS
// (mTLS) admin client and the printers that turn api views into tables,
// JSON, YAML or names.
//
// Printers are pure functions of (views, options, now); only client.go and
// config.go do I/O. The package talks to the server solely through the wire
// contract in package api and must not import the reconciler or the node
// agent.
//
// Wiring (cmd/moor):
//
//	root := &cobra.Command{Use: "moor"}
//	cli.AddConfigFlags(root)
//	root.AddCommand(cli.Commands(cli.Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})...)
//
// AddConfigFlags registers persistent flags on root; the verbs read them
// back from the executing command's flag set, so no package globals hold
// flag values and several roots can coexist (tests). The verbs set
// SilenceUsage and report server errors kubectl-style through cobra's error
// prefix ("Error from server (NotFound): pods "x" not found").
package cli
