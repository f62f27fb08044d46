package nodeagent

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestExecTarget(t *testing.T) {
	uid := map[string]string{LabelPodUID: "u1"}
	t1 := logTarget{ID: "c1", PodUID: "u1", Container: "main"}
	for _, tc := range []struct {
		name   string
		t      logTarget
		actual []ContainerInfo
		want   string // "" for no error
	}{
		{"running", t1, []ContainerInfo{{ID: "c1", Labels: uid, State: StateRunning}}, ""},
		{"waiting", logTarget{ID: "c1", PodUID: "u1", Container: "main", Waiting: "ImagePullBackOff"}, nil,
			`container "main" in pod "web" is not running: it is waiting to start: ImagePullBackOff`},
		{"exited", t1, []ContainerInfo{{ID: "c1", Labels: uid, State: StateExited, ExitCode: 2}},
			`container "main" in pod "web" is not running: it exited with code 2`},
		{"older incarnation", t1, []ContainerInfo{{ID: "c1", Labels: map[string]string{LabelPodUID: "u0"}, State: StateRunning}},
			`container "main" in pod "web" is not running`},
		{"created", t1, []ContainerInfo{{ID: "c1", Labels: uid, State: StateCreated}},
			`container "main" in pod "web" is not running`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := execTarget(tc.t, tc.actual, "web")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errdefs.IsFailedPrecondition(err) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("%v, want FailedPrecondition %q", err, tc.want)
			}
		})
	}
}
