package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moor-dev/moor/api"
)

// `moor describe`: kubectl-style details of one or more objects, rendered
// from the same views `moor get` reads. moor keeps no event history, so
// where kubectl lists events moor lists what the last status report says
// is wrong (waiting reasons, failed scheduling).

// NewDescribeCommand returns `moor describe`.
func NewDescribeCommand(s Streams) *cobra.Command {
	return newDescribeCommand(s, connectAs[viewReader], time.Now)
}

// describeKinds is the help text listing the types describe knows.
const describeKinds = "pods (po), deployments (deploy), services (svc), nodes (no), jobs, cronjobs (cj), secrets"

func newDescribeCommand(s Streams, connect func(Options) (viewReader, string, error), now func() time.Time) *cobra.Command {
	return &cobra.Command{
		Use:   "describe TYPE[,TYPE...] [NAME_PREFIX...] | TYPE/NAME...",
		Short: "Show details of pods, deployments, services, nodes, jobs, cronjobs or secrets",
		Long: "Show details of objects, like kubectl describe. Types: " + describeKinds + ".\n" +
			"Without a name every object of the type in the namespace is described; with one name (TYPE NAME), an exact match\n" +
			"or else every object whose name starts with it. Secrets show where their values live and what the nodes read, never values.",
		Example: "  moor describe pod web-5d8f9c7b6a-abcde\n  moor describe deploy/web svc/web\n" +
			"  moor describe pods web          # pod web, else every pod whose name starts with web\n  moor describe node node-1\n  moor describe secret db -n shop",
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetErrPrefix("")
			req, err := parseDescribeArgs(args)
			if err != nil {
				return err
			}
			o, err := optionsFrom(cmd)
			if err != nil {
				return err
			}
			if o.AllNamespaces {
				for _, q := range req.Queries {
					if kinds[q.Kind].Namespaced && len(q.Names) > 0 {
						return fmt.Errorf("a resource cannot be retrieved by name across all namespaces: drop -A and pass -n NAMESPACE")
					}
				}
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
			return reportErrors(cmd, s.ErrOut, runDescribe(ctx, r, req, s.Out, s.ErrOut))
		},
	}
}

// describeRequest is a parsed `moor describe` invocation.
type describeRequest struct {
	Queries []query
	// ByPrefix: a lone name that matches nothing exactly selects every
	// object whose name starts with it (kubectl's "TYPE NAME" form).
	ByPrefix bool
	// Namespace filters namespaced kinds; "" means all namespaces (-A).
	Namespace string
	Now       time.Time
}

// parseDescribeArgs accepts kubectl's shapes: "TYPE[,TYPE...] [NAME...]"
// and "TYPE/NAME [TYPE/NAME...]".
func parseDescribeArgs(args []string) (describeRequest, error) {
	if len(args) == 0 {
		return describeRequest{}, fmt.Errorf("you must specify the type of resource to describe: one of %s", describeKinds)
	}
	typeName := strings.Contains(args[0], "/")
	if !typeName {
		for _, a := range args[1:] {
			if strings.Contains(a, "/") {
				return describeRequest{}, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'moor describe pod/web')")
			}
		}
	}
	types := strings.Split(args[0], ",")
	if typeName {
		types = types[:0]
		for _, a := range args {
			t, _, _ := strings.Cut(a, "/")
			types = append(types, t)
		}
	}
	for _, t := range types {
		k, err := parseKind(t)
		switch {
		case t == "":
			continue // parseGetArgs names the empty entry
		case err != nil:
			return describeRequest{}, fmt.Errorf("unknown resource type %q: want one of %s", strings.ToLower(t), describeKinds)
		case k == kindCommit:
			return describeRequest{}, fmt.Errorf("moor describe does not describe commits: use moor get commit SHA -o yaml")
		}
	}
	qs, err := parseGetArgs(args)
	if err != nil {
		return describeRequest{}, err
	}
	return describeRequest{Queries: qs, ByPrefix: !typeName && len(args) == 2}, nil
}

// describeItem is one object to describe: its name (for selection) and
// how to render it.
type describeItem struct {
	name   string
	render func(w io.Writer, now time.Time) error
}

// runDescribe fetches each queried kind, selects the named objects and
// prints them, separated by blank lines as kubectl does. Objects found are
// printed even when others are missing; the missing ones are returned as
// *NotFoundError values.
func runDescribe(ctx context.Context, r viewReader, req describeRequest, out, errOut io.Writer) []error {
	var items []describeItem
	var missing []error
	for _, q := range req.Queries {
		all, err := describeItems(ctx, r, q.Kind, req.Namespace)
		if err != nil {
			return []error{err}
		}
		found, miss := pickDescribed(all, q.Names, kinds[q.Kind].Resource, req.ByPrefix)
		items, missing = append(items, found...), append(missing, miss...)
	}
	for i, it := range items {
		var b bytes.Buffer
		if i > 0 {
			b.WriteString("\n\n")
		}
		if err := it.render(&b, req.Now); err != nil {
			return append(missing, err)
		}
		if _, err := out.Write(b.Bytes()); err != nil {
			return append(missing, err)
		}
	}
	if len(items) == 0 && len(missing) == 0 {
		fmt.Fprintln(errOut, noResources(getRequest{Queries: req.Queries, Namespace: req.Namespace}))
	}
	return missing
}

// describeItems lists every object of k in namespace ("" = all), sorted,
// with what its renderer needs: nodes also get the pods and commits.
func describeItems(ctx context.Context, r viewReader, k kind, namespace string) ([]describeItem, error) {
	res, _, err := fetch(ctx, r, query{Kind: k}, namespace)
	if err != nil {
		return nil, err
	}
	var items []describeItem
	add := func(name string, render func(io.Writer, time.Time) error) {
		items = append(items, describeItem{name: name, render: render})
	}
	switch k {
	case kindPod:
		for _, v := range res.Pods {
			add(v.Pod.Name, func(w io.Writer, now time.Time) error { return describePod(w, v, now) })
		}
	case kindDeployment:
		for _, v := range res.Deployments {
			add(v.Deployment.Name, func(w io.Writer, now time.Time) error { return describeDeployment(w, v, now) })
		}
	case kindService:
		for _, v := range res.Services {
			add(v.Service.Name, func(w io.Writer, now time.Time) error { return describeService(w, v, now) })
		}
	case kindJob:
		for _, v := range res.Jobs {
			add(v.Job.Name, func(w io.Writer, now time.Time) error { return describeJob(w, v, now) })
		}
	case kindCronJob:
		for _, v := range res.CronJobs {
			add(v.CronJob.Name, func(w io.Writer, now time.Time) error { return describeCronJob(w, v, now) })
		}
	case kindSecret:
		for _, v := range res.Secrets {
			add(v.Name, func(w io.Writer, now time.Time) error { return describeSecret(w, v, now) })
		}
	case kindNode:
		if len(res.Nodes) == 0 {
			return nil, nil
		}
		pods, _, err := fetch(ctx, r, query{Kind: kindPod}, "")
		if err != nil {
			return nil, err
		}
		commits, _, err := fetch(ctx, r, query{Kind: kindCommit}, "")
		if err != nil {
			return nil, err
		}
		deployed := deployedSHA(commits.Commits)
		for _, v := range res.Nodes {
			on := podsOnNode(pods.Pods, v.Name)
			add(v.Name, func(w io.Writer, now time.Time) error { return describeNode(w, v, on, deployed, now) })
		}
	}
	return items, nil
}

// pickDescribed returns, for each name, the item of that name; with
// byPrefix a lone name matching nothing exactly selects every item whose
// name starts with it, as `kubectl describe TYPE NAME` does. No names keeps
// all.
func pickDescribed(items []describeItem, names []string, resource string, byPrefix bool) ([]describeItem, []error) {
	found, missing := pick(items, names, resource, exactName(func(it describeItem) (string, string) { return "", it.name }))
	if len(missing) == 0 || !byPrefix || len(names) != 1 {
		return found, missing
	}
	for _, it := range items {
		if strings.HasPrefix(it.name, names[0]) {
			found = append(found, it)
		}
	}
	if len(found) == 0 {
		return nil, missing
	}
	return found, nil
}

func deployedSHA(commits []api.CommitView) string {
	for _, c := range commits {
		if c.Deployed {
			return c.SHA
		}
	}
	return ""
}

// podsOnNode are the pods planned onto node, in the listing's order.
func podsOnNode(pods []api.PodView, node string) []api.PodView {
	var out []api.PodView
	for _, p := range pods {
		if p.Pod.Spec.NodeName == node {
			out = append(out, p)
		}
	}
	return out
}
