package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/moor-dev/moor/api"
)

// result holds the objects of one kind that `moor get` prints; only the
// slice of its Kind is used.
type result struct {
	Kind        kind
	Pods        []api.PodView
	Deployments []api.DeploymentView
	Nodes       []api.NodeView
	Commits     []api.CommitView
	Services    []api.ServiceView
	Jobs        []api.JobView
	CronJobs    []api.CronJobView
	Secrets     []api.SecretView
}

func (r *result) len() int {
	return len(r.Pods) + len(r.Deployments) + len(r.Nodes) + len(r.Commits) + len(r.Services) + len(r.Jobs) + len(r.CronJobs) + len(r.Secrets)
}

func (r *result) table(o tableOptions) table {
	switch r.Kind {
	case kindPod:
		return podTable(r.Pods, o)
	case kindDeployment:
		return deploymentTable(r.Deployments, o)
	case kindNode:
		return nodeTable(r.Nodes, o)
	case kindService:
		return serviceTable(r.Services, o)
	case kindJob, kindCronJob:
		return r.batchTable(o)
	case kindSecret:
		return secretTable(r.Secrets, o)
	}
	return commitTable(r.Commits, o)
}

func (r *result) objects() []any {
	return slices.Concat(mapTo(r.Pods, podObject), mapTo(r.Deployments, deploymentObject),
		mapTo(r.Nodes, nodeObject), mapTo(r.Commits, commitObject), mapTo(r.Services, serviceObject), r.batchObjects(),
		mapTo(r.Secrets, secretObject))
}

// names are "TYPE/NAME" as -o name prints them.
func (r *result) names() []string {
	p := kinds[r.Kind].Prefix + "/"
	return slices.Concat(
		mapTo(r.Pods, func(v api.PodView) string { return p + v.Pod.Name }),
		mapTo(r.Deployments, func(v api.DeploymentView) string { return p + v.Deployment.Name }),
		mapTo(r.Nodes, func(v api.NodeView) string { return p + v.Name }),
		mapTo(r.Commits, func(v api.CommitView) string { return p + v.SHA }),
		mapTo(r.Services, func(v api.ServiceView) string { return p + v.Service.Name }), r.batchNames(p),
		mapTo(r.Secrets, func(v api.SecretView) string { return p + v.Name }))
}

func mapTo[T, U any](in []T, f func(T) U) []U {
	out := make([]U, 0, len(in))
	for _, v := range in {
		out = append(out, f(v))
	}
	return out
}

// fetch lists one kind from the server, then selects (see selectResult).
func fetch(ctx context.Context, r viewReader, q query, namespace string) (result, []error, error) {
	res := result{Kind: q.Kind}
	var err error
	switch q.Kind {
	case kindPod:
		res.Pods, err = r.Pods(ctx)
	case kindDeployment:
		res.Deployments, err = r.Deployments(ctx)
	case kindNode:
		res.Nodes, err = r.Nodes(ctx)
	case kindCommit:
		res.Commits, err = r.Commits(ctx)
	case kindService:
		res.Services, err = r.Services(ctx)
	case kindJob, kindCronJob:
		err = fetchBatch(ctx, r, &res)
	case kindSecret:
		res.Secrets, err = r.Secrets(ctx)
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return result{}, nil, err // the server's own words, kubectl-style
	}
	if err != nil {
		return result{}, nil, fmt.Errorf("list %s: %w", kinds[q.Kind].Resource, err)
	}
	missing := selectResult(&res, q.Names, namespace)
	return res, missing, nil
}

// selectResult keeps the objects of namespace ("" = all), sorted as
// kubectl lists them, and, when names are given, only those, in the order
// asked. It returns a *NotFoundError per missing name. Commits keep the
// server's order and match by SHA prefix.
func selectResult(r *result, names []string, namespace string) []error {
	res := kinds[r.Kind].Resource
	switch r.Kind {
	case kindPod:
		key := func(v api.PodView) (string, string) { return v.Pod.Namespace, v.Pod.Name }
		r.Pods = sortByKey(filterNamespace(r.Pods, namespace, key), key)
		var missing []error
		r.Pods, missing = pick(r.Pods, names, res, exactName(key))
		return missing
	case kindDeployment:
		key := func(v api.DeploymentView) (string, string) { return v.Deployment.Namespace, v.Deployment.Name }
		r.Deployments = sortByKey(filterNamespace(r.Deployments, namespace, key), key)
		var missing []error
		r.Deployments, missing = pick(r.Deployments, names, res, exactName(key))
		return missing
	case kindService:
		key := func(v api.ServiceView) (string, string) { return v.Service.Namespace, v.Service.Name }
		r.Services = sortByKey(filterNamespace(r.Services, namespace, key), key)
		var missing []error
		r.Services, missing = pick(r.Services, names, res, exactName(key))
		return missing
	case kindJob, kindCronJob:
		return selectBatch(r, names, namespace)
	case kindSecret:
		return selectSecrets(r, names, namespace)
	case kindNode:
		key := func(v api.NodeView) (string, string) { return "", v.Name }
		r.Nodes = sortByKey(r.Nodes, key)
		var missing []error
		r.Nodes, missing = pick(r.Nodes, names, res, exactName(key))
		return missing
	}
	var missing []error
	r.Commits, missing = pick(r.Commits, names, res, commitMatch)
	return missing
}

func filterNamespace[T any](items []T, namespace string, key func(T) (string, string)) []T {
	if namespace == "" {
		return items
	}
	return slices.DeleteFunc(slices.Clone(items), func(v T) bool {
		ns, _ := key(v)
		return ns != namespace
	})
}

func sortByKey[T any](items []T, key func(T) (string, string)) []T {
	slices.SortStableFunc(items, func(a, b T) int {
		an, aname := key(a)
		bn, bname := key(b)
		if c := strings.Compare(an, bn); c != 0 {
			return c
		}
		return strings.Compare(aname, bname)
	})
	return items
}

// pick returns, for each name, the items match selects; no names keeps
// all. A name matching nothing yields a *NotFoundError; match may return an
// error of its own (an ambiguous SHA prefix).
func pick[T any](items []T, names []string, resource string, match func([]T, string) ([]T, error)) ([]T, []error) {
	if len(names) == 0 {
		return items, nil
	}
	var out []T
	var errs []error
	for _, n := range names {
		found, err := match(items, n)
		switch {
		case err != nil:
			errs = append(errs, err)
		case len(found) == 0:
			errs = append(errs, &NotFoundError{Resource: resource, Name: n})
		default:
			out = append(out, found...)
		}
	}
	return out, errs
}

func exactName[T any](key func(T) (string, string)) func([]T, string) ([]T, error) {
	return func(items []T, name string) ([]T, error) {
		var out []T
		for _, v := range items {
			if _, n := key(v); n == name {
				out = append(out, v)
			}
		}
		return out, nil
	}
}

// minSHAPrefix is the shortest commit prefix `moor get commit` accepts.
const minSHAPrefix = 4

// commitMatch finds a commit by full SHA or unique prefix.
func commitMatch(commits []api.CommitView, name string) ([]api.CommitView, error) {
	var out []api.CommitView
	for _, c := range commits {
		if c.SHA == name {
			return []api.CommitView{c}, nil
		}
		if len(name) >= minSHAPrefix && strings.HasPrefix(c.SHA, strings.ToLower(name)) {
			out = append(out, c)
		}
	}
	if len(out) > 1 {
		return nil, fmt.Errorf("commit prefix %q is ambiguous: it matches %d commits; give more characters", name, len(out))
	}
	return out, nil
}
