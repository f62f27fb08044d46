package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
)

// Jobs lists every Job with the status the server computed.
func (c *Client) Jobs(ctx context.Context) ([]api.JobView, error) {
	var v []api.JobView
	return v, c.do(ctx, http.MethodGet, api.PathJobs, &v)
}

// CronJobs lists every CronJob with its status.
func (c *Client) CronJobs(ctx context.Context) ([]api.CronJobView, error) {
	var v []api.CronJobView
	return v, c.do(ctx, http.MethodGet, api.PathCronJobs, &v)
}

// CreateJob asks the server to run a CronJob's job template now.
func (c *Client) CreateJob(ctx context.Context, req api.CreateJobRequest) (api.JobView, error) {
	var v api.JobView
	return v, c.post(ctx, api.PathCreateJob, req, &v)
}

// post sends in as a JSON body and decodes a JSON answer into out.
func (c *Client) post(ctx context.Context, path string, in, out any) error {
	u := c.base.JoinPath(path)
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("POST %s: encode request: %w", u, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w%s", u, err, connectHint(err, c.base.Host))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("POST %s: read response: %w", u, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("POST %s: decode response: %w", u, err)
	}
	return nil
}

func jobObject(v api.JobView) any {
	j := v.Job
	j.TypeMeta = metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}
	return &j
}

func cronJobObject(v api.CronJobView) any {
	c := v.CronJob
	c.TypeMeta = metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"}
	return &c
}

// fetchBatch lists Jobs or CronJobs into r.
func fetchBatch(ctx context.Context, rd viewReader, r *result) (err error) {
	if r.Kind == kindJob {
		r.Jobs, err = rd.Jobs(ctx)
	} else {
		r.CronJobs, err = rd.CronJobs(ctx)
	}
	return err
}

// selectBatch is selectResult for Jobs and CronJobs.
func selectBatch(r *result, names []string, namespace string) []error {
	res := kinds[r.Kind].Resource
	var missing []error
	if r.Kind == kindJob {
		key := func(v api.JobView) (string, string) { return v.Job.Namespace, v.Job.Name }
		r.Jobs = sortByKey(filterNamespace(r.Jobs, namespace, key), key)
		r.Jobs, missing = pick(r.Jobs, names, res, exactName(key))
		return missing
	}
	key := func(v api.CronJobView) (string, string) { return v.CronJob.Namespace, v.CronJob.Name }
	r.CronJobs = sortByKey(filterNamespace(r.CronJobs, namespace, key), key)
	r.CronJobs, missing = pick(r.CronJobs, names, res, exactName(key))
	return missing
}

// batchTable renders Jobs or CronJobs.
func (r *result) batchTable(o tableOptions) table {
	if r.Kind == kindJob {
		return jobTable(r.Jobs, o)
	}
	return cronJobTable(r.CronJobs, o)
}

func (r *result) batchObjects() []any {
	return append(mapTo(r.Jobs, jobObject), mapTo(r.CronJobs, cronJobObject)...)
}

func (r *result) batchNames(prefix string) []string {
	return append(mapTo(r.Jobs, func(v api.JobView) string { return prefix + v.Job.Name }),
		mapTo(r.CronJobs, func(v api.CronJobView) string { return prefix + v.CronJob.Name })...)
}

// jobCreator is what `moor create job` needs of the server.
type jobCreator interface {
	CreateJob(ctx context.Context, req api.CreateJobRequest) (api.JobView, error)
}

var _ jobCreator = (*Client)(nil)

// defaultCreateTimeout bounds `moor create job`, which waits for a plan.
const defaultCreateTimeout = 30 * time.Second

// NewCreateCommand returns `moor create` with its one subcommand, `job`.
func NewCreateCommand(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a resource the server runs outside Git (a Job from a CronJob)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newCreateJobCommand(s, connectAs[jobCreator]))
	return cmd
}

func newCreateJobCommand(s Streams, connect func(Options) (jobCreator, string, error)) *cobra.Command {
	var from, output string
	cmd := &cobra.Command{
		Use:   "job [NAME] --from=cronjob/CRONJOB",
		Short: "Run a CronJob's job template now",
		Long: "Create a Job from a CronJob's job template and run it now, like kubectl create job --from.\n" +
			"Without NAME the server names it <cronjob>-manual-<unix seconds>. The Job is not in Git: it runs once and stays listed until its CronJob's history limits drop it.",
		Example:      "  moor create job nightly-now --from=cronjob/nightly\n  moor create job --from=cj/report -n ops",
		Args:         cobra.MaximumNArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetErrPrefix("")
			req, err := createJobRequest(args, from, output)
			if err != nil {
				return err
			}
			o, err := optionsFrom(cmd)
			if err != nil {
				return err
			}
			if o.AllNamespaces {
				return fmt.Errorf("-A does not apply to create job: pass -n NAMESPACE")
			}
			c, ns, err := connect(o)
			if err != nil {
				return err
			}
			req.Namespace = ns
			ctx, cancel := context.WithTimeout(cmd.Context(), timeoutOr(o.Timeout, defaultCreateTimeout))
			defer cancel()
			v, err := c.CreateJob(ctx, req)
			if err != nil {
				return reportError(cmd, err)
			}
			switch output {
			case outputJSON, outputYAML:
				return printObjects(s.Out, []any{jobObject(v)}, true, output)
			case outputName:
				_, err = fmt.Fprintf(s.Out, "%s/%s\n", kinds[kindJob].Prefix, v.Job.Name)
			default:
				_, err = fmt.Fprintf(s.Out, "%s/%s created\n", kinds[kindJob].Prefix, v.Job.Name)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the CronJob whose job template to run: cronjob/NAME (required)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json, yaml or name")
	return cmd
}

// createJobRequest checks the arguments of `moor create job`; the
// namespace is filled in later.
func createJobRequest(args []string, from, output string) (api.CreateJobRequest, error) {
	switch output {
	case outputTable, outputJSON, outputYAML, outputName:
	default:
		return api.CreateJobRequest{}, fmt.Errorf("unknown output format %q: want json, yaml or name", output)
	}
	typ, name, ok := strings.Cut(from, "/")
	if !ok || name == "" {
		return api.CreateJobRequest{}, fmt.Errorf("--from=%q: want cronjob/NAME", from)
	}
	if k, err := parseKind(typ); err != nil || k != kindCronJob {
		return api.CreateJobRequest{}, fmt.Errorf("--from=%q: a Job can only be created from a cronjob: want cronjob/NAME", from)
	}
	req := api.CreateJobRequest{FromCronJob: name}
	if len(args) == 1 {
		req.Name = args[0]
	}
	return req, nil
}
