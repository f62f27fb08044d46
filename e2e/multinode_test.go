package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/internal/devenv/imagebuild"
	"github.com/moor-dev/moor/internal/devenv/registry"
	"github.com/moor-dev/moor/nodeagent"
)

// webDeployment serves each pod's own name on :8080, on nodes labelled
// role=web.
func webDeployment(image string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: %d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {role: web}
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: %s
        ports: [{name: http, containerPort: 8080}]
        command: ["/bin/sh", "-c"]
        args: ["mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"]
`, replicas, image)
}

const webService = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
`

// clientPod runs on node-a and asks the service by VIP (from the service
// environment variables) and by DNS name, logging one line per answer:
// "vip <pod>" / "dns <pod>", or "ERR". HTTP is spoken with nc: the wget of
// Debian's busybox-static crashes.
func clientPod(image string) string {
	script := `echo "env $WEB_SERVICE_HOST:$WEB_SERVICE_PORT $WEB_SERVICE_PORT_HTTP"
trap 'exit 0' TERM
get() { printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 1 "$1" "$2" 2>/dev/null | tail -n 1; }
while true; do
  echo "vip $(get $WEB_SERVICE_HOST $WEB_SERVICE_PORT)"
  echo "dns $(get web.default.svc.cluster.local 80)"
  sleep 0.2 & wait $!
done`
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default}
spec:
  nodeName: node-a
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    command: ["/bin/sh", "-c"]
    args: [%q]
`, image, script)
}

// TestMultiNode runs three nodes on this machine, each in its own network
// namespace with its own containerd and agent, joined to one server: a
// client pod on node A reaches a Service's pods on nodes B and C by VIP
// and by DNS name; scaling changes the endpoints; a killed endpoint leaves
// the rotation until it runs again.
func TestMultiNode(t *testing.T) {
	requireNetTools(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir, err := os.MkdirTemp("", "moor-mn-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &env{t: t, ctx: ctx, dir: dir, moor: moorBinary(t)}
	if e.reg, err = registry.Start(ctx, registry.Config{Dir: filepath.Join(dir, "registry")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.reg.Stop() })
	spec := imagebuild.DemoSpec(e.reg.Addr())
	if _, err := imagebuild.Push(ctx, spec); err != nil {
		t.Fatal(err)
	}
	image := spec.Ref()
	e.initRepo()
	e.push("service", map[string]string{"svc.yaml": webService})

	id := runID(t)
	br := hostBridge(t, id)
	nodes := map[string]*netNode{}
	for i, l := range []string{"a", "b", "c"} {
		n := addNode(t, id, br, l, 10+i)
		n.dir = filepath.Join(dir, "agent-"+l)
		n.startContainerd(t, ctx, filepath.Join(dir, l), e.reg.Addr())
		// The registry listens on the host's loopback, which the node's
		// agent cannot reach: pull from here into the node's containerd.
		if err := n.runtime.PullImage(ctx, image); err != nil {
			t.Fatalf("pull into %s: %v", n.name, err)
		}
		nodes[n.name] = n
	}

	e.startServerOn(hostIP, "--poll-interval", "1h")
	for _, n := range nodes {
		role := "web"
		if n.name == "node-a" {
			role = "client"
		}
		n.agent = e.startIn(n, "agent-"+n.name, "agent", "--server", e.srvURL,
			"--token-file", filepath.Join(e.srvDir, "token"), "--name", n.name, "--node-ip", n.ip,
			"--label", "role="+role, "--data-dir", n.dir, "--containerd", n.socket,
			"--runc-root", filepath.Join(n.dir, "runc"), "--cgroup-parent", "/"+n.netns, "--poll-wait", "5s")
	}

	t.Cleanup(func() {
		if d, err := time.ParseDuration(os.Getenv("MOOR_E2E_PAUSE_ON_FAILURE")); err == nil && t.Failed() {
			t.Logf("pausing %s for inspection (MOOR_E2E_PAUSE_ON_FAILURE)", d)
			time.Sleep(d)
		}
	})
	// Deploy once every node is ready, so the planner spreads the pods.
	e.eventually(60*time.Second, "3 nodes are ready", func() error {
		out := e.mustCLI("get", "nodes")
		if n := strings.Count(out, " Ready "); n != 3 {
			return fmt.Errorf("%d nodes ready:\n%s", n, out)
		}
		return nil
	})
	e.push("web", map[string]string{"web.yaml": webDeployment(image, 2)})
	e.mustCLI("sync")
	e.eventually(90*time.Second, "web pods run on node-b and node-c with pod IPs", func() error {
		return webPodsOn(e.pods(), nodes, "node-b", "node-c")
	})
	e.push("client", map[string]string{"client.yaml": clientPod(image)})
	e.mustCLI("sync")
	log := clientLog(e, nodes["node-a"])

	web := webPodNames(e.pods())
	e.eventually(60*time.Second, "the client reaches both web pods by VIP and by DNS name", func() error {
		return answeredBy(log.since(0), web, web)
	})
	if env := log.first("env "); !strings.HasPrefix(env, "env 10.") || !strings.HasSuffix(env, ":80 80") {
		t.Errorf("service environment of the client: %q, want env <vip>:80 80", env)
	}

	// Scale to 3: the new pod joins the rotation.
	e.push("scale 3", map[string]string{"web.yaml": webDeployment(image, 3)})
	e.mustCLI("sync")
	e.eventually(60*time.Second, "3 web pods run", func() error { return webPodsOn(e.pods(), nodes, "node-b", "node-c") })
	web3 := webPodNames(e.pods())
	if len(web3) != 3 {
		t.Fatalf("web pods after scaling to 3: %v", web3)
	}
	mark := log.offset()
	e.eventually(60*time.Second, "the client reaches all 3 web pods", func() error { return answeredBy(log.since(mark), web3, nil) })

	// Scale to 1: only the remaining pod answers.
	e.push("scale 1", map[string]string{"web.yaml": webDeployment(image, 1)})
	e.mustCLI("sync")
	var one []string
	e.eventually(60*time.Second, "1 web pod is left", func() error {
		one = webPodNames(e.pods())
		if len(one) != 1 {
			return fmt.Errorf("web pods: %v", one)
		}
		return nil
	})
	e.eventually(60*time.Second, "only the remaining pod answers", func() error { return onlyAnswer(log, one[0]) })

	// Back to 2, then kill one endpoint's container: it leaves the
	// rotation until it runs again.
	e.push("scale 2", map[string]string{"web.yaml": webDeployment(image, 2)})
	e.mustCLI("sync")
	e.eventually(60*time.Second, "2 web pods run", func() error { return webPodsOn(e.pods(), nodes, "node-b", "node-c") })
	web2 := webPodNames(e.pods())
	mark = log.offset()
	e.eventually(60*time.Second, "the client reaches both web pods", func() error { return answeredBy(log.since(mark), web2, nil) })
	victim, other := web2[0], web2[1]
	killWeb(t, nodes, victim)
	e.eventually(30*time.Second, "the killed pod leaves the rotation", func() error { return onlyAnswer(log, other) })
	mark = log.offset()
	e.eventually(90*time.Second, "the restarted pod is back in the rotation", func() error {
		return answeredBy(log.since(mark), []string{victim}, nil)
	})

	// Remove everything: the agents tear the pod networks down.
	e.push("remove all", map[string]string{"web.yaml": "", "svc.yaml": "", "client.yaml": ""})
	e.mustCLI("sync")
	e.eventually(60*time.Second, "pods and their network namespaces are gone", func() error {
		for _, n := range nodes {
			cs, err := n.runtime.List(ctx)
			if err != nil || len(cs) > 0 {
				return fmt.Errorf("%s: %d containers (%v)", n.name, len(cs), err)
			}
			if left := podNetNS(n.dir); len(left) > 0 {
				return fmt.Errorf("%s: pod namespaces left: %v", n.name, left)
			}
		}
		return nil
	})
}

// webPodsOn checks that every web pod runs, has a pod IP and its node's
// address as host IP, and that the pods cover the given nodes.
func webPodsOn(pods []corev1.Pod, nodes map[string]*netNode, want ...string) error {
	seen := map[string]bool{}
	n := 0
	for _, p := range pods {
		if !strings.HasPrefix(p.Name, "web-") {
			continue
		}
		n++
		node := nodes[p.Spec.NodeName]
		if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" || node == nil || p.Status.HostIP != node.ip {
			return fmt.Errorf("pod %s on %q: phase %s, podIP %q, hostIP %q", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP, p.Status.HostIP)
		}
		seen[p.Spec.NodeName] = true
	}
	for _, w := range want {
		if !seen[w] {
			return fmt.Errorf("%d web pods, none on %s", n, w)
		}
	}
	return nil
}

func webPodNames(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		if strings.HasPrefix(p.Name, "web-") {
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}

// answeredBy checks that the lines show answers from every pod in vip
// (by VIP) and in dns (by DNS name).
func answeredBy(lines []string, vip, dns []string) error {
	got := map[string]map[string]bool{"vip": {}, "dns": {}}
	for _, l := range lines {
		if kind, pod, ok := strings.Cut(l, " "); ok && got[kind] != nil {
			got[kind][pod] = true
		}
	}
	for kind, want := range map[string][]string{"vip": vip, "dns": dns} {
		for _, p := range want {
			if !got[kind][p] {
				return fmt.Errorf("no answer from %s by %s yet; answers: %v", p, kind, got[kind])
			}
		}
	}
	return nil
}

// onlyAnswer checks that the last 10 answers by VIP came from pod.
func onlyAnswer(log *podLog, pod string) error {
	var vip []string
	for _, l := range log.since(0) {
		if strings.HasPrefix(l, "vip ") {
			vip = append(vip, strings.TrimPrefix(l, "vip "))
		}
	}
	if len(vip) < 10 {
		return fmt.Errorf("only %d answers", len(vip))
	}
	for _, a := range vip[len(vip)-10:] {
		if a != pod {
			return fmt.Errorf("last answers %v, want only %s", vip[len(vip)-10:], pod)
		}
	}
	return nil
}

// killWeb SIGKILLs the container of web pod name.
func killWeb(t *testing.T, nodes map[string]*netNode, name string) {
	t.Helper()
	for _, n := range nodes {
		cs, err := n.runtime.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Labels[nodeagent.LabelPodName] == name && c.State == nodeagent.StateRunning {
				if err := syscall.Kill(int(c.Pid), syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
	}
	t.Fatalf("no running container of %s", name)
}

// podLog reads a container's log file as lines.
type podLog struct {
	t    *testing.T
	path string
}

func clientLog(e *env, n *netNode) *podLog {
	var path string
	e.eventually(60*time.Second, "the client pod logs", func() error {
		m, _ := filepath.Glob(filepath.Join(n.dir, "logs", "default_client_*_main.log"))
		if len(m) == 0 {
			return fmt.Errorf("no log file yet")
		}
		path = m[0]
		return nil
	})
	return &podLog{t: e.t.(*testing.T), path: path}
}

func (l *podLog) lines() []string {
	f, err := os.Open(l.path)
	if err != nil {
		l.t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func (l *podLog) offset() int { return len(l.lines()) }

func (l *podLog) since(n int) []string { return l.lines()[n:] }

func (l *podLog) first(prefix string) string {
	for _, s := range l.lines() {
		if strings.HasPrefix(s, prefix) {
			return s
		}
	}
	return ""
}

// podNetNS lists the pod namespaces an agent's pod network still holds.
func podNetNS(agentDir string) []string {
	b, err := os.ReadFile(filepath.Join(agentDir, "network", "ipam.json"))
	if err != nil {
		return nil
	}
	var left []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, `"netns"`) {
			left = append(left, strings.TrimSpace(l))
		}
	}
	return left
}
