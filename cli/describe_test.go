package cli

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/moor-dev/moor/api"
)

// fakeDescribe builds `moor describe` over r with the fixed clock; the
// context's namespace is "default".
func fakeDescribe(r viewReader) func(Streams) *cobra.Command {
	return func(s Streams) *cobra.Command {
		return newDescribeCommand(s, func(o Options) (viewReader, string, error) {
			return r, effectiveNamespace(o, ""), nil
		}, func() time.Time { return testNow })
	}
}

func TestDescribeGolden(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr bool
	}{
		{"pod", []string{"describe", "pod", "web-" + webHash + "-abcde"}, false},
		{"pods-waiting", []string{"describe", "pod/worker-0", "po/big-0", "-n", "shop"}, false},
		{"pods-terminating-init", []string{"describe", "pods", "old-web", "api-0"}, false},
		{"pods-prefix", []string{"describe", "pods", "web-7d9f"}, false},
		{"deployment", []string{"describe", "deployment", "web"}, false},
		{"deployments-namespace", []string{"describe", "deploy", "-n", "kube-system"}, false},
		{"services", []string{"describe", "svc", "web", "lb", "peers"}, false},
		{"nodes", []string{"describe", "node", "node-1", "node-3"}, false},
		{"jobs", []string{"describe", "job", "once", "tick-29455385"}, false},
		{"jobs-failed-queue", []string{"describe", "jobs", "-n", "ops"}, false},
		{"cronjobs-all-namespaces", []string{"describe", "cj", "-A"}, false},
		{"secret", []string{"describe", "secret", "db", "registry", "unread"}, false},
		{"secret-lease-plain", []string{"describe", "secret/db-dynamic", "secrets/dev", "-n", "shop"}, false},
		{"types-mixed", []string{"describe", "svc/peers", "deploy/dns", "secret/dev", "-n", "kube-system"}, true},
		{"secret-not-found", []string{"describe", "secret", "db", "nope"}, true},
		{"pod-not-found", []string{"describe", "pod", "nope"}, true},
		{"no-resources", []string{"describe", "pods", "-n", "nothing-here"}, false},
		{"no-type", []string{"describe"}, true},
		{"unknown-type", []string{"describe", "ingress", "web"}, true},
		{"commit", []string{"describe", "commit", "abc1234"}, true},
		{"name-with-all-namespaces", []string{"describe", "pod", "web", "-A"}, true},
		{"type-after-name", []string{"describe", "pod", "deploy/web"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runRoot(t, fakeDescribe(describeFixtures()), tc.args...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v\n%s", err, tc.wantErr, got)
			}
			checkGolden(t, "describe-"+tc.name, []byte(got))
		})
	}
}

func TestDescribeProbe(t *testing.T) {
	tmpl := webTemplate(webHash)
	web := &tmpl.Spec.Containers[0]
	cases := []struct {
		name string
		got  string
		want string
	}{
		{"readiness http-get by port name", describeProbe(web.ReadinessProbe, true),
			"http-get http://:http/ delay=0s timeout=1s period=2s #success=1 #failure=3"},
		{"liveness tcp ignores successThreshold", describeProbe(web.LivenessProbe, false),
			"tcp-socket :8080 delay=10s timeout=1s period=10s #success=1 #failure=3"},
		{"startup exec", describeProbe(web.StartupProbe, false),
			"exec [cat /tmp/ready] delay=0s timeout=1s period=1s #success=1 #failure=30"},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestDescribeServerError(t *testing.T) {
	r := &fakeReader{err: &APIError{StatusCode: http.StatusForbidden, Message: "client certificate is not in group moor:admins"}}
	got, err := runRoot(t, fakeDescribe(r), "describe", "pod", "web")
	if err == nil {
		t.Fatal("want an error")
	}
	if want := "--- stderr\nError from server (Forbidden): client certificate is not in group moor:admins\n"; !strings.Contains(got, want) {
		t.Errorf("got\n%s\nwant %q", got, want)
	}
}

// planted is a secret value a careless server could send along; describe
// must print none of it.
const planted = "hunter2-PLANTED"

// TestDescribeNeverPrintsSecretValues runs the real `moor describe`
// against a TLS server whose views carry a value wherever one could hide:
// a Secret's data and stringData (unknown to api.SecretView) and an env
// var that has both a value and a secretKeyRef. Describe prints the
// reference, key names and versions, never the value.
func TestDescribeNeverPrintsSecretValues(t *testing.T) {
	p := newTestPKI(t)
	env := `"env":[{"name":"DB_PASSWORD","value":"` + planted + `","valueFrom":{"secretKeyRef":{"name":"db","key":"password"}}}],` +
		`"envFrom":[{"secretRef":{"name":"db"}}]`
	srv := serveBodies(t, p, plantedViews(env))
	path := p.adminConfigFile(t, srv.URL)
	got, err := runRoot(t, NewDescribeCommand, "--config", path, "describe", "pods,deployments,jobs,cronjobs,secrets")
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	for _, want := range []string{
		"DB_PASSWORD:  <set to the key 'password' in secret 'db'>  Optional: false",
		"db  Secret  Optional: false",
		"SecretName:  db",
		"Keys:       password",
	} {
		if c := strings.Count(got, want); c == 0 {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "<set to the key 'password' in secret 'db'>") != 4 {
		t.Errorf("want the reference in the pod, the Deployment, the Job and the CronJob:\n%s", got)
	}
	for _, leak := range []string{planted, "hunter2", "aHVudGVy"} {
		if strings.Contains(got, leak) {
			t.Errorf("output holds the secret value %q:\n%s", leak, got)
		}
	}
}

// plantedViews are the answers, by API path, of a server whose pod app-0,
// Deployment, Job and CronJob app (their container has env, a JSON
// member list) and Secret db carry the planted value wherever one could
// hide: a Secret's data and stringData and a node's report.
func plantedViews(env string) map[string]string {
	container := `{"name":"app","image":"app:1",` + env + `}`
	template := `{"metadata":{"labels":{"app":"app"}},"spec":{"containers":[` + container + `]}}`
	return map[string]string{
		api.PathPods: `[{"pod":{"metadata":{"name":"app-0","namespace":"default"},"spec":{"nodeName":"node-1","containers":[` + container + `],` +
			`"volumes":[{"name":"db","secret":{"secretName":"db"}}]},"status":{"phase":"Running"}},"commit":"` + shaDeployed + `"}]`,
		api.PathDeployments: `[{"deployment":{"metadata":{"name":"app","namespace":"default"},"spec":{"template":` + template + `}},"commit":"` + shaDeployed + `"}]`,
		api.PathJobs:        `[{"job":{"metadata":{"name":"app","namespace":"default"},"spec":{"template":` + template + `}},"commit":"` + shaDeployed + `"}]`,
		api.PathCronJobs: `[{"cronJob":{"metadata":{"name":"app","namespace":"default"},"spec":{"schedule":"@daily","jobTemplate":{"spec":{"template":` +
			template + `}}}},"commit":"` + shaDeployed + `"}]`,
		api.PathSecrets: `[{"namespace":"default","name":"db","type":"Opaque","plainKeys":["password"],"commit":"` + shaDeployed + `",` +
			`"data":{"password":"aHVudGVyMi1QTEFOVEVE"},"stringData":{"password":"` + planted + `"},` +
			`"nodes":[{"node":"node-1","pods":["app-0"],"keys":["password"],"value":"` + planted + `"}]}]`,
	}
}

// serveBodies serves bodies by URL path over the test PKI's TLS, as the
// server's admin API would; other paths are 404.
func serveBodies(t *testing.T, p *testPKI, bodies map[string]string) *httptest.Server {
	t.Helper()
	for path, body := range bodies {
		if !json.Valid([]byte(body)) {
			t.Fatalf("fixture for %s is not JSON", path)
		}
	}
	srv := startServer(t, p, func(w http.ResponseWriter, r *http.Request) {
		body, ok := bodies[r.URL.Path]
		if !ok {
			http.Error(w, `{"error":"no such path"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	})
	return srv
}

func TestPickDescribed(t *testing.T) {
	items := []describeItem{{name: "web-1"}, {name: "web-2"}, {name: "webhook"}, {name: "db"}}
	names := func(its []describeItem) string {
		var n []string
		for _, it := range its {
			n = append(n, it.name)
		}
		return strings.Join(n, ",")
	}
	cases := []struct {
		names    []string
		byPrefix bool
		want     string
		missing  int
	}{
		{nil, true, "web-1,web-2,webhook,db", 0},
		{[]string{"web-1"}, true, "web-1", 0},
		{[]string{"web-"}, true, "web-1,web-2", 0},
		{[]string{"web"}, true, "web-1,web-2,webhook", 0},
		{[]string{"web"}, false, "", 1},           // TYPE/NAME form: exact only
		{[]string{"web-", "db"}, true, "db", 1},   // several names: exact only
		{[]string{"nope"}, true, "", 1},           // nothing starts with it
		{[]string{"db", "db"}, false, "db,db", 0}, // asked twice, shown twice
		{[]string{"db", "nope"}, false, "db", 1},  // found ones survive
		{[]string{"WEB"}, true, "", 1},            // names are case-sensitive
		{[]string{"web-1", "web-2"}, true, "web-1,web-2", 0},
	}
	for _, tc := range cases {
		found, missing := pickDescribed(items, tc.names, "pods", tc.byPrefix)
		if got := names(found); got != tc.want || len(missing) != tc.missing {
			t.Errorf("pickDescribed(%q, byPrefix=%v) = %q, %d missing; want %q, %d", tc.names, tc.byPrefix, got, len(missing), tc.want, tc.missing)
		}
		for _, err := range missing {
			var nf *NotFoundError
			if !errors.As(err, &nf) {
				t.Errorf("missing error %v is not a *NotFoundError", err)
			}
		}
	}
}

func TestPodEvents(t *testing.T) {
	withProbe := pod("default", "p", "node-1", "app")
	withProbe.Spec.Containers[0].ReadinessProbe = &corev1.Probe{}
	cases := []struct {
		name   string
		pod    corev1.Pod
		status corev1.ContainerStatus
		want   string // "" for no event
	}{
		{"creating is quiet", withProbe, corev1.ContainerStatus{Name: "app",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}, ""},
		{"ready is quiet", withProbe, running("app", 0), ""},
		{"back-off names the last exit", withProbe, corev1.ContainerStatus{Name: "app",
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137}}},
			"Warning|CrashLoopBackOff|node/node-1|container app is waiting; it last exited with code 137"},
		{"image pull message", withProbe, corev1.ContainerStatus{Name: "app",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "registry.local/app:1: not found"}}},
			"Warning|ErrImagePull|node/node-1|container app: registry.local/app:1: not found"},
		{"failed exit", withProbe, corev1.ContainerStatus{Name: "app",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}}},
			"Warning|Error|node/node-1|container app exited with code 2"},
		{"completed is quiet", withProbe, corev1.ContainerStatus{Name: "app",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}}, ""},
		{"startup probe pending", withProbe, corev1.ContainerStatus{Name: "app", Started: ptr.To(false),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
			"Normal|Starting|node/node-1|container app runs; its startup probe has not passed yet"},
		{"readiness failing", withProbe, corev1.ContainerStatus{Name: "app", Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
			"Warning|Unhealthy|node/node-1|container app runs but its readiness probe is not passing"},
		{"not ready without a probe is quiet", pod("default", "p", "node-1", "app"), corev1.ContainerStatus{Name: "app",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.pod
			p.Status.ContainerStatuses = []corev1.ContainerStatus{tc.status}
			var got []string
			for _, r := range podEvents(&p) {
				got = append(got, strings.Join(r, "|"))
			}
			if strings.Join(got, "\n") != tc.want {
				t.Errorf("events = %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzParseDescribeArgs(f *testing.F) {
	f.Add("pods,deploy", "web")
	f.Add("pod/web", "secret/db")
	f.Add("commit", "abc")
	f.Add(",", "/")
	f.Fuzz(func(t *testing.T, a, b string) {
		req, err := parseDescribeArgs([]string{a, b})
		if err != nil {
			return
		}
		if len(req.Queries) == 0 {
			t.Errorf("parseDescribeArgs(%q, %q) returned no queries and no error", a, b)
		}
		for _, q := range req.Queries {
			if q.Kind == kindCommit {
				t.Errorf("parseDescribeArgs(%q, %q) accepted commits", a, b)
			}
		}
	})
}
