package nodeagent_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/nodeagent"
	"github.com/moor-dev/moor/nodeagent/fakeruntime"
)

const node = "node-1"

// testPod is a pod with one container per name, image "img/<container>".
func testPod(name, uid string, containers ...string) api.Pod {
	p := api.Pod{Namespace: "default", Name: name, UID: uid}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "img/" + c})
	}
	p.SpecHash = api.HashObject(p.Spec)
	return p
}

func cid(p api.Pod, c string) string { return nodeagent.ContainerID(p.Namespace, p.Name, p.UID, c) }

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// testConfig is a config with intervals short enough for tests.
func testConfig(t *testing.T, srv *fakeServer, dir string) nodeagent.Config {
	return nodeagent.Config{
		Server:            srv.srv.URL,
		Token:             srv.token(),
		Name:              node,
		DataDir:           dir,
		Labels:            map[string]string{"zone": "a"},
		PollWait:          300 * time.Millisecond,
		ReportInterval:    200 * time.Millisecond,
		ResyncInterval:    20 * time.Millisecond,
		RestartBackoff:    200 * time.Millisecond,
		MaxRestartBackoff: time.Second,
		Log:               slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// start runs an agent until the returned stop is called (or the test ends).
func start(t *testing.T, cfg nodeagent.Config, rt nodeagent.Runtime) (stop func()) {
	t.Helper()
	return startWith(t, cfg, rt, nil)
}

// startWith is start with setup called on the agent before it runs.
func startWith(t *testing.T, cfg nodeagent.Config, rt nodeagent.Runtime, setup func(*nodeagent.Agent)) (stop func()) {
	t.Helper()
	a, err := nodeagent.New(cfg, rt)
	if err != nil {
		t.Fatal(err)
	}
	nodeagent.SetRetryBackoff(a, 20*time.Millisecond, 200*time.Millisecond)
	if setup != nil {
		setup(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("agent did not stop within 10s of cancellation")
		}
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func running(rt *fakeruntime.Runtime, id string) bool {
	cs, _ := rt.List(context.Background())
	for _, c := range cs {
		if c.ID == id {
			return c.State == nodeagent.StateRunning
		}
	}
	return false
}

func exists(rt *fakeruntime.Runtime, id string) bool {
	cs, _ := rt.List(context.Background())
	for _, c := range cs {
		if c.ID == id {
			return true
		}
	}
	return false
}

// podStatus finds a pod in the last report.
func podStatus(srv *fakeServer, name string) *api.PodStatus {
	st := srv.LastStatus()
	if st == nil {
		return nil
	}
	for i := range st.Pods {
		if st.Pods[i].Name == name {
			return &st.Pods[i]
		}
	}
	return nil
}

func TestJoinThenReuseCredentials(t *testing.T) {
	srv := newFakeServer(t, node)
	digest := srv.SetDesired("c1")
	dir := t.TempDir()
	cfg := testConfig(t, srv, dir)
	stop := start(t, cfg, fakeruntime.New())
	eventually(t, "a report after joining", func() bool {
		st := srv.LastStatus()
		return st != nil && st.DesiredDigest == digest
	})
	stop()
	if n := srv.Joins(); n != 1 {
		t.Fatalf("joins = %d, want 1", n)
	}
	for _, f := range []string{"node.crt", "node.key", "ca.crt", "state.json"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}

	// A restarted agent reuses the stored certificate: no token, no join.
	cfg.Token = ""
	before := len(srv.Statuses())
	start(t, cfg, fakeruntime.New())
	eventually(t, "a report from the restarted agent", func() bool { return len(srv.Statuses()) > before })
	if n := srv.Joins(); n != 1 {
		t.Errorf("joins after restart = %d, want 1", n)
	}
}

func TestJoinRefusesServerWithoutPinnedCA(t *testing.T) {
	srv := newFakeServer(t, node)
	other := newTestCA(t)
	cfg := testConfig(t, srv, t.TempDir())
	cfg.Token = api.Token{CAHash: api.CAHash(other.cert.Raw), Secret: srv.secret}.String()
	start(t, cfg, fakeruntime.New())
	time.Sleep(300 * time.Millisecond) // several join attempts
	if n := srv.Joins(); n != 0 {
		t.Errorf("joined a server whose CA the token does not pin (%d joins)", n)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "node.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("credentials stored after a refused join: %v", err)
	}
}

func TestLongPoll(t *testing.T) {
	srv := newFakeServer(t, node)
	d1 := srv.SetDesired("c1")
	cfg := testConfig(t, srv, t.TempDir())
	start(t, cfg, fakeruntime.New())
	eventually(t, "two 304 answers", func() bool { return countCode(srv.Pulls(), 304) >= 2 })

	pulls := srv.Pulls()
	if p := pulls[0]; p.Code != 200 || p.Since != "" || p.Wait != "300ms" {
		t.Errorf("first pull %+v, want 200 without since", p)
	}
	for _, p := range pulls[1:] {
		if p.Since != d1 || p.IfNoneMatch != `"`+d1+`"` {
			t.Errorf("pull %+v, want since and If-None-Match %s", p, d1)
		}
	}

	// A change during the wait is answered at once and applied.
	p := testPod("web", "1111aaaa-0001", "app")
	d2 := srv.SetDesired("c2", p)
	eventually(t, "report of the new document", func() bool {
		st := srv.LastStatus()
		return st != nil && st.DesiredDigest == d2 && st.Commit == "c2"
	})

	// Waiting: no busy loop while nothing changes (300ms waits).
	n := len(srv.Pulls())
	time.Sleep(time.Second)
	if got := len(srv.Pulls()) - n; got > 5 {
		t.Errorf("%d pulls in 1s with a 300ms wait: busy loop", got)
	}
}

func countCode(pulls []pull, code int) int {
	n := 0
	for _, p := range pulls {
		if p.Code == code {
			n++
		}
	}
	return n
}

func TestDigestMismatchRejected(t *testing.T) {
	srv := newFakeServer(t, node)
	p := testPod("web", "1111aaaa-0001", "app")
	srv.SetDesired("c1", p)
	srv.SetETag("sha256:" + strings.Repeat("0", 64))
	rt := fakeruntime.New()
	cfg := testConfig(t, srv, t.TempDir())
	start(t, cfg, rt)
	eventually(t, "several rejected pulls", func() bool { return countCode(srv.Pulls(), 200) >= 3 })
	if calls := rt.Calls(); len(calls) != 0 {
		t.Fatalf("agent acted on a document whose digest does not match its ETag: %v", calls)
	}
	if b, err := os.ReadFile(filepath.Join(cfg.DataDir, "state.json")); err == nil && strings.Contains(string(b), "sha256:") {
		t.Fatalf("mismatched document stored:\n%s", b)
	}

	srv.SetETag("") // the server fixes its ETag
	eventually(t, "container started", func() bool { return running(rt, cid(p, "app")) })
}

func TestPodLifecycleAndStatus(t *testing.T) {
	srv := newFakeServer(t, node)
	web := testPod("web", "1111aaaa-0001", "app", "sidecar")
	db := testPod("db", "2222aaaa-0001", "db")
	grace := int64(1)
	db.Spec.TerminationGracePeriodSeconds = &grace
	db.SpecHash = api.HashObject(db.Spec)
	digest := srv.SetDesired("c1", web, db)
	rt := fakeruntime.New()
	start(t, testConfig(t, srv, t.TempDir()), rt)

	for _, id := range []string{cid(web, "app"), cid(web, "sidecar"), cid(db, "db")} {
		eventually(t, id+" running", func() bool { return running(rt, id) })
	}
	calls := rt.Calls()
	for _, want := range []string{"pull img/app", "create " + cid(web, "app"), "start " + cid(web, "app")} {
		if !hasCall(calls, want) {
			t.Errorf("missing call %q in %v", want, calls)
		}
	}
	cs, _ := rt.List(context.Background())
	for _, c := range cs {
		if c.ID == cid(web, "app") {
			want := map[string]string{
				"moor.dev/pod-namespace": "default", "moor.dev/pod-name": "web", "moor.dev/pod-uid": web.UID,
				"moor.dev/container": "app", "moor.dev/spec-hash": web.SpecHash,
			}
			for k, v := range want {
				if c.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
				}
			}
		}
	}

	eventually(t, "status reporting both pods running", func() bool {
		ps := podStatus(srv, "web")
		return ps != nil && ps.Status.Phase == corev1.PodRunning && podStatus(srv, "db").Status.Phase == corev1.PodRunning
	})
	st := srv.LastStatus()
	if st.APIVersion != api.Version || st.Kind != api.KindNodeStatus || st.Node != node || st.DesiredDigest != digest || st.Commit != "c1" {
		t.Errorf("status header %+v", st)
	}
	ps := podStatus(srv, "web")
	if ps.UID != web.UID || ps.Commit != "c1" || ps.Namespace != "default" || ps.Status.StartTime == nil {
		t.Errorf("web status %+v", ps)
	}
	conds := map[corev1.PodConditionType]corev1.ConditionStatus{}
	for _, c := range ps.Status.Conditions {
		conds[c.Type] = c.Status
	}
	for _, c := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled} {
		if conds[c] != corev1.ConditionTrue {
			t.Errorf("condition %s = %q, want True", c, conds[c])
		}
	}
	if n := len(ps.Status.ContainerStatuses); n != 2 {
		t.Fatalf("%d container statuses, want 2", n)
	}
	app := ps.Status.ContainerStatuses[0]
	if app.Name != "app" || app.Image != "img/app" || app.ContainerID != "containerd://"+cid(web, "app") ||
		!app.Ready || app.State.Running == nil || app.State.Running.StartedAt.IsZero() || app.RestartCount != 0 {
		t.Errorf("app status %+v", app)
	}

	// db is removed from the desired state: stopped and removed; web stays.
	rt.SetStopBehaviour(cid(db, "db"), fakeruntime.StopIgnoresSignal)
	srv.SetDesired("c2", web)
	eventually(t, "db removed", func() bool { return !exists(rt, cid(db, "db")) })
	calls = rt.Calls()
	if !hasCall(calls, "stop "+cid(db, "db")) || !hasCall(calls, "kill "+cid(db, "db")) || !hasCall(calls, "remove "+cid(db, "db")) {
		t.Errorf("db not stopped, killed after its grace, and removed: %v", calls)
	}
	if countCalls(calls, "stop "+cid(web, "")) != 0 || !running(rt, cid(web, "app")) {
		t.Errorf("web was touched: %v", calls)
	}
	eventually(t, "status without db", func() bool {
		st := srv.LastStatus()
		return st.Commit == "c2" && len(st.Pods) == 1 && podStatus(srv, "db") == nil
	})
}

func TestStopsRunConcurrently(t *testing.T) {
	srv := newFakeServer(t, node)
	grace := int64(1)
	var pods []api.Pod
	for i, name := range []string{"a", "b", "c"} {
		p := testPod(name, "0000aaaa-000"+string(rune('0'+i)), "app")
		p.Spec.TerminationGracePeriodSeconds = &grace
		p.SpecHash = api.HashObject(p.Spec)
		pods = append(pods, p)
	}
	srv.SetDesired("c1", pods...)
	rt := fakeruntime.New()
	start(t, testConfig(t, srv, t.TempDir()), rt)
	for _, p := range pods {
		eventually(t, p.Name+" running", func() bool { return running(rt, cid(p, "app")) })
		rt.SetStopBehaviour(cid(p, "app"), fakeruntime.StopIgnoresSignal)
	}
	begin := time.Now()
	late := testPod("late", "9999aaaa-0001", "app")
	srv.SetDesired("c2", late)
	eventually(t, "new pod running during the grace periods", func() bool { return running(rt, cid(late, "app")) })
	if d := time.Since(begin); d > 900*time.Millisecond {
		t.Errorf("new pod started after %s: blocked by stops", d)
	}
	for _, p := range pods {
		eventually(t, p.Name+" removed", func() bool { return !exists(rt, cid(p, "app")) })
	}
	if d := time.Since(begin); d > 2500*time.Millisecond {
		t.Errorf("three 1s grace periods took %s: stops are not concurrent", d)
	}
}

func TestRestartWithBackoff(t *testing.T) {
	srv := newFakeServer(t, node)
	p := testPod("web", "1111aaaa-0001", "app")
	srv.SetDesired("c1", p)
	rt := fakeruntime.New()
	cfg := testConfig(t, srv, t.TempDir())
	start(t, cfg, rt)
	id := cid(p, "app")
	eventually(t, "running", func() bool { return running(rt, id) })

	for restart, wantDelay := range []time.Duration{cfg.RestartBackoff, 2 * cfg.RestartBackoff} {
		if err := rt.Exit(id, 3); err != nil {
			t.Fatal(err)
		}
		exited := time.Now()
		eventually(t, "crash loop back-off reported", func() bool {
			ps := podStatus(srv, "web")
			if ps == nil {
				return false
			}
			cs := ps.Status.ContainerStatuses[0]
			return cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" &&
				cs.LastTerminationState.Terminated != nil && cs.LastTerminationState.Terminated.ExitCode == 3
		})
		eventually(t, "restarted", func() bool { return running(rt, id) })
		if d := time.Since(exited); d < wantDelay {
			t.Errorf("restart %d after %s, want a back-off of at least %s", restart+1, d, wantDelay)
		}
		eventually(t, "restart count reported", func() bool {
			cs := podStatus(srv, "web").Status.ContainerStatuses[0]
			return cs.RestartCount == int32(restart+1) && cs.State.Running != nil &&
				cs.LastTerminationState.Terminated != nil && cs.LastTerminationState.Terminated.ExitCode == 3
		})
	}
	if n := countCalls(rt.Calls(), "create "+id); n != 3 {
		t.Errorf("%d creates, want 3: %v", n, rt.Calls())
	}
}

func TestNeverRestartPolicy(t *testing.T) {
	srv := newFakeServer(t, node)
	p := testPod("job", "1111aaaa-0001", "run")
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.SpecHash = api.HashObject(p.Spec)
	srv.SetDesired("c1", p)
	rt := fakeruntime.New()
	start(t, testConfig(t, srv, t.TempDir()), rt)
	id := cid(p, "run")
	eventually(t, "running", func() bool { return running(rt, id) })
	if err := rt.Exit(id, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Succeeded reported", func() bool {
		ps := podStatus(srv, "job")
		return ps != nil && ps.Status.Phase == corev1.PodSucceeded
	})
	time.Sleep(400 * time.Millisecond) // two back-off periods
	if n := countCalls(rt.Calls(), "start "+id); n != 1 {
		t.Errorf("a Never pod was restarted: %v", rt.Calls())
	}
}

func TestAdoptAfterAgentRestart(t *testing.T) {
	srv := newFakeServer(t, node)
	p := testPod("web", "1111aaaa-0001", "app", "sidecar")
	digest := srv.SetDesired("c1", p)
	rt := fakeruntime.New()
	dir := t.TempDir()
	cfg := testConfig(t, srv, dir)
	stop := start(t, cfg, rt)
	eventually(t, "running", func() bool { return running(rt, cid(p, "app")) && running(rt, cid(p, "sidecar")) })
	// One restart, so the count must survive the agent restart.
	if err := rt.Exit(cid(p, "sidecar"), 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "sidecar restarted", func() bool {
		ps := podStatus(srv, "web")
		return ps != nil && ps.Status.ContainerStatuses[1].RestartCount == 1 && ps.Status.ContainerStatuses[1].State.Running != nil
	})
	stop()
	if !running(rt, cid(p, "app")) || !running(rt, cid(p, "sidecar")) {
		t.Fatal("stopping the agent stopped its containers")
	}

	callsBefore := len(rt.Calls())
	pullsBefore := len(srv.Pulls())
	reportsBefore := len(srv.Statuses())
	cfg.Token = ""
	start(t, cfg, rt)
	eventually(t, "reports from the restarted agent", func() bool { return len(srv.Statuses()) > reportsBefore+2 })
	if calls := rt.Calls()[callsBefore:]; len(calls) != 0 {
		t.Errorf("restarted agent touched adopted containers: %v", calls)
	}
	eventually(t, "a pull from the restarted agent", func() bool { return len(srv.Pulls()) > pullsBefore })
	if first := srv.Pulls()[pullsBefore]; first.Since != digest {
		t.Errorf("restarted agent pulled since %q, want the stored %q", first.Since, digest)
	}
	cs := podStatus(srv, "web").Status.ContainerStatuses
	if cs[0].State.Running == nil || cs[1].State.Running == nil || cs[1].RestartCount != 1 {
		t.Errorf("statuses after adoption: %+v", cs)
	}
}

func TestStateSurvivesRestartWithServerDown(t *testing.T) {
	srv := newFakeServer(t, node)
	p := testPod("web", "1111aaaa-0001", "app")
	srv.SetDesired("c1", p)
	dir := t.TempDir()
	cfg := testConfig(t, srv, dir)
	stop := start(t, cfg, fakeruntime.New())
	eventually(t, "state stored", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "state.json"))
		return err == nil && strings.Contains(string(b), "sha256:")
	})
	stop()
	srv.srv.Close()

	// The node rebooted (empty runtime) and the server is down: the stored
	// desired state is enough to bring the pod back.
	rt := fakeruntime.New()
	start(t, cfg, rt)
	eventually(t, "pod running from stored state", func() bool { return running(rt, cid(p, "app")) })

	var st struct {
		Digest string `json:"digest"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "state.json"))
	if err := json.Unmarshal(b, &st); err != nil || !strings.HasPrefix(st.Digest, "sha256:") {
		t.Errorf("state.json: %v %s", err, b)
	}
}

func TestImagePullFailureIsolated(t *testing.T) {
	srv := newFakeServer(t, node)
	bad := testPod("bad", "1111aaaa-0001", "broken")
	good := testPod("good", "2222aaaa-0001", "app")
	srv.SetDesired("c1", bad, good)
	rt := fakeruntime.New()
	rt.FailPull("img/broken", errors.New("manifest unknown"))
	start(t, testConfig(t, srv, t.TempDir()), rt)
	eventually(t, "good pod running", func() bool { return running(rt, cid(good, "app")) })
	eventually(t, "pull back-off reported", func() bool {
		ps := podStatus(srv, "bad")
		if ps == nil || ps.Status.Phase != corev1.PodPending {
			return false
		}
		w := ps.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "ImagePullBackOff" && strings.Contains(w.Message, "manifest unknown")
	})
	pulls := countCalls(rt.Calls(), "pull img/broken")
	if pulls < 2 || pulls > 5 {
		t.Errorf("%d pulls of the broken image; want a few, spaced by the back-off", pulls)
	}
	rt.FailPull("img/broken", nil)
	eventually(t, "bad pod running once the image exists", func() bool { return running(rt, cid(bad, "broken")) })
}

func TestNewValidates(t *testing.T) {
	if _, err := nodeagent.New(nodeagent.Config{Name: "x"}, fakeruntime.New()); err == nil {
		t.Error("New accepted an invalid config")
	}
	if _, err := nodeagent.New(nodeagent.Config{Server: "https://h:1", Name: "x", DataDir: "/tmp/x"}, nil); err == nil {
		t.Error("New accepted a nil runtime")
	}
}
