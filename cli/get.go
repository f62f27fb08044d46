package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

// Output formats of `moor get -o`.
const (
	outputTable = ""
	outputWide  = "wide"
	outputJSON  = "json"
	outputYAML  = "yaml"
	outputName  = "name"
)

// defaultGetTimeout bounds `moor get` when --request-timeout is unset.
const defaultGetTimeout = 30 * time.Second

// connectClient loads the context and builds its client.
func connectClient(o Options) (*Client, string, error) {
	rc, err := LoadContext(o)
	if err != nil {
		return nil, "", err
	}
	c, err := NewClient(rc)
	if err != nil {
		return nil, "", err
	}
	return c, rc.Namespace, nil
}

// connectAs is connectClient for a verb that needs only C of the client,
// an interface *Client implements (as a `var _ C = (*Client)(nil)` beside
// C asserts). With an error it returns C's zero value, not a nil *Client.
func connectAs[C any](o Options) (C, string, error) {
	c, ns, err := connectClient(o)
	if err != nil {
		var none C
		return none, "", err
	}
	return any(c).(C), ns, nil
}

// NewGetCommand returns `moor get`.
func NewGetCommand(s Streams) *cobra.Command {
	return newGetCommand(s, connectAs[viewReader], time.Now)
}

// getRequest is a parsed `moor get` invocation.
type getRequest struct {
	Queries []query
	// Namespace filters namespaced kinds; "" means all namespaces (-A).
	Namespace string
	Output    string
	Now       time.Time
}

func newGetCommand(s Streams, connect func(Options) (viewReader, string, error), now func() time.Time) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get TYPE[,TYPE...] [NAME...] | TYPE/NAME...",
		Short: "Show pods, deployments, services, nodes or commits",
		Long: "Show one or many objects, like kubectl get. Types: " + kindNames + ".\n" +
			"Namespaced types (pods, deployments) are read from -n, else the context's namespace, else \"default\"; -A shows all namespaces.",
		Example:      "  moor get pods\n  moor get pods,deployments -A\n  moor get pod web-5d8f9-abcde -o yaml\n  moor get commits -o wide\n  moor get nodes -o name",
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetErrPrefix("") // inherit, unless reportErrors sets one
			o, err := optionsFrom(cmd)
			if err != nil {
				return err
			}
			req, err := newGetRequest(args, output, o)
			if err != nil {
				return err
			}
			r, ns, err := connect(o)
			if err != nil {
				return err
			}
			if !o.AllNamespaces {
				req.Namespace = ns
			}
			req.Now = now()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeoutOr(o.Timeout, defaultGetTimeout))
			defer cancel()
			return reportErrors(cmd, s.ErrOut, runGet(ctx, r, req, s.Out, s.ErrOut))
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: wide, json, yaml or name")
	return cmd
}

// newGetRequest validates the arguments before anything is fetched.
func newGetRequest(args []string, output string, o Options) (getRequest, error) {
	switch output {
	case outputTable, outputWide, outputJSON, outputYAML, outputName:
	default:
		return getRequest{}, fmt.Errorf("unknown output format %q: want one of wide, json, yaml, name", output)
	}
	qs, err := parseGetArgs(args)
	if err != nil {
		return getRequest{}, err
	}
	if o.AllNamespaces {
		for _, q := range qs {
			if kinds[q.Kind].Namespaced && len(q.Names) > 0 {
				return getRequest{}, fmt.Errorf("a resource cannot be retrieved by name across all namespaces: drop -A and pass -n NAMESPACE")
			}
		}
	}
	return getRequest{Queries: qs, Output: output}, nil
}

func timeoutOr(t, def time.Duration) time.Duration {
	if t > 0 {
		return t
	}
	return def
}

// runGet fetches every queried kind and prints it; found objects are
// printed even when some names are missing, and the missing ones are
// returned as *NotFoundError values.
func runGet(ctx context.Context, r viewReader, req getRequest, out, errOut io.Writer) []error {
	var results []result
	var missing []error
	for _, q := range req.Queries {
		res, miss, err := fetch(ctx, r, q, req.Namespace)
		if err != nil {
			return []error{err}
		}
		results, missing = append(results, res), append(missing, miss...)
	}
	if err := printResults(out, errOut, results, req); err != nil {
		return append(missing, err)
	}
	return missing
}

// printResults renders results in the requested format. It is pure apart
// from writing to out and errOut.
func printResults(out, errOut io.Writer, results []result, req getRequest) error {
	named := 0
	for _, q := range req.Queries {
		named += len(q.Names)
	}
	switch req.Output {
	case outputJSON, outputYAML:
		var objs []any
		for i := range results {
			objs = append(objs, results[i].objects()...)
		}
		return printObjects(out, objs, len(req.Queries) == 1 && named == 1, req.Output)
	case outputName:
		for i := range results {
			for _, n := range results[i].names() {
				if _, err := fmt.Fprintln(out, n); err != nil {
					return err
				}
			}
		}
		return nil
	}
	o := tableOptions{Wide: req.Output == outputWide, AllNamespaces: req.Namespace == "", Prefix: len(req.Queries) > 1, Now: req.Now}
	printed := 0
	for i := range results {
		if results[i].len() == 0 {
			continue
		}
		if printed > 0 {
			fmt.Fprintln(out)
		}
		printed++
		if err := writeTable(out, results[i].table(o)); err != nil {
			return err
		}
	}
	if printed == 0 && named == 0 {
		fmt.Fprintln(errOut, noResources(req))
	}
	return nil
}

// noResources is kubectl's message for an empty listing.
func noResources(req getRequest) string {
	for _, q := range req.Queries {
		if kinds[q.Kind].Namespaced && req.Namespace != "" {
			return fmt.Sprintf("No resources found in %s namespace.", req.Namespace)
		}
	}
	return "No resources found"
}

// reportErrors prints all errors but the last, kubectl-style, and returns
// the last with the matching prefix set on cmd, so cobra prints it the
// same way and the process exits non-zero.
func reportErrors(cmd *cobra.Command, errOut io.Writer, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	for _, err := range errs[:len(errs)-1] {
		fmt.Fprintln(errOut, errorPrefix(err), err.Error())
	}
	last := errs[len(errs)-1]
	cmd.SetErrPrefix(errorPrefix(last))
	return last
}

// reportError is reportErrors for at most one error: nil reports nothing.
func reportError(cmd *cobra.Command, err error) error {
	if err == nil {
		return nil
	}
	return reportErrors(cmd, io.Discard, []error{err})
}

// errorPrefix is "Error from server (Reason):" for answers of the server
// and "Error:" for everything else.
func errorPrefix(err error) string {
	var nf *NotFoundError
	var ae *APIError
	switch {
	case errors.As(err, &nf):
		return "Error from server (NotFound):"
	case errors.As(err, &ae):
		return "Error from server (" + ae.Reason() + "):"
	}
	return "Error:"
}
