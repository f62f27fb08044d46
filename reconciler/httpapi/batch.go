package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

// BatchAdmin answers the CLI about Jobs and CronJobs and runs a CronJob's
// template by hand.
type BatchAdmin interface {
	Jobs(ctx context.Context) ([]api.JobView, error)
	CronJobs(ctx context.Context) ([]api.CronJobView, error)
	CreateJob(ctx context.Context, req api.CreateJobRequest) (api.JobView, error)
}

// batchRoutes are the admin endpoints of Jobs and CronJobs.
func (h *Handler) batchRoutes() []route {
	return []route{
		{"GET " + api.PathJobs, h.admin(h.batchList(func(b BatchAdmin) handlerFunc { return list(b.Jobs) }))},
		{"GET " + api.PathCronJobs, h.admin(h.batchList(func(b BatchAdmin) handlerFunc { return list(b.CronJobs) }))},
		{"POST " + api.PathCreateJob, h.admin(h.batchList(func(b BatchAdmin) handlerFunc { return h.createJob(b) }))},
	}
}

// batchList serves fn of the configured BatchAdmin, or 501 without one.
func (h *Handler) batchList(fn func(BatchAdmin) handlerFunc) handlerFunc {
	if h.cfg.Batch == nil {
		return func(http.ResponseWriter, *http.Request) error {
			return fmt.Errorf("%w: this server does not serve Jobs and CronJobs", errdefs.ErrNotImplemented)
		}
	}
	return fn(h.cfg.Batch)
}

func (h *Handler) createJob(b BatchAdmin) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req api.CreateJobRequest
		body, done := h.body(w, r)
		err := decodeJSON(body, &req)
		done()
		if err != nil {
			return fmt.Errorf("create job: %w", err)
		}
		if req.FromCronJob == "" {
			return fmt.Errorf("create job: %w: fromCronJob is empty; name the CronJob whose template to run", errdefs.ErrInvalidArgument)
		}
		v, err := b.CreateJob(r.Context(), req)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, v)
	}
}
