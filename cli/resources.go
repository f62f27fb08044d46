package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/moor-dev/moor/api"
)

// viewReader is what `moor get` needs of the server; *Client implements it
// and tests use a fake.
type viewReader interface {
	Pods(ctx context.Context) ([]api.PodView, error)
	Deployments(ctx context.Context) ([]api.DeploymentView, error)
	Nodes(ctx context.Context) ([]api.NodeView, error)
	Commits(ctx context.Context) ([]api.CommitView, error)
	Services(ctx context.Context) ([]api.ServiceView, error)
	Jobs(ctx context.Context) ([]api.JobView, error)
	CronJobs(ctx context.Context) ([]api.CronJobView, error)
	Secrets(ctx context.Context) ([]api.SecretView, error)
}

// kind is a resource type `moor get` knows.
type kind int

const (
	kindPod kind = iota
	kindDeployment
	kindNode
	kindCommit
	kindService
	kindJob
	kindCronJob
	kindSecret
)

// kindInfo describes how a resource type is named and scoped.
type kindInfo struct {
	// Resource is the plural used in messages ("pods", "deployments.apps").
	Resource string
	// Prefix is the "TYPE/" of -o name and of multi-type tables.
	Prefix string
	// Namespaced types are filtered by -n and get a NAMESPACE column with -A.
	Namespaced bool
	Aliases    []string
}

var kinds = map[kind]kindInfo{
	kindPod:        {Resource: "pods", Prefix: "pod", Namespaced: true, Aliases: []string{"pods", "pod", "po"}},
	kindDeployment: {Resource: "deployments.apps", Prefix: "deployment.apps", Namespaced: true, Aliases: []string{"deployments", "deployment", "deploy", "deployments.apps", "deployment.apps"}},
	kindNode:       {Resource: "nodes", Prefix: "node", Aliases: []string{"nodes", "node", "no"}},
	kindCommit:     {Resource: "commits", Prefix: "commit", Aliases: []string{"commits", "commit"}},
	kindService:    {Resource: "services", Prefix: "service", Namespaced: true, Aliases: []string{"services", "service", "svc"}},
	kindJob:        {Resource: "jobs.batch", Prefix: "job.batch", Namespaced: true, Aliases: []string{"jobs", "job", "jobs.batch", "job.batch"}},
	kindCronJob:    {Resource: "cronjobs.batch", Prefix: "cronjob.batch", Namespaced: true, Aliases: []string{"cronjobs", "cronjob", "cj", "cronjobs.batch", "cronjob.batch"}},
	kindSecret:     {Resource: "secrets", Prefix: "secret", Namespaced: true, Aliases: []string{"secrets", "secret"}},
}

// kindNames is the help text listing the known types.
const kindNames = "pods (po), deployments (deploy), services (svc), jobs, cronjobs (cj), secrets, nodes (no), commits (commit)"

func parseKind(s string) (kind, error) {
	s = strings.ToLower(s)
	for k, info := range kinds {
		for _, a := range info.Aliases {
			if a == s {
				return k, nil
			}
		}
	}
	return 0, fmt.Errorf("unknown resource type %q: want one of %s", s, kindNames)
}

// query is one resource type and the names asked for (none: all).
type query struct {
	Kind  kind
	Names []string
}

// parseGetArgs accepts kubectl's two shapes: "TYPE[,TYPE...] [NAME...]" and
// "TYPE/NAME [TYPE/NAME...]". Types keep the order given; repeats merge.
func parseGetArgs(args []string) ([]query, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("you must specify the type of resource to get: one of %s", kindNames)
	}
	if strings.Contains(args[0], "/") {
		return parseTypeNameArgs(args)
	}
	var qs []query
	seen := map[kind]bool{}
	for _, t := range strings.Split(args[0], ",") {
		if t == "" {
			return nil, fmt.Errorf("resource type list %q has an empty entry", args[0])
		}
		k, err := parseKind(t)
		if err != nil {
			return nil, err
		}
		if !seen[k] {
			seen[k] = true
			qs = append(qs, query{Kind: k})
		}
	}
	for _, n := range args[1:] {
		if strings.Contains(n, "/") {
			return nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'moor get pod/web')")
		}
	}
	for i := range qs {
		qs[i].Names = append([]string(nil), args[1:]...)
	}
	return qs, nil
}

func parseTypeNameArgs(args []string) ([]query, error) {
	var qs []query
	index := map[kind]int{}
	for _, a := range args {
		t, n, ok := strings.Cut(a, "/")
		if !ok || t == "" || n == "" {
			return nil, fmt.Errorf("argument %q: want TYPE/NAME when the first argument is TYPE/NAME", a)
		}
		k, err := parseKind(t)
		if err != nil {
			return nil, err
		}
		i, ok := index[k]
		if !ok {
			i = len(qs)
			index[k] = i
			qs = append(qs, query{Kind: k})
		}
		qs[i].Names = append(qs[i].Names, n)
	}
	return qs, nil
}

// NotFoundError says a named object does not exist.
type NotFoundError struct {
	Resource string // "pods", "deployments.apps", ...
	Name     string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %q not found", e.Resource, e.Name) }
