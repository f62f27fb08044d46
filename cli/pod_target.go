package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// This file is what the verbs that act on one pod (`moor logs`, `moor
// exec`) share: their argument, POD or TYPE/NAME for pods, jobs and
// deployments, and the start of their run. The pod a target names is
// selected by findLogsPod (logs.go).

// podTarget is what a pod verb was asked for: a pod, or the pod of a Job
// or Deployment.
type podTarget struct {
	Kind kind // kindPod, kindJob or kindDeployment
	Name string
}

// podVerb is what differs between the pod verbs' arguments.
type podVerb struct {
	// name is the verb, as in "-A does not apply to logs".
	name string
	// examples are targets it takes, for an argument without a name.
	examples string
	// refuse is the error for a kind it cannot act on; %s is the kind's
	// prefix.
	refuse string
}

// startPodVerb begins a pod verb's RunE: it reads the global options and
// parses the verb's one argument.
func startPodVerb(cmd *cobra.Command, arg string, v podVerb) (Options, podTarget, error) {
	cmd.SetErrPrefix("") // inherit, unless reportErrors sets one
	o, err := optionsFrom(cmd)
	if err != nil {
		return Options{}, podTarget{}, err
	}
	if o.AllNamespaces {
		return Options{}, podTarget{}, fmt.Errorf("-A does not apply to %s: pass -n NAMESPACE", v.name)
	}
	t, err := parsePodTarget(arg, v)
	if err != nil {
		return Options{}, podTarget{}, err
	}
	return o, t, nil
}

// parsePodTarget accepts NAME (a pod) and TYPE/NAME for pods, jobs and
// deployments.
func parsePodTarget(arg string, v podVerb) (podTarget, error) {
	typ, name, typed := strings.Cut(arg, "/")
	if !typed {
		typ, name = "pod", arg
	}
	if name == "" {
		return podTarget{}, fmt.Errorf("%q: want POD or TYPE/NAME, e.g. %s", arg, v.examples)
	}
	k, err := parseKind(typ)
	if err != nil {
		return podTarget{}, err
	}
	switch k {
	case kindPod, kindJob, kindDeployment:
		return podTarget{Kind: k, Name: name}, nil
	}
	return podTarget{}, fmt.Errorf(v.refuse, kinds[k].Prefix)
}

// streamContext bounds a pod verb's stream by --request-timeout when it
// is set; otherwise the stream lasts as long as it runs.
func streamContext(ctx context.Context, o Options) (context.Context, context.CancelFunc) {
	if o.Timeout > 0 {
		return context.WithTimeout(ctx, o.Timeout)
	}
	return ctx, func() {}
}
