package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/nodeagent"
	"github.com/moor-dev/moor/secrets"
)

// TestVault runs Secrets from a real Vault (tools/vaultdev) through the
// whole path: Vault policies and AppRoles per node, an agent logging in
// with its role, a Deployment reading a Secret through env and a volume;
// a rotation that updates the files in place and rolls the env consumers
// within maxUnavailable; a Vault outage that running pods survive, during
// which a new consumer waits naming the Secret, and from which it
// recovers on its own once Vault is back.
func TestVault(t *testing.T) {
	s := startVaultScenario(t)
	s.firstDeploy()
	s.rotate()
	s.outage()
	s.checkNoValues()
}

// vaultScenario is TestVault's cluster: one node reading Secrets from
// Vault with its AppRole.
type vaultScenario struct {
	t        *testing.T
	e        *env
	vault    *devVault
	agentDir string
	img      string
	// v1 and v2 are the versions of secret/data/shop/db's password,
	// token secret/data/shop/api's token.
	v1, v2, token string
}

func (s *vaultScenario) values() []string { return []string{s.v1, s.v2, s.token} }

// startVaultScenario starts Vault with the Secrets' first values and the
// nodes' roles, pushes Secret db and Deployment web, and starts the server
// and node-a's agent with its AppRole.
func startVaultScenario(t *testing.T) *vaultScenario {
	e := newEnv(t)
	s := &vaultScenario{t: t, e: e, vault: e.startVault(), agentDir: filepath.Join(e.dir, "agent-node-a"),
		v1: "pw-one-" + randHex(t), v2: "pw-two-" + randHex(t), token: "tok-" + randHex(t)}
	s.vault.kvPut("secret/data/shop/db", map[string]any{"password": s.v1})
	s.vault.kvPut("secret/data/shop/api", map[string]any{"token": s.token})
	nodeA := s.vault.nodeRole(t, "node-a", "shop")
	nodeB := s.vault.nodeRole(t, "node-b", "other")
	// Node b's policy does not reach shop/: its Vault client is refused,
	// with an error naming the path and no value.
	checkDenied(t, s.vault.addr, nodeB)

	s.img = e.image("vault")
	e.push("web with a Vault secret", map[string]string{"web.yaml": vaultManifests(s.img, 3)})
	e.startServer()
	e.cleanupMounts(s.agentDir) // secret volumes: tmpfs mounts the agent leaves with its pods
	e.startAgent("node-a", "--vault-addr", s.vault.addr,
		"--vault-role-id-file", nodeA.roleID, "--vault-secret-id-file", nodeA.secretID,
		"--vault-poll-interval", "1s")
	e.mustCLI("sync")
	return s
}

// firstDeploy: the pods start once, with version 1 in env and file: the
// pods planned before the node reported the version (annotated with
// version 0) wait for the next plan instead of starting.
func (s *vaultScenario) firstDeploy() {
	t, e := s.t, s.e
	begin := time.Now()
	hashes := map[string]bool{} // pod-template hashes that ever had a container
	e.eventually(90*time.Second, "3 web pods ready with version 1", func() error {
		for _, c := range e.containers() {
			if n := c.Labels[nodeagent.LabelPodName]; strings.HasPrefix(n, "web-") {
				hashes[templateHashOf(n)] = true
			}
		}
		return e.webReady(3, s.agentDir, "env="+s.v1+" file="+s.v1)
	})
	t.Logf("first deploy: 3 pods ready %v after the first sync; pod-template hashes that ran: %v", time.Since(begin).Round(100*time.Millisecond), sortedKeys(hashes))
	if len(hashes) != 1 {
		t.Errorf("pods of %d templates ran on the first deploy, want 1: the pods annotated with version 0 started before the server learned the version", len(hashes))
	}
	s.checkVersions(1)
}

// checkVersions checks the web pods' annotation and `moor get secrets`.
func (s *vaultScenario) checkVersions(version int64) {
	s.t.Helper()
	for _, p := range s.e.podsOf("web-") {
		if got, want := p.Annotations[api.AnnotationSecretVersions], fmt.Sprintf("db=%d", version); got != want {
			s.t.Errorf("pod %s: %s = %q, want %s", p.Name, api.AnnotationSecretVersions, got, want)
		}
	}
	s.e.checkSecretViews("db", version, []string{"password"}, s.values())
}

// rotate writes version 2: the files change in place in the running
// pods; the pods reading it through env are replaced one at a time.
func (s *vaultScenario) rotate() {
	t, e := s.t, s.e
	old := e.runningWeb()
	mon := e.watchAvailability(3, 1)
	rotated := time.Now()
	s.vault.kvPut("secret/data/shop/db", map[string]any{"password": s.v2})
	var fileAt time.Duration
	inPlace := map[string]bool{} // old containers that logged the new file with the old env
	e.eventually(60*time.Second, "3 new web pods ready with version 2", func() error {
		for id, c := range old {
			if fileAt == 0 {
				b, _ := os.ReadFile(filepath.Join(s.agentDir, "pods", c.Labels[nodeagent.LabelPodUID], "volumes", "secret", "db", "password"))
				if string(b) == s.v2 {
					fileAt = time.Since(rotated)
				}
			}
			if logHas(s.agentDir, id, "env="+s.v1+" file="+s.v2) && e.samePid(c) {
				inPlace[id] = true
			}
		}
		if err := e.webReady(3, s.agentDir, "env="+s.v2+" file="+s.v2); err != nil {
			return err
		}
		for _, p := range e.podsOf("web-") {
			if _, ok := old[podContainerID(p)]; ok {
				return fmt.Errorf("pod %s of version 1 still listed", p.Name)
			}
		}
		if n := len(e.runningWeb()); n != 3 {
			return fmt.Errorf("%d web containers run", n)
		}
		return nil
	})
	rolled := time.Since(rotated)
	mon.stop()
	t.Logf("rotation: file updated in place %v after the write to Vault; all env consumers replaced and ready after %v; %d old containers printed the new file with the old env; availability: %s",
		fileAt.Round(10*time.Millisecond), rolled.Round(100*time.Millisecond), len(inPlace), mon.summary())
	if fileAt == 0 || fileAt > 10*time.Second {
		t.Errorf("the old pods' secret file changed to version 2 after %v, want within a few seconds (poll interval 1s)", fileAt)
	}
	if len(inPlace) == 0 {
		t.Error("no running container read version 2 from its file while its env still held version 1")
	}
	if err := mon.err(); err != nil {
		t.Error(err)
	}
	s.checkVersions(2)
}

// outage stops Vault: the running pods keep running; a scale up starts
// from the values the node read last, while a new consumer of a Secret
// the node never read waits naming it, and starts within seconds of
// Vault's return, long before its grown retry backoff would retry it.
func (s *vaultScenario) outage() {
	t, e := s.t, s.e
	steady := e.runningWeb()
	s.vault.stop()
	e.push("scale web to 4, add worker", map[string]string{
		"web.yaml":    vaultManifests(s.img, 4),
		"worker.yaml": workerManifests(s.img),
	})
	e.mustCLI("sync")
	e.eventually(60*time.Second, "4 web pods ready, the worker waiting for its Secret", func() error {
		if err := e.webReady(4, s.agentDir, "env="+s.v2+" file="+s.v2); err != nil {
			return err
		}
		w := e.workerPod()
		if w == nil || len(w.Status.ContainerStatuses) == 0 || w.Status.ContainerStatuses[0].State.Waiting == nil {
			return fmt.Errorf("worker pod not waiting: %+v", w)
		}
		st := w.Status.ContainerStatuses[0].State.Waiting
		if st.Reason != "CreateContainerConfigError" {
			return fmt.Errorf("worker waits with %s: %s", st.Reason, st.Message)
		}
		for _, want := range []string{`Secret "default/api"`, `secret/data/shop/api`, "env TOKEN"} {
			if !strings.Contains(st.Message, want) {
				return fmt.Errorf("worker's waiting message %q lacks %q", st.Message, want)
			}
		}
		return nil
	})
	w := e.workerPod()
	msg := w.Status.ContainerStatuses[0].State.Waiting.Message
	t.Logf("worker waits during the outage: %s", msg)
	noValues(t, "worker's waiting message", msg, s.values())
	// Let the retry backoff grow past what a recovery may take: the
	// worker's next attempt is then 20s away.
	var next time.Time
	e.eventually(40*time.Second, "the worker's retry backoff grows", func() error {
		rec, err := containerRecord(s.agentDir, podContainerID(*w))
		if err != nil {
			return err
		}
		if rec.Failures < 2 {
			return fmt.Errorf("%d failed attempts", rec.Failures)
		}
		next = rec.NextAttempt
		return nil
	})
	if out := e.mustCLI("get", "secrets", "-o", "wide"); !strings.Contains(out, "node-a: ") {
		t.Errorf("get secrets -o wide shows no Vault error during the outage:\n%s", out)
	} else {
		t.Logf("moor get secrets -o wide during the outage:\n%s", out)
	}

	s.vault.restart()
	back := time.Now()
	t.Logf("vault back; the worker's backoff would retry in %v", time.Until(next).Round(100*time.Millisecond))
	e.eventually(30*time.Second, "the worker runs with its token", func() error {
		for _, w := range e.podsOf("worker-") {
			if w.Status.Phase == corev1.PodRunning && logHas(s.agentDir, podContainerID(w), "token="+s.token) {
				return nil
			}
		}
		return fmt.Errorf("no worker pod runs and logged its token")
	})
	recovered := time.Since(back)
	t.Logf("outage: worker running %v after Vault came back", recovered.Round(100*time.Millisecond))
	if time.Now().After(next) {
		t.Errorf("the worker started only after its backoff expired (%v after Vault came back): the recovery did not end the backoff", recovered)
	}
	now := e.runningWeb()
	for id, c := range steady {
		if n, ok := now[id]; !ok || n.Pid != c.Pid {
			t.Errorf("web container %s was restarted during the outage", id)
		}
	}
	if len(now) != 4 {
		t.Errorf("%d web containers run after the outage, want 4", len(now))
	}
}

// checkNoValues: values never reach the server's files or log, the CLI,
// the agent's log or its state.
func (s *vaultScenario) checkNoValues() {
	t, e := s.t, s.e
	for _, f := range []string{filepath.Join(e.dir, "server.log"), filepath.Join(e.dir, "agent-node-a.log"), filepath.Join(s.agentDir, "state.json")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		noValues(t, f, string(b), s.values())
	}
	for _, args := range [][]string{{"get", "pods", "-A", "-o", "yaml"}, {"get", "secrets", "-o", "yaml"}, {"describe", "secret", "db"}} {
		if out, err := e.cli(args...); err == nil {
			noValues(t, "moor "+strings.Join(args, " "), out, s.values())
		}
	}
	filepath.WalkDir(e.srvDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(path); err == nil {
				noValues(t, path, string(b), s.values())
			}
		}
		return nil
	})
}

// vaultManifests are Secret db (Vault path secret/data/shop/db) and a
// Deployment web rolling one pod at a time that prints the password from
// env and from its secret volume five times a second, ready once the file
// is. Its shell ignores SIGTERM, so a replaced pod prints for its grace
// period: long enough to show the rotated file next to the old env.
func vaultManifests(image string, replicas int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: default
  annotations:
    vault.moor.dev/path: secret/data/shop/db
type: Opaque
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: %d
  selector: {matchLabels: {app: web}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 1, maxSurge: 0}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: %s
        command: ["sh", "-c"]
        args: ['while true; do echo "env=$PASSWORD file=$(cat /etc/db/password)"; sleep 0.2; done']
        env:
        - name: PASSWORD
          valueFrom: {secretKeyRef: {name: db, key: password}}
        volumeMounts:
        - {name: db, mountPath: /etc/db, readOnly: true}
        readinessProbe:
          exec: {command: ["test", "-s", "/etc/db/password"]}
          periodSeconds: 1
      volumes:
      - name: db
        secret: {secretName: db}
`, replicas, image)
}

// workerManifests are Secret api and a Deployment worker printing it.
func workerManifests(image string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: api
  namespace: default
  annotations:
    vault.moor.dev/path: secret/data/shop/api
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: %s
        command: ["sh", "-c"]
        args: ['echo "token=$TOKEN"; exec sleep 3600']
        env:
        - name: TOKEN
          valueFrom: {secretKeyRef: {name: api, key: token}}
`, image)
}

// workerPod is the only pod of Deployment worker; nil unless there is
// exactly one.
func (e *env) workerPod() *corev1.Pod {
	if ws := e.podsOf("worker-"); len(ws) == 1 {
		return &ws[0]
	}
	return nil
}

// webReady checks that Deployment web has n pods, all running and
// ready, whose containers logged line.
func (e *env) webReady(n int, agentDir, line string) error {
	pods := e.podsOf("web-")
	if len(pods) != n {
		return fmt.Errorf("%d web pods, want %d", len(pods), n)
	}
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning || !podReady(&p) {
			return fmt.Errorf("pod %s: %s, ready %v", p.Name, p.Status.Phase, podReady(&p))
		}
		if !logHas(agentDir, podContainerID(p), line) {
			return fmt.Errorf("pod %s has not logged %q", p.Name, line)
		}
	}
	return nil
}

// podContainerID is the ID of the container "main" of p.
func podContainerID(p corev1.Pod) string {
	return nodeagent.ContainerID(p.Namespace, p.Name, string(p.UID), "main")
}

// templateHashOf is the pod-template hash in a Deployment pod's name.
func templateHashOf(pod string) string {
	parts := strings.Split(pod, "-")
	if len(parts) < 3 {
		return pod
	}
	return parts[len(parts)-2]
}

// runningWeb are the running containers of Deployment web, by ID.
func (e *env) runningWeb() map[string]nodeagent.ContainerInfo {
	out := map[string]nodeagent.ContainerInfo{}
	for _, c := range e.containers() {
		if c.State == nodeagent.StateRunning && strings.HasPrefix(c.Labels[nodeagent.LabelPodName], "web-") {
			out[c.ID] = c
		}
	}
	return out
}

// samePid reports whether c still runs with the same process.
func (e *env) samePid(c nodeagent.ContainerInfo) bool {
	n, ok := e.runningWeb()[c.ID]
	return ok && n.Pid == c.Pid
}

// logHas reports whether container id's log holds line.
func logHas(agentDir, id, line string) bool {
	f, err := os.Open(filepath.Join(agentDir, "logs", id+".log"))
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.Contains(s.Text(), line) {
			return true
		}
	}
	return false
}

// containerRecord reads the agent's record of container id from its
// state.json: failed attempts and when it tries again.
func containerRecord(agentDir, id string) (struct {
	Failures      int       `json:"failures"`
	NextAttempt   time.Time `json:"nextAttempt"`
	WaitingReason string    `json:"waitingReason"`
}, error) {
	var st struct {
		Containers map[string]struct {
			Failures      int       `json:"failures"`
			NextAttempt   time.Time `json:"nextAttempt"`
			WaitingReason string    `json:"waitingReason"`
		} `json:"containers"`
	}
	b, err := os.ReadFile(filepath.Join(agentDir, "state.json"))
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	rec, ok := st.Containers[id]
	if err == nil && !ok {
		err = fmt.Errorf("no record of container %s", id)
	}
	return rec, err
}

// checkSecretViews checks `moor get secrets` and its YAML: Secret name at
// version with keys, never a value.
func (e *env) checkSecretViews(name string, version int64, keys []string, values []string) {
	e.t.Helper()
	e.eventually(10*time.Second, fmt.Sprintf("get secrets shows %s at version %d", name, version), func() error {
		out := e.mustCLI("get", "secrets")
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) >= 5 && f[0] == name {
				if f[3] != fmt.Sprint(version) || f[4] != fmt.Sprint(len(keys)) {
					return fmt.Errorf("row %q: want version %d and %d keys", l, version, len(keys))
				}
				noValues(e.t, "moor get secrets", out, values)
				return nil
			}
		}
		return fmt.Errorf("no row for %s:\n%s", name, out)
	})
	out := e.mustCLI("get", "secret", name, "-o", "yaml")
	noValues(e.t, "moor get secret -o yaml", out, values)
	var obj struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Status struct {
			Version int64    `json:"version"`
			Keys    []string `json:"keys"`
			Nodes   []struct {
				Node    string `json:"node"`
				Version int64  `json:"version"`
			} `json:"nodes"`
		} `json:"status"`
	}
	if err := yaml.Unmarshal([]byte(out), &obj); err != nil {
		e.t.Fatalf("get secret %s -o yaml: %v\n%s", name, err, out)
	}
	st := obj.Status
	if st.Version != version || !slices.Equal(st.Keys, keys) || len(st.Nodes) != 1 || st.Nodes[0].Version != version ||
		obj.Metadata.Annotations[api.AnnotationVaultPath] == "" {
		e.t.Errorf("get secret %s -o yaml: want version %d and keys %q, read by node-a, with its Vault path:\n%s", name, version, keys, out)
	}
}

// noValues fails the test when s holds one of values.
func noValues(t testing.TB, what, s string, values []string) {
	t.Helper()
	for _, v := range values {
		if strings.Contains(s, v) {
			t.Errorf("%s holds a Secret value", what)
		}
	}
}

func randHex(t testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// availability watches Deployment web during a rollout, as the server
// lists its pods and as containerd runs them: never fewer than
// replicas-maxUnavailable ready (running) and never more than
// replicas+maxSurge pods.
type availability struct {
	e                        *env
	replicas, maxUnavailable int
	cancel                   context.CancelFunc
	done                     chan struct{}
	mu                       sync.Mutex
	polls, minReady, minRun  int
	maxPods                  int
	violations               []string
}

func (e *env) watchAvailability(replicas, maxUnavailable int) *availability {
	ctx, cancel := context.WithCancel(e.ctx)
	a := &availability{e: e, replicas: replicas, maxUnavailable: maxUnavailable, cancel: cancel,
		done: make(chan struct{}), minReady: replicas, minRun: replicas}
	go func() {
		defer close(a.done)
		for ctx.Err() == nil {
			a.poll(ctx)
		}
	}()
	return a
}

func (a *availability) poll(ctx context.Context) {
	out, err := a.e.cliCmd(ctx, "get", "pods", "-o", "json").Output()
	if err != nil {
		return
	}
	var list struct {
		Items []corev1.Pod `json:"items"`
	}
	if json.Unmarshal(out, &list) != nil {
		return
	}
	ready, pods := 0, 0
	for _, p := range list.Items {
		if strings.HasPrefix(p.Name, "web-") {
			pods++
			if podReady(&p) {
				ready++
			}
		}
	}
	cs, err := a.e.runtime.List(ctx)
	if err != nil {
		return
	}
	run := 0
	for _, c := range cs {
		if c.State == nodeagent.StateRunning && strings.HasPrefix(c.Labels[nodeagent.LabelPodName], "web-") {
			run++
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.polls++
	a.minReady, a.minRun, a.maxPods = min(a.minReady, ready), min(a.minRun, run), max(a.maxPods, pods)
	floor := a.replicas - a.maxUnavailable
	if ready < floor || run < floor || pods > a.replicas {
		a.violations = append(a.violations, fmt.Sprintf("%s: %d pods listed, %d ready, %d containers running",
			time.Now().Format("15:04:05.000"), pods, ready, run))
	}
}

func (a *availability) stop() { a.cancel(); <-a.done }

func (a *availability) summary() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprintf("%d polls, at least %d pods ready and %d containers running, at most %d pods listed", a.polls, a.minReady, a.minRun, a.maxPods)
}

func (a *availability) err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.violations) > 0 {
		return fmt.Errorf("rollout exceeded maxUnavailable %d (or listed more than %d pods): %s", a.maxUnavailable, a.replicas, strings.Join(a.violations, "; "))
	}
	return nil
}

// cleanupMounts unmounts, when the test ends, what is still mounted under
// dir (secret volumes the agent leaves with pods still running), so that
// the test's directory can be removed. Register it before the agent so
// that it runs after the agent stopped.
func (e *env) cleanupMounts(dir string) {
	e.t.Cleanup(func() {
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return
		}
		var mounts []string
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
				mounts = append(mounts, f[4])
			}
		}
		sort.Sort(sort.Reverse(sort.StringSlice(mounts))) // deepest first
		for _, m := range mounts {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				e.t.Logf("unmount %s: %v", m, err)
			}
		}
	})
}

// devVault is a tools/vaultdev process with its storage in a directory,
// so that it can stop and start again on the same address with the same
// data and root token.
type devVault struct {
	e         *env
	bin, dir  string
	addr      string
	rootToken string
	root      *vaultapi.Client
	p         *proc
	starts    int
}

// nodeCreds are a node's AppRole files.
type nodeCreds struct{ roleID, secretID string }

var vaultdevOnce struct {
	sync.Once
	path string
	err  error
}

// vaultdevBinary is $MOOR_VAULTDEV (hack/test.sh builds it), bin/vaultdev,
// or tools/vaultdev built once per test binary.
func vaultdevBinary(t testing.TB) string {
	t.Helper()
	vaultdevOnce.Do(func() {
		if p := os.Getenv("MOOR_VAULTDEV"); p != "" {
			vaultdevOnce.path = p
			return
		}
		if p, err := filepath.Abs(filepath.Join("..", "bin", "vaultdev")); err == nil {
			if _, err := os.Stat(p); err == nil {
				vaultdevOnce.path = p
				return
			}
		}
		dir, err := os.MkdirTemp("", "moor-e2e-vaultdev-")
		if err != nil {
			vaultdevOnce.err = err
			return
		}
		vaultdevOnce.path = filepath.Join(dir, "vaultdev")
		tool, _ := filepath.Abs(filepath.Join("..", "tools", "vaultdev"))
		if out, err := exec.Command("go", "build", "-C", tool, "-o", vaultdevOnce.path, ".").CombinedOutput(); err != nil {
			vaultdevOnce.err = fmt.Errorf("go build -C %s: %v\n%s", tool, err, out)
		}
	})
	if vaultdevOnce.err != nil {
		t.Fatalf("build tools/vaultdev (or set MOOR_VAULTDEV to a built binary): %v", vaultdevOnce.err)
	}
	return vaultdevOnce.path
}

// startVault starts vaultdev on a free loopback port with its storage in
// the test's directory.
func (e *env) startVault() *devVault {
	e.t.Helper()
	v := &devVault{e: e, bin: vaultdevBinary(e.t), dir: filepath.Join(e.dir, "vault"),
		addr: fmt.Sprintf("http://127.0.0.1:%d", freePort(e.t))}
	v.start()
	return v
}

func (v *devVault) start() {
	t := v.e.t
	t.Helper()
	v.starts++
	listen := strings.TrimPrefix(v.addr, "http://")
	v.p = v.e.startCmd(fmt.Sprintf("vault-%d", v.starts), exec.Command(v.bin, "--listen", listen, "--data-dir", v.dir))
	// vaultdev listens once Vault is unsealed and mounted, after writing
	// init.json.
	v.e.eventually(60*time.Second, "vaultdev answers, unsealed", func() error {
		select {
		case <-v.p.done:
			return errors.New("vaultdev exited; see its log")
		default:
		}
		resp, err := http.Get(v.addr + "/v1/sys/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("sys/health: %s", resp.Status)
		}
		return nil
	})
	var info struct {
		Addr      string `json:"addr"`
		RootToken string `json:"root_token"`
	}
	b, err := os.ReadFile(filepath.Join(v.dir, "init.json"))
	if err == nil {
		err = json.Unmarshal(b, &info)
	}
	if err != nil {
		t.Fatalf("vaultdev's init.json: %v", err)
	}
	if info.Addr != v.addr || (v.rootToken != "" && info.RootToken != v.rootToken) {
		t.Fatalf("vaultdev at %s (root token kept: %v), want %s and the same token", info.Addr, info.RootToken == v.rootToken, v.addr)
	}
	v.rootToken = info.RootToken
	c, err := vaultapi.NewClient(&vaultapi.Config{Address: v.addr, MaxRetries: 0, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(v.rootToken)
	v.root = c
}

// stop ends vaultdev with SIGTERM.
func (v *devVault) stop() { v.p.stop() }

// restart starts vaultdev again on the same address and storage.
func (v *devVault) restart() {
	v.e.t.Helper()
	v.start()
}

func (v *devVault) write(path string, data map[string]any) *vaultapi.Secret {
	v.e.t.Helper()
	s, err := v.root.Logical().Write(path, data)
	if err != nil {
		v.e.t.Fatalf("vault write %s: %v", path, err)
	}
	return s
}

func (v *devVault) kvPut(path string, data map[string]any) {
	v.write(path, map[string]any{"data": data})
}

// nodeRole creates policy and AppRole node allowing to read
// secret/data/<prefix>/* and its metadata, and writes the role ID and a
// secret ID to files.
func (v *devVault) nodeRole(t testing.TB, node, prefix string) nodeCreds {
	t.Helper()
	policy := fmt.Sprintf("path %q { capabilities = [\"read\"] }\npath %q { capabilities = [\"read\"] }\n",
		"secret/data/"+prefix+"/*", "secret/metadata/"+prefix+"/*")
	if err := v.root.Sys().PutPolicy(node, policy); err != nil {
		t.Fatal(err)
	}
	v.write("auth/approle/role/"+node, map[string]any{"token_policies": node, "token_ttl": "1h"})
	rid, err := v.root.Logical().Read("auth/approle/role/" + node + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid := v.write("auth/approle/role/"+node+"/secret-id", nil)
	dir := filepath.Join(v.e.dir, "vault-"+node)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c := nodeCreds{roleID: filepath.Join(dir, "role-id"), secretID: filepath.Join(dir, "secret-id")}
	if err := os.WriteFile(c.roleID, []byte(rid.Data["role_id"].(string)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.secretID, []byte(sid.Data["secret_id"].(string)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// checkDenied reads secret/data/shop/db with creds and expects Vault to
// refuse, with an error naming the path.
func checkDenied(t testing.TB, addr string, creds nodeCreds) {
	t.Helper()
	m, err := secrets.New(secrets.Config{Address: addr, Auth: secrets.AuthConfig{AppRole: &secrets.AppRoleAuth{
		RoleIDFile: creds.roleID, SecretIDFile: creds.secretID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ref := api.SecretRef{Namespace: "default", Name: "db", Type: "Opaque",
		Vault: &api.VaultSource{Engine: api.VaultEngineKV, Path: "secret/data/shop/db"}}
	_, err = m.Get(ctx, ref, 0)
	if !errors.Is(err, secrets.ErrPermissionDenied) || !strings.Contains(err.Error(), "secret/data/shop/db") {
		t.Fatalf("node-b read secret/data/shop/db: %v, want permission denied naming the path", err)
	}
	t.Logf("node-b is refused: %v", err)
}
