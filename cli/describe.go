package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/moor-dev/moor/api"
)

// secretReader is what `moor describe secret` needs of the server.
type secretReader interface {
	Secrets(ctx context.Context) ([]api.SecretView, error)
}

var _ secretReader = (*Client)(nil)

// NewDescribeCommand returns `moor describe`, which describes Secrets.
func NewDescribeCommand(s Streams) *cobra.Command {
	return newDescribeCommand(s, func(o Options) (secretReader, string, error) {
		c, ns, err := connectClient(o)
		if err != nil {
			return nil, "", err
		}
		return c, ns, nil
	}, time.Now)
}

func newDescribeCommand(s Streams, connect func(Options) (secretReader, string, error), now func() time.Time) *cobra.Command {
	return &cobra.Command{
		Use:          "describe secret NAME... | secret/NAME...",
		Short:        "Show where a Secret's values live and what each node read (never values)",
		Example:      "  moor describe secret db\n  moor describe secret/registry -n shop",
		Args:         cobra.MinimumNArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetErrPrefix("")
			names, err := describeArgs(args)
			if err != nil {
				return err
			}
			o, err := optionsFrom(cmd)
			if err != nil {
				return err
			}
			if o.AllNamespaces {
				return fmt.Errorf("-A does not apply to describe: pass -n NAMESPACE")
			}
			r, ns, err := connect(o)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeoutOr(o.Timeout, defaultGetTimeout))
			defer cancel()
			all, err := r.Secrets(ctx)
			if err != nil {
				return reportErrors(cmd, s.ErrOut, []error{err})
			}
			res := result{Kind: kindSecret, Secrets: all}
			missing := selectSecrets(&res, names, ns)
			for i, v := range res.Secrets {
				if i > 0 {
					fmt.Fprintln(s.Out)
				}
				if err := describeSecret(s.Out, v, now()); err != nil {
					return err
				}
			}
			return reportErrors(cmd, s.ErrOut, missing)
		},
	}
}

// describeArgs accepts "secret NAME..." and "secret/NAME...".
func describeArgs(args []string) ([]string, error) {
	isSecret := func(t string) error {
		if k, err := parseKind(t); err != nil || k != kindSecret {
			return fmt.Errorf("moor describe shows secrets only; for %q use moor get %s NAME -o yaml", t, t)
		}
		return nil
	}
	if strings.Contains(args[0], "/") {
		var names []string
		for _, a := range args {
			t, n, ok := strings.Cut(a, "/")
			if !ok || n == "" {
				return nil, fmt.Errorf("argument %q: want secret/NAME", a)
			}
			if err := isSecret(t); err != nil {
				return nil, err
			}
			names = append(names, n)
		}
		return names, nil
	}
	if err := isSecret(args[0]); err != nil {
		return nil, err
	}
	if len(args) < 2 {
		return nil, fmt.Errorf("name the Secret: moor describe secret NAME")
	}
	return args[1:], nil
}

// describeSecret renders one Secret the way kubectl describe lays out an
// object: fields, then a table of the nodes.
func describeSecret(w io.Writer, v api.SecretView, now time.Time) error {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	field := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	field("Name", v.Name)
	field("Namespace", v.Namespace)
	field("Type", v.Type)
	field("Commit", shortSHA(v.Commit))
	if s := v.Vault; s != nil {
		field("Vault path", s.Path)
		field("Engine", s.Engine)
		switch {
		case s.Engine == api.VaultEngineLease:
			field("Version", "a lease per node, renewed by the node")
		case s.Version > 0:
			field("Version", strconv.FormatInt(s.Version, 10)+" (pinned)")
		default:
			field("Version", "latest (rotations roll the pods that read it through env)")
		}
		if len(s.Keys) == 0 {
			field("Keys", "every key of the Vault secret")
		}
		for i, k := range slices.Sorted(maps.Keys(s.Keys)) {
			label := "Keys"
			if i > 0 {
				label = ""
			}
			fmt.Fprintf(tw, "%s\t%s <- %s\n", colon(label), k, s.Keys[k])
		}
	} else {
		field("Source", "plain: values in Git (development servers only)")
		field("Keys", orNone(strings.Join(v.PlainKeys, ", ")))
	}
	if len(v.Nodes) == 0 {
		field("Nodes", "<none>: no pod uses this Secret")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(v.Nodes) == 0 {
		_, err := w.Write(b.Bytes())
		return err
	}
	b.WriteString("Nodes:\n")
	tw = tabwriter.NewWriter(&b, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tVERSION\tKEYS\tLAST READ\tEXPIRES\tPODS\tERROR")
	for _, n := range v.Nodes {
		version, read, expires := "<none>", "<never>", "-"
		switch {
		case n.Version > 0 && v.Vault != nil && v.Vault.Engine == api.VaultEngineLease:
			version = "issued " + humanDuration(now.Sub(time.Unix(n.Version, 0))) + " ago" // a lease's version is its issue time
		case n.Version > 0:
			version = strconv.FormatInt(n.Version, 10)
		}
		if !n.ReadAt.IsZero() {
			read = humanDuration(now.Sub(n.ReadAt)) + " ago"
		}
		if !n.LeaseExpires.IsZero() {
			expires = "in " + humanDuration(n.LeaseExpires.Sub(now))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Node, version, orNone(strings.Join(n.Keys, ",")), read, expires,
			orNone(strings.Join(n.Pods, ",")), orNone(n.Error))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

func colon(label string) string {
	if label == "" {
		return ""
	}
	return label + ":"
}
