package fakeruntime

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/nodeagent"
)

func TestPullImageWithCredentials(t *testing.T) {
	r := New()
	cred := nodeagent.RegistryCredential{Host: "reg.local:5000", Username: "ci", Password: "hunter2"}
	if err := r.PullImageWithCredentials(context.Background(), "reg.local:5000/app:1", cred); err != nil {
		t.Fatal(err)
	}
	want := []string{"auth reg.local:5000 ci", "pull reg.local:5000/app:1"}
	if got := r.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	if strings.Contains(strings.Join(r.Calls(), " "), cred.Password) {
		t.Error("calls record the password")
	}
	if !slices.Contains(r.Images(), "reg.local:5000/app:1") {
		t.Errorf("image not present after pull: %v", r.Images())
	}
	r.FailPull("reg.local:5000/app:2", errdefs.ErrUnauthenticated)
	if err := r.PullImageWithCredentials(context.Background(), "reg.local:5000/app:2", cred); !errors.Is(err, errdefs.ErrUnauthenticated) {
		t.Errorf("scripted failure: %v", err)
	}
}
