package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
)

// scriptedDeployments answers each Deployments call with the next rollout
// of its script, repeating the last one.
type scriptedDeployments struct {
	mu     sync.Mutex
	script []api.DeploymentRollout
	errs   []error // errs[i] is returned instead at call i when set
	calls  int
}

func (s *scriptedDeployments) Deployments(context.Context) ([]api.DeploymentView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.calls
	s.calls++
	if i < len(s.errs) && s.errs[i] != nil {
		return nil, s.errs[i]
	}
	if i >= len(s.script) {
		i = len(s.script) - 1
	}
	return []api.DeploymentView{
		{Deployment: appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "web"}}},
		{Deployment: appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}, Rollout: s.script[i]},
	}, nil
}

func TestRolloutStatus(t *testing.T) {
	waiting1 := api.DeploymentRollout{State: api.RolloutProgressing, Message: `Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...`}
	waiting2 := api.DeploymentRollout{State: api.RolloutProgressing, Message: `Waiting for deployment "web" rollout to finish: 2 out of 3 new replicas have been updated...`}
	done := api.DeploymentRollout{State: api.RolloutComplete, Message: `deployment "web" successfully rolled out`}
	failed := api.DeploymentRollout{State: api.RolloutFailed, Message: `error: deployment "web" exceeded its progress deadline`}
	tests := []struct {
		name    string
		script  []api.DeploymentRollout
		errs    []error
		watch   bool
		want    string
		wantErr error
	}{
		{name: "complete after progress, each message once", script: []api.DeploymentRollout{waiting1, waiting1, waiting2, done}, watch: true,
			want: waiting1.Message + "\n" + waiting2.Message + "\n" + done.Message + "\n"},
		{name: "failed", script: []api.DeploymentRollout{waiting1, failed}, watch: true,
			want: waiting1.Message + "\n" + failed.Message + "\n", wantErr: ErrRolloutFailed},
		{name: "no watch prints once", script: []api.DeploymentRollout{waiting1, done}, watch: false, want: waiting1.Message + "\n"},
		{name: "server errors are retried while watching", script: []api.DeploymentRollout{done, done}, errs: []error{errors.New("connection refused")}, watch: true,
			want: done.Message + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			c := &scriptedDeployments{script: tt.script, errs: tt.errs}
			err := rolloutStatus(context.Background(), c, "default", "web", tt.watch, time.Millisecond, time.Second, &out)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if out.String() != tt.want {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), tt.want)
			}
		})
	}
}

func TestRolloutStatusNotFoundAndTimeout(t *testing.T) {
	c := &scriptedDeployments{script: []api.DeploymentRollout{{State: api.RolloutProgressing, Message: "waiting"}}}
	var out bytes.Buffer
	var nf *NotFoundError
	if err := rolloutStatus(context.Background(), c, "default", "api", true, time.Millisecond, time.Second, &out); !errors.As(err, &nf) {
		t.Errorf("missing deployment: err = %v, want NotFoundError", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err := rolloutStatus(ctx, c, "default", "web", true, time.Millisecond, time.Second, &out)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("err = %v, want a timeout", err)
	}
}

func TestDeploymentArg(t *testing.T) {
	for arg, want := range map[string]string{"web": "web", "deployment/web": "web", "deploy/web": "web", "deployments.apps/web": "web"} {
		if got, err := deploymentArg(arg); err != nil || got != want {
			t.Errorf("deploymentArg(%q) = %q, %v; want %q", arg, got, err, want)
		}
	}
	for _, arg := range []string{"pod/web", "deployment/"} {
		if _, err := deploymentArg(arg); err == nil {
			t.Errorf("deploymentArg(%q) succeeded", arg)
		}
	}
}

func TestPrintRevisions(t *testing.T) {
	var out bytes.Buffer
	v := &api.DeploymentView{Rollout: api.DeploymentRollout{Revisions: []api.RevisionView{
		{Hash: "6d4cf56db6", Images: []string{"web:1"}, Replicas: 1, Ready: 1, Available: 1},
		{Hash: "7f9b8c5d44", Images: []string{"web:2", "sidecar:1"}, Replicas: 2, Ready: 1, Current: true},
	}}}
	if err := printRevisions(&out, v); err != nil {
		t.Fatal(err)
	}
	want := "REVISION     CURRENT   PODS   READY   AVAILABLE   IMAGES\n" +
		"6d4cf56db6             1      1       1           web:1\n" +
		"7f9b8c5d44   *         2      1       0           web:2,sidecar:1\n"
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}
