package nodeagent_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/nodeagent"
	"github.com/moor-dev/moor/nodeagent/fakeruntime"
)

// probeSecond is a probe second in these tests: periodSeconds: 1 checks
// every 20ms.
const probeSecond = 20 * time.Millisecond

func startProbing(t *testing.T, cfg nodeagent.Config, rt nodeagent.Runtime) (stop func()) {
	t.Helper()
	return startWith(t, cfg, rt, func(a *nodeagent.Agent) { nodeagent.SetProbeSecond(a, probeSecond) })
}

// testProbe checks every probe second with a generous timeout.
func testProbe(h corev1.ProbeHandler, failureThreshold int32) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: h, PeriodSeconds: 1, TimeoutSeconds: 50, FailureThreshold: failureThreshold}
}

func execProbeHandler(cmd ...string) corev1.ProbeHandler {
	return corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}}
}

// probedPod is pod web with one container app, changed by mod.
func probedPod(mod func(c *corev1.Container)) api.Pod {
	p := testPod("web", "1111aaaa-0001", "app")
	mod(&p.Spec.Containers[0])
	p.SpecHash = api.HashObject(p.Spec)
	return p
}

// probeExitCodes answers execs by their first argument with the code stored
// for it (0 when none).
type probeExitCodes struct{ codes map[string]*atomic.Int32 }

func newProbeExitCodes(names ...string) *probeExitCodes {
	e := &probeExitCodes{codes: map[string]*atomic.Int32{}}
	for _, n := range names {
		e.codes[n] = &atomic.Int32{}
	}
	return e
}

func (e *probeExitCodes) set(name string, code int32) { e.codes[name].Store(code) }

func (e *probeExitCodes) handle(_ context.Context, cmd []string, _, stderr io.Writer) (int, error) {
	c, ok := e.codes[cmd[0]]
	if !ok {
		return 127, nil
	}
	code := int(c.Load())
	if code != 0 {
		fmt.Fprintf(stderr, "%s is unhappy", cmd[0])
	}
	return code, nil
}

// appStatus is the status of web's container app in the last report.
func appStatus(srv *fakeServer) *corev1.ContainerStatus {
	ps := podStatus(srv, "web")
	if ps == nil || len(ps.Status.ContainerStatuses) == 0 {
		return nil
	}
	return &ps.Status.ContainerStatuses[0]
}

// podConditions maps web's pod podConditions to their status.
func podConditions(srv *fakeServer) map[corev1.PodConditionType]corev1.ConditionStatus {
	out := map[corev1.PodConditionType]corev1.ConditionStatus{}
	if ps := podStatus(srv, "web"); ps != nil {
		for _, c := range ps.Status.Conditions {
			out[c.Type] = c.Status
		}
	}
	return out
}

func reportedReady(srv *fakeServer, ready bool) bool {
	cs := appStatus(srv)
	want := map[bool]corev1.ConditionStatus{true: corev1.ConditionTrue, false: corev1.ConditionFalse}[ready]
	conds := podConditions(srv)
	return cs != nil && cs.State.Running != nil && cs.Ready == ready &&
		conds[corev1.PodReady] == want && conds[corev1.ContainersReady] == want
}

func TestReadinessProbeGatesReady(t *testing.T) {
	srv := newFakeServer(t, node)
	p := probedPod(func(c *corev1.Container) { c.ReadinessProbe = testProbe(execProbeHandler("ready"), 2) })
	id := cid(p, "app")
	srv.SetDesired("c1", p)
	rt := fakeruntime.New()
	codes := newProbeExitCodes("ready")
	codes.set("ready", 1)
	rt.HandleExec(id, codes.handle)
	cfg := testConfig(t, srv, t.TempDir())
	cfg.ReportInterval = time.Hour // only prompt reports
	startProbing(t, cfg, rt)

	eventually(t, "several failed readiness checks", func() bool { return countCalls(rt.Calls(), "exec "+id+" ready") >= 3 })
	eventually(t, "running, not ready", func() bool { return reportedReady(srv, false) })
	if cs := appStatus(srv); cs.Started == nil || !*cs.Started || srv.LastStatus().Pods[0].Status.Phase != corev1.PodRunning {
		t.Errorf("a running container failing readiness: %+v, want started and the pod Running", cs)
	}

	codes.set("ready", 0)
	eventually(t, "reported ready", func() bool { return reportedReady(srv, true) })
	codes.set("ready", 1)
	eventually(t, "reported not ready again", func() bool { return reportedReady(srv, false) })
	if n := countCalls(rt.Calls(), "create "+id); n != 1 || countCalls(rt.Calls(), "stop "+id) != 0 {
		t.Errorf("readiness failures touched the container: %v", rt.Calls())
	}
}

func TestLivenessProbeRestarts(t *testing.T) {
	srv := newFakeServer(t, node)
	p := probedPod(func(c *corev1.Container) { c.LivenessProbe = testProbe(execProbeHandler("alive"), 2) })
	id := cid(p, "app")
	srv.SetDesired("c1", p)
	rt := fakeruntime.New()
	codes := newProbeExitCodes("alive")
	rt.HandleExec(id, codes.handle)
	startProbing(t, testConfig(t, srv, t.TempDir()), rt)

	eventually(t, "liveness checked", func() bool { return countCalls(rt.Calls(), "exec "+id+" alive") >= 3 })
	eventually(t, "ready", func() bool { return reportedReady(srv, true) })
	codes.set("alive", 1)
	eventually(t, "the unhealthy container stopped", func() bool { return hasCall(rt.Calls(), "stop "+id) })
	codes.set("alive", 0)
	eventually(t, "restarted", func() bool { return countCalls(rt.Calls(), "create "+id) == 2 && running(rt, id) })
	eventually(t, "the restart reported with the probe as the reason", func() bool {
		cs := appStatus(srv)
		if cs == nil || cs.RestartCount != 1 || cs.State.Running == nil || cs.LastTerminationState.Terminated == nil {
			return false
		}
		last := cs.LastTerminationState.Terminated
		return last.Reason == "LivenessProbeFailed" && last.ExitCode == 143 &&
			strings.Contains(last.Message, "failed its liveness probe 2 times in a row") && strings.Contains(last.Message, "alive is unhappy")
	})
	// The new run is probed, passes, and stays.
	n := countCalls(rt.Calls(), "exec "+id+" alive")
	eventually(t, "the new run probed", func() bool { return countCalls(rt.Calls(), "exec "+id+" alive") >= n+3 })
	if got := countCalls(rt.Calls(), "stop "+id); got != 1 {
		t.Errorf("%d stops, want 1: %v", got, rt.Calls())
	}
}

func TestStartupProbeGatesLiveness(t *testing.T) {
	srv := newFakeServer(t, node)
	p := probedPod(func(c *corev1.Container) {
		c.StartupProbe = testProbe(execProbeHandler("started"), 1000)
		c.LivenessProbe = testProbe(execProbeHandler("alive"), 1)
	})
	id := cid(p, "app")
	srv.SetDesired("c1", p)
	rt := fakeruntime.New()
	codes := newProbeExitCodes("started", "alive")
	codes.set("started", 1)
	codes.set("alive", 1) // would kill at once if checked
	rt.HandleExec(id, codes.handle)
	startProbing(t, testConfig(t, srv, t.TempDir()), rt)

	eventually(t, "startup checked", func() bool { return countCalls(rt.Calls(), "exec "+id+" started") >= 5 })
	eventually(t, "reported not started", func() bool {
		cs := appStatus(srv)
		return cs != nil && cs.State.Running != nil && cs.Started != nil && !*cs.Started && !cs.Ready
	})
	if n := countCalls(rt.Calls(), "exec "+id+" alive"); n != 0 || hasCall(rt.Calls(), "stop "+id) {
		t.Fatalf("liveness checked %d times before the startup probe passed: %v", n, rt.Calls())
	}

	codes.set("started", 0)
	eventually(t, "liveness checked and the container killed", func() bool { return hasCall(rt.Calls(), "stop "+id) })
	calls := rt.Calls()
	for i, c := range calls {
		if c == "stop "+id {
			calls = calls[:i]
			break
		}
	}
	if n := countCalls(calls, "exec "+id+" alive"); n != 1 {
		t.Errorf("%d liveness checks before the kill, want 1 (failureThreshold 1)", n)
	}
	eventually(t, "restarted with the liveness probe as the reason", func() bool {
		cs := appStatus(srv)
		return cs != nil && cs.RestartCount >= 1 && cs.LastTerminationState.Terminated != nil &&
			cs.LastTerminationState.Terminated.Reason == "LivenessProbeFailed"
	})
}

func TestStartupProbeFailureKills(t *testing.T) {
	srv := newFakeServer(t, node)
	p := probedPod(func(c *corev1.Container) {
		c.StartupProbe = testProbe(execProbeHandler("started"), 3)
		c.ReadinessProbe = testProbe(execProbeHandler("ready"), 1)
	})
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.SpecHash = api.HashObject(p.Spec)
	id := cid(p, "app")
	srv.SetDesired("c1", p)
	rt := fakeruntime.New()
	codes := newProbeExitCodes("started", "ready")
	codes.set("started", 1)
	rt.HandleExec(id, codes.handle)
	startProbing(t, testConfig(t, srv, t.TempDir()), rt)

	eventually(t, "terminated by the startup probe", func() bool {
		cs := appStatus(srv)
		return cs != nil && cs.State.Terminated != nil && cs.State.Terminated.Reason == "StartupProbeFailed" &&
			strings.Contains(cs.State.Terminated.Message, "failed its startup probe 3 times in a row")
	})
	if n := countCalls(rt.Calls(), "exec "+id+" started"); n != 3 {
		t.Errorf("%d startup checks, want 3", n)
	}
	if n := countCalls(rt.Calls(), "exec "+id+" ready"); n != 0 {
		t.Errorf("readiness checked %d times before the container started", n)
	}
	if ps := podStatus(srv, "web"); ps.Status.Phase != corev1.PodFailed {
		t.Errorf("phase %s, want Failed (restartPolicy Never)", ps.Status.Phase)
	}
	if n := countCalls(rt.Calls(), "create "+id); n != 1 {
		t.Errorf("restartPolicy Never: %d creates", n)
	}
}

func TestProbesStopWithTheirContainer(t *testing.T) {
	srv := newFakeServer(t, node)
	p := probedPod(func(c *corev1.Container) { c.ReadinessProbe = testProbe(execProbeHandler("ready"), 1) })
	id := cid(p, "app")
	srv.SetDesired("c1", p)
	rt := fakeruntime.New()
	codes := newProbeExitCodes("ready")
	rt.HandleExec(id, codes.handle)
	stop := startProbing(t, testConfig(t, srv, t.TempDir()), rt)
	eventually(t, "ready", func() bool { return reportedReady(srv, true) })

	// The container exits on its own: no checks until it runs again.
	if err := rt.Exit(id, 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "reported not ready", func() bool {
		cs := appStatus(srv)
		return cs != nil && cs.State.Running == nil && !cs.Ready
	})
	time.Sleep(5 * probeSecond) // let a stale check end
	n := countCalls(rt.Calls(), "exec "+id)
	eventually(t, "restarted and probed again", func() bool { return countCalls(rt.Calls(), "exec "+id) > n && running(rt, id) })

	// The pod goes away: its probes stop.
	srv.SetDesired("c2")
	eventually(t, "removed", func() bool { return !exists(rt, id) })
	time.Sleep(5 * probeSecond) // let a check begun before the removal end
	n = countCalls(rt.Calls(), "exec "+id)
	time.Sleep(10 * probeSecond)
	if m := countCalls(rt.Calls(), "exec "+id); m != n {
		t.Errorf("%d checks of a removed container", m-n)
	}
	stop()
}

func TestProbesResumeAfterAgentRestart(t *testing.T) {
	srv := newFakeServer(t, node)
	p := probedPod(func(c *corev1.Container) {
		c.StartupProbe = testProbe(execProbeHandler("started"), 100)
		c.ReadinessProbe = testProbe(execProbeHandler("ready"), 1)
		c.LivenessProbe = testProbe(execProbeHandler("alive"), 1)
	})
	id := cid(p, "app")
	srv.SetDesired("c1", p)
	rt := fakeruntime.New()
	codes := newProbeExitCodes("started", "ready", "alive")
	rt.HandleExec(id, codes.handle)
	cfg := testConfig(t, srv, t.TempDir())
	stop := startProbing(t, cfg, rt)
	eventually(t, "ready", func() bool { return reportedReady(srv, true) })
	stop()
	n := len(rt.Calls())
	time.Sleep(5 * probeSecond)
	if calls := rt.Calls()[n:]; len(calls) != 0 {
		t.Fatalf("checks after the agent stopped: %v", calls)
	}

	// The restarted agent adopts the container, resumes its results (no
	// startup probe again, no not-ready blip) and probes it again.
	reports := len(srv.Statuses())
	cfg.Token = ""
	startProbing(t, cfg, rt)
	eventually(t, "readiness and liveness checked again", func() bool {
		calls := rt.Calls()[n:]
		return countCalls(calls, "exec "+id+" ready") >= 3 && countCalls(calls, "exec "+id+" alive") >= 3
	})
	eventually(t, "reports from the restarted agent", func() bool { return len(srv.Statuses()) > reports })
	for _, st := range srv.Statuses()[reports:] {
		cs := st.Pods[0].Status.ContainerStatuses[0]
		if !cs.Ready || cs.Started == nil || !*cs.Started {
			t.Errorf("the restarted agent reported %+v, want ready and started throughout", cs)
		}
	}
	if calls := rt.Calls()[n:]; countCalls(calls, "exec "+id+" started") != 0 || countCalls(calls, "create ") != 0 {
		t.Errorf("restarted agent re-ran the startup probe or recreated the container: %v", calls)
	}

	// A failing liveness probe of the adopted container still restarts it.
	codes.set("alive", 1)
	eventually(t, "adopted container restarted", func() bool { return countCalls(rt.Calls(), "create "+id) == 2 })
}

// TestNetworkProbes: httpGet (by port name) and tcpSocket probes reach the
// pod at 127.0.0.1 in host-network mode.
func TestNetworkProbes(t *testing.T) {
	var healthy atomic.Bool
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ready" || !healthy.Load() {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
		}
	}))
	defer hs.Close()
	_, port, _ := net.SplitHostPort(hs.Listener.Addr().String())
	portNum, _ := strconv.Atoi(port)

	srv := newFakeServer(t, node)
	p := probedPod(func(c *corev1.Container) {
		c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: int32(portNum)}}
		c.ReadinessProbe = testProbe(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}}, 1)
		c.LivenessProbe = testProbe(corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(portNum)}}, 3)
	})
	id := cid(p, "app")
	srv.SetDesired("c1", p)
	rt := fakeruntime.New()
	startProbing(t, testConfig(t, srv, t.TempDir()), rt)
	eventually(t, "running", func() bool { return running(rt, id) })
	time.Sleep(10 * probeSecond)
	if !reportedReady(srv, false) {
		t.Errorf("ready while the HTTP probe gets 503: %+v", appStatus(srv))
	}
	healthy.Store(true)
	eventually(t, "ready", func() bool { return reportedReady(srv, true) })

	// The port closes: liveness fails and the container is restarted.
	hs.Close()
	eventually(t, "restarted", func() bool {
		cs := appStatus(srv)
		return cs != nil && cs.RestartCount >= 1 && cs.LastTerminationState.Terminated != nil &&
			cs.LastTerminationState.Terminated.Reason == "LivenessProbeFailed" &&
			strings.Contains(cs.LastTerminationState.Terminated.Message, "connection refused")
	})
}
