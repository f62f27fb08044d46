package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/moor-dev/moor/api"
)

// fakeLogs serves the logs fixtures; Logs prints the request it got, so
// the golden files show which pod and container were chosen.
type fakeLogs struct {
	pods    []api.PodView
	deps    []api.DeploymentView
	jobs    []api.JobView
	logsErr error
}

var _ logsClient = (*fakeLogs)(nil)

func (f *fakeLogs) Pods(context.Context) ([]api.PodView, error) { return f.pods, nil }
func (f *fakeLogs) Deployments(context.Context) ([]api.DeploymentView, error) {
	return f.deps, nil
}
func (f *fakeLogs) Jobs(context.Context) ([]api.JobView, error) { return f.jobs, nil }
func (f *fakeLogs) Logs(_ context.Context, req api.LogRequest, w io.Writer) error {
	if f.logsErr != nil {
		return f.logsErr
	}
	tail := "all"
	if req.TailLines != nil {
		tail = fmt.Sprint(*req.TailLines)
	}
	_, err := fmt.Fprintf(w, "log of %s/%s container=%s follow=%t tail=%s previous=%t timestamps=%t\n",
		req.Namespace, req.Pod, req.Container, req.Follow, tail, req.Previous, req.Timestamps)
	return err
}

func owned(p corev1.Pod, kind, name string) corev1.Pod {
	p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: name, Controller: ptr.To(true)}}
	return p
}

func logsFixtures() *fakeLogs {
	// Deployment web: a crashing pod sorts first by name, a ready one runs.
	crash := owned(pod("default", "web-7d9f-aaaaa", "node-2", "web"), "Deployment", "web")
	crash.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "web",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}}
	ready := owned(pod("default", "web-7d9f-bbbbb", "node-1", "web"), "Deployment", "web")
	ready.Status = corev1.PodStatus{Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	// Job migrate: a failed first attempt and its newer retry.
	failed := owned(pod("default", "migrate-0-xxxxx", "node-1", "main"), "Job", "migrate")
	failed.CreationTimestamp = metav1.NewTime(ago(10 * time.Minute))
	failed.Status.Phase = corev1.PodFailed
	retry := owned(pod("default", "migrate-0-yyyyy", "node-2", "main"), "Job", "migrate")
	retry.CreationTimestamp = metav1.NewTime(ago(time.Minute))
	retry.Status.Phase = corev1.PodSucceeded
	// A pod with two containers, one with a default container, one in
	// another namespace.
	multi := pod("default", "api-0", "node-1", "api", "proxy")
	multi.Spec.InitContainers = []corev1.Container{{Name: "schema"}}
	dflt := pod("default", "cache-0", "node-1", "redis", "exporter")
	dflt.Annotations = map[string]string{defaultContainerAnnotation: "redis"}
	ops := pod("ops", "tool", "node-3", "tool")
	pv := func(p corev1.Pod) api.PodView { return api.PodView{Pod: p} }
	return &fakeLogs{
		pods: []api.PodView{pv(crash), pv(ready), pv(failed), pv(retry), pv(multi), pv(dflt), pv(ops)},
		deps: []api.DeploymentView{
			{Deployment: appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}},
			{Deployment: appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "idle"}}},
		},
		jobs: []api.JobView{{Job: batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "migrate"}}},
			{Job: batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "later"}}}},
	}
}

func fakeLogsCommand(f *fakeLogs) func(Streams) *cobra.Command {
	return func(s Streams) *cobra.Command {
		return newLogsCommand(s, func(o Options) (logsClient, string, error) {
			return f, effectiveNamespace(o, ""), nil
		})
	}
}

func TestLogsGolden(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr bool
	}{
		{"pod", []string{"logs", "web-7d9f-aaaaa"}, false},
		{"pod-type-flags", []string{"logs", "po/web-7d9f-aaaaa", "-f", "--tail", "20", "-p", "--timestamps"}, false},
		{"namespace", []string{"logs", "tool", "-n", "ops", "--tail=0"}, false},
		{"job", []string{"logs", "job/migrate"}, false},
		{"deployment", []string{"logs", "deploy/web", "-c", "web"}, false},
		{"several-containers", []string{"logs", "api-0"}, true},
		{"container-named", []string{"logs", "api-0", "-c", "proxy"}, false},
		{"default-container", []string{"logs", "cache-0"}, false},
		{"pod-not-found", []string{"logs", "nope"}, true},
		{"job-not-found", []string{"logs", "job/nope"}, true},
		{"job-without-pods", []string{"logs", "job/later"}, true},
		{"deployment-without-pods", []string{"logs", "deployment/idle"}, true},
		{"wrong-type", []string{"logs", "svc/web"}, true},
		{"all-namespaces", []string{"logs", "web-7d9f-aaaaa", "-A"}, true},
		{"no-args", []string{"logs"}, true},
		{"bad-tail", []string{"logs", "web-7d9f-aaaaa", "--tail", "-2"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runRoot(t, fakeLogsCommand(logsFixtures()), tc.args...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v\n%s", err, tc.wantErr, got)
			}
			checkGolden(t, "logs-"+tc.name, []byte(got))
		})
	}
}

func TestLogsServerError(t *testing.T) {
	f := logsFixtures()
	f.logsErr = &APIError{StatusCode: 504, Message: `node "node-2" did not pick up the request within 10s: is its agent running?`}
	got, err := runRoot(t, fakeLogsCommand(f), "logs", "web-7d9f-aaaaa")
	if err == nil {
		t.Fatal("want an error")
	}
	want := "--- stderr\nError from server (Timeout): node \"node-2\" did not pick up the request within 10s: is its agent running?\n"
	if !strings.Contains(got, want) {
		t.Fatalf("got\n%s\nwant %q", got, want)
	}
	// Interrupting a follow is no error.
	f.logsErr = context.Canceled
	if _, err := runRoot(t, fakeLogsCommand(f), "logs", "-f", "web-7d9f-aaaaa"); err != nil {
		t.Fatalf("interrupted follow: %v", err)
	}
}

// Client.Logs sends the request as the query and streams the body; error
// answers become *APIError and a cut-off stream an error.
func TestClientLogs(t *testing.T) {
	var gotQuery url.Values
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.Query()
		switch r.URL.Query().Get("pod") {
		case "web":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "a\n")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b\n")
		case "broken":
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "partial")
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"pods \"ghost\" not found in namespace \"default\""}`)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	c := &Client{base: u, http: srv.Client()}
	five := int64(5)
	var out strings.Builder
	req := api.LogRequest{Namespace: "default", Pod: "web", Container: "c", Follow: true, TailLines: &five}
	if err := c.Logs(context.Background(), req, &out); err != nil || out.String() != "a\nb\n" {
		t.Fatalf("logs: %q %v", out.String(), err)
	}
	if back, err := api.ParseLogRequest(gotQuery); err != nil || back.Container != "c" || !back.Follow || *back.TailLines != 5 {
		t.Fatalf("query %v: %+v %v", gotQuery, back, err)
	}
	err := c.Logs(context.Background(), api.LogRequest{Namespace: "default", Pod: "ghost"}, io.Discard)
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 404 || !strings.Contains(ae.Message, `pods "ghost" not found`) {
		t.Fatalf("error answer: %v", err)
	}
	if err := c.Logs(context.Background(), api.LogRequest{Namespace: "default", Pod: "broken"}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "broke off") {
		t.Fatalf("cut-off stream: %v", err)
	}
}
