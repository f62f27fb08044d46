package cli

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moor-dev/moor/api"
)

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
