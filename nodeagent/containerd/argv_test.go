package containerd

import (
	"maps"
	"slices"
	"testing"

	"github.com/moor-dev/moor/nodeagent"
)

func TestResolveArgv(t *testing.T) {
	ep, cmd := []string{"/entry", "-v"}, []string{"serve", "--port=1"}
	tests := []struct {
		name          string
		command, args []string
		want          []string
	}{
		{name: "image defaults", want: []string{"/entry", "-v", "serve", "--port=1"}},
		{name: "args replace cmd", args: []string{"check"}, want: []string{"/entry", "-v", "check"}},
		{name: "command replaces entrypoint and drops cmd", command: []string{"sh"}, want: []string{"sh"}},
		{name: "command and args", command: []string{"sh", "-c"}, args: []string{"echo hi"}, want: []string{"sh", "-c", "echo hi"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ResolveArgv(ep, cmd, tc.command, tc.args); !slices.Equal(got, tc.want) {
				t.Errorf("ResolveArgv = %q, want %q", got, tc.want)
			}
		})
	}
	if got := ResolveArgv(nil, nil, nil, nil); len(got) != 0 {
		t.Errorf("empty image and spec: %q, want empty", got)
	}
}

func TestContainerLabelsRoundTrip(t *testing.T) {
	user := map[string]string{"moor.dev/pod": "ns/p", "x": "y"}
	all := containerLabels(nodeagent.ContainerSpec{ID: "c", Image: "img:1", LogPath: "/var/log/p.log", Labels: user})
	if all[labelStopSignal] != "15" || all[labelLogPath] != "/var/log/p.log" || all[labelImage] != "img:1" {
		t.Errorf("internal labels missing: %v", all)
	}
	if got := userLabels(all); !maps.Equal(got, user) {
		t.Errorf("userLabels = %v, want %v", got, user)
	}
}
