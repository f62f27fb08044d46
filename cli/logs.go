package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

// defaultContainerAnnotation names a pod's default container, as kubectl
// reads it.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// logsClient is what `moor logs` needs of the server.
type logsClient interface {
	Pods(ctx context.Context) ([]api.PodView, error)
	Deployments(ctx context.Context) ([]api.DeploymentView, error)
	Jobs(ctx context.Context) ([]api.JobView, error)
	Logs(ctx context.Context, req api.LogRequest, w io.Writer) error
}

var _ logsClient = (*Client)(nil)

// Logs streams the log req names into w as the server relays it from the
// pod's node. It returns when the log ends (with -f, when the container
// has exited) or ctx ends; a stream cut off midway is an error.
func (c *Client) Logs(ctx context.Context, req api.LogRequest, w io.Writer) error {
	u := c.base.JoinPath(api.PathLogs)
	u.RawQuery = req.Query().Encode()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return fmt.Errorf("GET %s: %w%s", u, err, connectHint(err, c.base.Host))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		return decodeError(resp.StatusCode, body)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("the log stream of pod %s broke off: %w", req.Pod, err)
	}
	return nil
}

// logsOptions are the flags of `moor logs`.
type logsOptions struct {
	Container  string
	Follow     bool
	Tail       int64
	Previous   bool
	Timestamps bool
}

// NewLogsCommand returns `moor logs`.
func NewLogsCommand(s Streams) *cobra.Command {
	return newLogsCommand(s, connectAs[logsClient])
}

func newLogsCommand(s Streams, connect func(Options) (logsClient, string, error)) *cobra.Command {
	var lo logsOptions
	cmd := &cobra.Command{
		Use:   "logs [-f] [-p] (POD | pod/NAME | job/NAME | deployment/NAME) [-c CONTAINER]",
		Short: "Print the logs of a container in a pod",
		Long: "Print the logs of a container, like kubectl logs. The server relays them from the node the pod runs on.\n" +
			"job/NAME reads the Job's newest pod, deployment/NAME its first running pod. A pod with several containers needs -c,\n" +
			"unless it names a default one in the kubectl.kubernetes.io/default-container annotation.",
		Example: "  moor logs web-7d9f-abcde\n  moor logs job/migrate\n  moor logs -f deployment/web --tail 20\n" +
			"  moor logs web-7d9f-abcde -c sidecar --previous",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("want one POD or TYPE/NAME, got %d arguments: moor %s", len(args), cmd.Use)
			}
			return nil
		},
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			o, target, err := startPodVerb(cmd, args[0], logsVerb)
			if err != nil {
				return err
			}
			if lo.Tail < -1 {
				return fmt.Errorf("--tail=%d: want a number of lines, or -1 for all", lo.Tail)
			}
			c, ns, err := connect(o)
			if err != nil {
				return err
			}
			return reportError(cmd, runLogs(cmd.Context(), c, o, ns, target, lo, s))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&lo.Container, "container", "c", "", "the container to print the logs of (default: the pod's only or default container)")
	f.BoolVarP(&lo.Follow, "follow", "f", false, "stream the logs until the container exits")
	f.Int64Var(&lo.Tail, "tail", -1, "lines of recent log to show; -1 shows all")
	f.BoolVarP(&lo.Previous, "previous", "p", false, "print the logs of the container's previous instance, before its last restart")
	f.BoolVar(&lo.Timestamps, "timestamps", false,
		"prefix each line with a timestamp (RFC 3339): the time the node agent read it, as moor's log files record no write times")
	return cmd
}

// logsVerb is how `moor logs` names its targets.
var logsVerb = podVerb{
	name:     "logs",
	examples: "pod/web-7d9f-abcde, job/migrate or deployment/web",
	refuse:   "cannot print the logs of a %s: name a pod, job/NAME or deployment/NAME",
}

// runLogs resolves the pod and container and streams the log to s.Out.
func runLogs(ctx context.Context, c logsClient, o Options, ns string, t podTarget, lo logsOptions, s Streams) error {
	sel, err := findLogsPod(ctx, c, o, ns, t)
	if err != nil {
		return err
	}
	if sel.Note != "" {
		fmt.Fprintln(s.ErrOut, sel.Note)
	}
	container, err := pickLogsContainer(sel.Pod, lo.Container)
	if err != nil {
		return err
	}
	req := api.LogRequest{Namespace: ns, Pod: sel.Pod.Name, Container: container,
		Follow: lo.Follow, Previous: lo.Previous, Timestamps: lo.Timestamps}
	if lo.Tail >= 0 {
		req.TailLines = &lo.Tail
	}
	ctx, cancel := streamContext(ctx, o)
	defer cancel()
	err = c.Logs(ctx, req, s.Out)
	if errors.Is(err, context.Canceled) {
		return nil // interrupted (Ctrl-C) while following
	}
	return err
}

// logsPod is the pod `moor logs` reads, and what to tell the user about
// the choice.
type logsPod struct {
	Pod  *corev1.Pod
	Note string
}

// findLogsPod fetches what t needs and selects the pod, within
// --request-timeout (default defaultGetTimeout).
func findLogsPod(ctx context.Context, c logsClient, o Options, ns string, t podTarget) (logsPod, error) {
	ctx, cancel := context.WithTimeout(ctx, timeoutOr(o.Timeout, defaultGetTimeout))
	defer cancel()
	pods, err := c.Pods(ctx)
	if err != nil {
		return logsPod{}, fetchError(err, kindPod)
	}
	if sel := selectLogsPod(logsSelectInput{Pods: pods, Namespace: ns, Target: t}); sel.Pod != nil {
		return sel, nil
	}
	// No pod: say whether the Job or Deployment exists at all.
	exists := false
	switch t.Kind {
	case kindJob:
		jobs, err := c.Jobs(ctx)
		if err != nil {
			return logsPod{}, fetchError(err, kindJob)
		}
		exists = slices.ContainsFunc(jobs, func(v api.JobView) bool { return v.Job.Namespace == ns && v.Job.Name == t.Name })
	case kindDeployment:
		deps, err := c.Deployments(ctx)
		if err != nil {
			return logsPod{}, fetchError(err, kindDeployment)
		}
		exists = slices.ContainsFunc(deps, func(v api.DeploymentView) bool {
			return v.Deployment.Namespace == ns && v.Deployment.Name == t.Name
		})
	}
	return logsPod{}, noLogsPod(t, exists)
}

// fetchError keeps the server's own words, kubectl-style.
func fetchError(err error, k kind) error {
	var ae *APIError
	if errors.As(err, &ae) {
		return err
	}
	return fmt.Errorf("list %s: %w", kinds[k].Resource, err)
}

// logsSelectInput is what selectLogsPod looks at.
type logsSelectInput struct {
	Pods      []api.PodView
	Namespace string
	Target    podTarget
}

// selectLogsPod picks the pod of a target: the named pod; a Job's newest
// pod (by start time, then name); a Deployment's first running pod (ready
// ones first, then by name), else its first pod. It is pure.
func selectLogsPod(in logsSelectInput) logsPod {
	var cands []*corev1.Pod
	for i := range in.Pods {
		p := &in.Pods[i].Pod
		if p.Namespace != in.Namespace {
			continue
		}
		switch in.Target.Kind {
		case kindPod:
			if p.Name == in.Target.Name {
				return logsPod{Pod: p}
			}
		case kindJob:
			if controlledBy(p, "Job", in.Target.Name) {
				cands = append(cands, p)
			}
		case kindDeployment:
			if controlledBy(p, "Deployment", in.Target.Name) {
				cands = append(cands, p)
			}
		}
	}
	if len(cands) == 0 {
		return logsPod{}
	}
	if in.Target.Kind == kindJob {
		slices.SortStableFunc(cands, func(a, b *corev1.Pod) int {
			if c := b.CreationTimestamp.Compare(a.CreationTimestamp.Time); c != 0 {
				return c
			}
			return strings.Compare(b.Name, a.Name)
		})
	} else {
		slices.SortStableFunc(cands, func(a, b *corev1.Pod) int {
			if c := logsRank(a) - logsRank(b); c != 0 {
				return c
			}
			return strings.Compare(a.Name, b.Name)
		})
	}
	sel := logsPod{Pod: cands[0]}
	if len(cands) > 1 {
		sel.Note = fmt.Sprintf("Found %d pods, using pod/%s", len(cands), cands[0].Name)
	}
	return sel
}

// noLogsPod is the error when t has no pod; exists says whether t's Job
// or Deployment exists.
func noLogsPod(t podTarget, exists bool) error {
	if t.Kind == kindPod || !exists {
		return &NotFoundError{Resource: kinds[t.Kind].Resource, Name: t.Name}
	}
	return fmt.Errorf("%s/%s has no pods yet", kinds[t.Kind].Prefix, t.Name)
}

// logsRank orders a Deployment's pods: running and ready, running, others.
func logsRank(p *corev1.Pod) int {
	if p.Status.Phase != corev1.PodRunning {
		return 2
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return 0
		}
	}
	return 1
}

// controlledBy reports whether p's controller is kind/name.
func controlledBy(p *corev1.Pod, kind, name string) bool {
	for _, o := range p.OwnerReferences {
		if o.Controller != nil && *o.Controller && o.Kind == kind && o.Name == name {
			return true
		}
	}
	return false
}

// pickLogsContainer returns the container to read: the one asked for,
// else the pod's only one, else its default one; it fails like kubectl
// when the pod has several and none is named. A named container the pod
// lacks is left for the node to refuse.
func pickLogsContainer(p *corev1.Pod, want string) (string, error) {
	if want != "" {
		return want, nil
	}
	var names, inits []string
	for _, c := range p.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range p.Spec.InitContainers {
		inits = append(inits, c.Name)
	}
	if len(names) == 1 {
		return names[0], nil
	}
	if d := p.Annotations[defaultContainerAnnotation]; d != "" && slices.Contains(names, d) {
		return d, nil
	}
	msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: [%s]", p.Name, strings.Join(names, " "))
	if len(inits) > 0 {
		msg += fmt.Sprintf(" or one of the init containers: [%s]", strings.Join(inits, " "))
	}
	return "", errors.New(msg)
}
