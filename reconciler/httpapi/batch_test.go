package httpapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
)

type fakeBatch struct{ created []api.CreateJobRequest }

func (f *fakeBatch) Jobs(context.Context) ([]api.JobView, error) {
	return []api.JobView{{Job: batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "once"}}, Commit: "c1"}}, nil
}
func (f *fakeBatch) CronJobs(context.Context) ([]api.CronJobView, error) { return nil, nil }
func (f *fakeBatch) CreateJob(_ context.Context, req api.CreateJobRequest) (api.JobView, error) {
	switch req.FromCronJob {
	case "missing":
		return api.JobView{}, fmt.Errorf("cronjob %s: %w", req.FromCronJob, errdefs.ErrNotFound)
	case "taken":
		return api.JobView{}, fmt.Errorf("job: %w", errdefs.ErrAlreadyExists)
	}
	f.created = append(f.created, req)
	return api.JobView{Job: batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: req.Name, Namespace: req.Namespace}}}, nil
}

var _ BatchAdmin = (*fakeBatch)(nil)

// asSubject fakes the verified client certificate of r.
func asSubject(r *http.Request, org string) *http.Request {
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "someone", Organization: []string{org}}}
	r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}
	return r
}

func TestBatchEndpoints(t *testing.T) {
	fake := &fakeController{}
	batch := &fakeBatch{}
	h, err := New(Config{Hub: NewHub(), Joiner: fake, Status: fake, Admin: fake, Batch: batch})
	if err != nil {
		t.Fatal(err)
	}
	bare, err := New(Config{Hub: NewHub(), Joiner: fake, Status: fake, Admin: fake})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, path, body, org string
		handler                       http.Handler
		status                        int
		want                          string
	}{
		{"jobs", "GET", api.PathJobs, "", api.GroupAdmins, h, 200, `"name":"once"`},
		{"cronjobs empty", "GET", api.PathCronJobs, "", api.GroupAdmins, h, 200, `[]`},
		{"jobs need admin", "GET", api.PathJobs, "", api.GroupNodes, h, 403, "not in group"},
		{"create", "POST", api.PathCreateJob, `{"namespace":"default","name":"now","fromCronJob":"tick"}`, api.GroupAdmins, h, 201, `"name":"now"`},
		{"create needs admin", "POST", api.PathCreateJob, `{"fromCronJob":"tick"}`, api.GroupNodes, h, 403, "not in group"},
		{"create unknown cronjob", "POST", api.PathCreateJob, `{"fromCronJob":"missing"}`, api.GroupAdmins, h, 404, "not found"},
		{"create taken name", "POST", api.PathCreateJob, `{"fromCronJob":"taken"}`, api.GroupAdmins, h, 409, "already exists"},
		{"create without cronjob", "POST", api.PathCreateJob, `{"name":"x"}`, api.GroupAdmins, h, 400, "fromCronJob is empty"},
		{"create unknown field", "POST", api.PathCreateJob, `{"fromCronJob":"tick","extra":1}`, api.GroupAdmins, h, 400, "unknown field"},
		{"without batch", "GET", api.PathJobs, "", api.GroupAdmins, bare, 501, "does not serve Jobs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := asSubject(httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)), tc.org)
			w := httptest.NewRecorder()
			tc.handler.ServeHTTP(w, r)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.want) {
				t.Fatalf("%s %s: %d %s; want %d containing %q", tc.method, tc.path, w.Code, w.Body, tc.status, tc.want)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Errorf("body is not JSON: %s", w.Body)
			}
		})
	}
	if len(batch.created) != 1 || batch.created[0].Name != "now" {
		t.Errorf("created = %+v, want the one valid request", batch.created)
	}
}
