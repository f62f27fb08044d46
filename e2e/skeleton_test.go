package e2e

import (
	"fmt"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/nodeagent"
)

func deployment(image, args string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: %d
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: main
        image: %s
        command: ["sh", "-c"]
        args: [%q]
`, replicas, image, args)
}

// running returns the running containers of Deployment web, by pod name.
func running(cs []nodeagent.ContainerInfo) map[string]nodeagent.ContainerInfo {
	out := map[string]nodeagent.ContainerInfo{}
	for _, c := range cs {
		if c.State == nodeagent.StateRunning && strings.HasPrefix(c.Labels["moor.dev/pod-name"], "web-") {
			out[c.Labels["moor.dev/pod-name"]] = c
		}
	}
	return out
}

func names(m map[string]nodeagent.ContainerInfo) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func podsRunning(pods []corev1.Pod, commit string, n int) error {
	ready := 0
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning {
			ready++
		}
	}
	if ready != n || len(pods) != n {
		return fmt.Errorf("%d pods, %d running, want %d", len(pods), ready, n)
	}
	return nil
}

// TestWalkingSkeleton drives the whole data path: git push → moor sync →
// planner → HTTPS long-poll → agent → containerd, and back via status.
func TestWalkingSkeleton(t *testing.T) {
	e := newEnv(t)
	img1, img2 := e.image("1"), e.image("2")

	c1 := e.push("web v1", map[string]string{"web.yaml": deployment(img1, "echo v1; exec sleep 3600", 2)})
	e.startServer()
	agent := e.startAgent("node-a")

	// Push a Deployment with 2 replicas → 2 containers running.
	out := e.mustCLI("sync")
	if !strings.Contains(out, c1[:7]) {
		t.Fatalf("sync output %q does not name commit %s", out, c1[:7])
	}
	e.eventually(60*time.Second, "2 pods run", func() error {
		if err := podsRunning(e.pods(), c1, 2); err != nil {
			return err
		}
		if got := len(running(e.containers())); got != 2 {
			return fmt.Errorf("%d containers running", got)
		}
		return nil
	})
	before := running(e.containers())

	// Push new args and image → old containers replaced.
	c2 := e.push("web v2", map[string]string{"web.yaml": deployment(img2, "echo v2; exec sleep 3600", 2)})
	e.mustCLI("sync")
	e.eventually(60*time.Second, "pods replaced", func() error {
		now := running(e.containers())
		if len(now) != 2 {
			return fmt.Errorf("%d running: %v", len(now), names(now))
		}
		for name, c := range now {
			if _, old := before[name]; old || c.Image != img2 {
				return fmt.Errorf("pod %s (image %s) not replaced yet", name, c.Image)
			}
		}
		if len(e.containers()) != 2 {
			return fmt.Errorf("old containers not removed: %d containers", len(e.containers()))
		}
		return podsRunning(e.pods(), c2, 2)
	})
	v2 := running(e.containers())

	// Push an invalid manifest → rejected with a visible error; pods untouched.
	bad := e.push("broken", map[string]string{"bad.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers:\n  - name: x\n    image: y\n    livenessProbe: {grpc: {port: 9000}}\n"})
	if out, err := e.cli("sync"); err == nil {
		t.Fatalf("sync of an invalid commit succeeded: %s", out)
	}
	commits := e.mustCLI("get", "commits", "-o", "wide")
	if !strings.Contains(commits, bad[:7]) || !strings.Contains(commits, "Rejected") || !strings.Contains(commits, "bad.yaml") {
		t.Fatalf("get commits does not show the rejected commit and its error:\n%s", commits)
	}
	time.Sleep(3 * time.Second)
	if got := running(e.containers()); fmt.Sprint(names(got)) != fmt.Sprint(names(v2)) {
		t.Fatalf("invalid commit disturbed running pods: %v, want %v", names(got), names(v2))
	}
	e.push("fix", map[string]string{"bad.yaml": ""})
	e.mustCLI("sync")

	// Kill a container by hand → restarted.
	victim := v2[names(v2)[0]]
	if err := syscall.Kill(int(victim.Pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.eventually(60*time.Second, "killed container restarted", func() error {
		c, ok := running(e.containers())[victim.Labels["moor.dev/pod-name"]]
		if !ok || c.Pid == victim.Pid {
			return fmt.Errorf("not restarted yet")
		}
		for _, p := range e.pods() {
			if p.Name == victim.Labels["moor.dev/pod-name"] {
				if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].RestartCount < 1 {
					return fmt.Errorf("restart count not reported: %+v", p.Status.ContainerStatuses)
				}
			}
		}
		return nil
	})
	steady := running(e.containers())

	// Restart the agent → running containers are not restarted.
	agent.stop()
	agent = e.startAgent("node-a")
	time.Sleep(5 * time.Second)
	e.eventually(30*time.Second, "agent reports again", func() error { return podsRunning(e.pods(), "", 2) })
	for name, c := range running(e.containers()) {
		if steady[name].Pid != c.Pid {
			t.Fatalf("agent restart restarted pod %s (pid %d → %d)", name, steady[name].Pid, c.Pid)
		}
	}

	// Delete the manifest → containers removed.
	e.push("remove web", map[string]string{"web.yaml": ""})
	e.mustCLI("sync")
	e.eventually(60*time.Second, "containers removed", func() error {
		if n := len(e.containers()); n != 0 {
			return fmt.Errorf("%d containers left", n)
		}
		if n := len(e.pods()); n != 0 {
			return fmt.Errorf("%d pods listed", n)
		}
		return nil
	})
	_ = agent
}
