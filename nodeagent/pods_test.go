package nodeagent

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func testPod(name, uid string, policy corev1.RestartPolicy, containers ...string) api.Pod {
	p := api.Pod{Namespace: "default", Name: name, UID: uid, SpecHash: "hash-" + uid}
	p.Spec.RestartPolicy = policy
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "registry.local/" + c + ":1"})
	}
	return p
}

// ctr is a runtime container of pod p's container c.
func ctr(p api.Pod, c string, state ContainerState, mod ...func(*ContainerInfo)) ContainerInfo {
	info := ContainerInfo{
		ID:     ContainerID(p.Namespace, p.Name, p.UID, c),
		Image:  "registry.local/" + c + ":1",
		Labels: containerLabels(&p, c),
		State:  state,
	}
	if state != StateCreated {
		info.StartedAt = t0.Add(-time.Minute)
	}
	if state == StateExited {
		info.FinishedAt = t0.Add(-5 * time.Second)
		info.ExitCode = 1
	}
	for _, m := range mod {
		m(&info)
	}
	return info
}

func rec(p api.Pod, mod func(*containerRecord)) containerRecord {
	r := containerRecord{PodUID: p.UID, SpecHash: specHash(&p), GraceSeconds: 30}
	if mod != nil {
		mod(&r)
	}
	return r
}

func TestPlan(t *testing.T) {
	web := testPod("web", "1111aaaa-aaaa", "", "app", "sidecar")
	job := testPod("job", "2222aaaa-aaaa", corev1.RestartPolicyNever, "run")
	retry := testPod("retry", "3333aaaa-aaaa", corev1.RestartPolicyOnFailure, "run")
	webNewSpec := web
	webNewSpec.SpecHash = "hash-new"
	webNewUID := testPod("web", "1111aaaa-bbbb", "", "app", "sidecar") // same 8-char prefix
	gone := testPod("gone", "4444aaaa-aaaa", "", "app")
	idOf := func(p api.Pod, c string) string { return ContainerID(p.Namespace, p.Name, p.UID, c) }
	exitCode := func(code uint32) func(*ContainerInfo) { return func(i *ContainerInfo) { i.ExitCode = code } }
	ranFor := func(d time.Duration) func(*ContainerInfo) {
		return func(i *ContainerInfo) { i.StartedAt = i.FinishedAt.Add(-d) }
	}
	finishedAgo := func(d time.Duration) func(*ContainerInfo) {
		return func(i *ContainerInfo) { i.FinishedAt = t0.Add(-d) }
	}

	tests := []struct {
		name    string
		desired []api.Pod
		actual  []ContainerInfo
		records map[string]containerRecord
		want    []string
	}{
		{name: "nothing"},
		{
			name:    "missing containers are created",
			desired: []api.Pod{web},
			want:    []string{"create " + idOf(web, "app"), "create " + idOf(web, "sidecar")},
		},
		{
			name:    "running containers are adopted",
			desired: []api.Pod{web},
			actual:  []ContainerInfo{ctr(web, "app", StateRunning), ctr(web, "sidecar", StateRunning)},
		},
		{
			name:    "created container is started",
			desired: []api.Pod{web},
			actual:  []ContainerInfo{ctr(web, "app", StateCreated), ctr(web, "sidecar", StateRunning)},
			want:    []string{"start " + idOf(web, "app")},
		},
		{
			name:    "exited container waits for its backoff",
			desired: []api.Pod{web},
			actual:  []ContainerInfo{ctr(web, "app", StateExited, finishedAgo(9*time.Second)), ctr(web, "sidecar", StateRunning)},
		},
		{
			name:    "exited container restarts after the backoff",
			desired: []api.Pod{web},
			actual:  []ContainerInfo{ctr(web, "app", StateExited, finishedAgo(10*time.Second)), ctr(web, "sidecar", StateRunning)},
			want:    []string{"restart " + idOf(web, "app")},
		},
		{
			name:    "backoff doubles with consecutive crashes",
			desired: []api.Pod{web},
			actual:  []ContainerInfo{ctr(web, "app", StateExited, finishedAgo(39*time.Second)), ctr(web, "sidecar", StateRunning)},
			records: map[string]containerRecord{idOf(web, "app"): rec(web, func(r *containerRecord) { r.CrashCount = 2 })},
		},
		{
			name:    "doubled backoff elapsed",
			desired: []api.Pod{web},
			actual:  []ContainerInfo{ctr(web, "app", StateExited, finishedAgo(40*time.Second)), ctr(web, "sidecar", StateRunning)},
			records: map[string]containerRecord{idOf(web, "app"): rec(web, func(r *containerRecord) { r.CrashCount = 2 })},
			want:    []string{"restart " + idOf(web, "app")},
		},
		{
			name:    "a long run resets the backoff",
			desired: []api.Pod{web},
			actual:  []ContainerInfo{ctr(web, "app", StateExited, finishedAgo(10*time.Second), ranFor(10*time.Minute)), ctr(web, "sidecar", StateRunning)},
			records: map[string]containerRecord{idOf(web, "app"): rec(web, func(r *containerRecord) { r.CrashCount = 5 })},
			want:    []string{"restart " + idOf(web, "app")},
		},
		{
			name:    "restart policy Never leaves exited containers",
			desired: []api.Pod{job},
			actual:  []ContainerInfo{ctr(job, "run", StateExited, finishedAgo(time.Hour))},
		},
		{
			name:    "OnFailure restarts a failed container",
			desired: []api.Pod{retry},
			actual:  []ContainerInfo{ctr(retry, "run", StateExited, finishedAgo(time.Hour))},
			want:    []string{"restart " + idOf(retry, "run")},
		},
		{
			name:    "OnFailure leaves a succeeded container",
			desired: []api.Pod{retry},
			actual:  []ContainerInfo{ctr(retry, "run", StateExited, finishedAgo(time.Hour), exitCode(0))},
		},
		{
			name:   "undesired container is killed with the default grace",
			actual: []ContainerInfo{ctr(gone, "app", StateRunning)},
			want:   []string{"kill " + idOf(gone, "app") + " 30s"},
		},
		{
			name:    "undesired container is killed with its recorded grace",
			actual:  []ContainerInfo{ctr(gone, "app", StateRunning)},
			records: map[string]containerRecord{idOf(gone, "app"): rec(gone, func(r *containerRecord) { r.GraceSeconds = 3 })},
			want:    []string{"kill " + idOf(gone, "app") + " 3s"},
		},
		{
			name:    "changed spec hash replaces the container: kill first",
			desired: []api.Pod{webNewSpec},
			actual:  []ContainerInfo{ctr(web, "app", StateRunning), ctr(web, "sidecar", StateRunning)},
			want:    []string{"kill " + idOf(web, "app") + " 30s", "kill " + idOf(web, "sidecar") + " 30s"},
		},
		{
			name:    "new UID with the same prefix replaces the container",
			desired: []api.Pod{webNewUID},
			actual:  []ContainerInfo{ctr(web, "app", StateRunning), ctr(webNewUID, "sidecar", StateRunning)},
			want:    []string{"kill " + idOf(web, "app") + " 30s"},
		},
		{
			name:    "failed creation waits for its retry time",
			desired: []api.Pod{job},
			records: map[string]containerRecord{idOf(job, "run"): rec(job, func(r *containerRecord) {
				r.Failures, r.NextAttempt, r.WaitingReason = 1, t0.Add(time.Second), reasonErrImagePull
			})},
		},
		{
			name:    "failed creation is retried after its retry time",
			desired: []api.Pod{job},
			records: map[string]containerRecord{idOf(job, "run"): rec(job, func(r *containerRecord) {
				r.Failures, r.NextAttempt, r.WaitingReason = 1, t0, reasonErrImagePull
			})},
			want: []string{"create " + idOf(job, "run")},
		},
		{
			name:    "a record of another incarnation is ignored",
			desired: []api.Pod{webNewSpec},
			records: map[string]containerRecord{idOf(web, "app"): rec(web, func(r *containerRecord) {
				r.Failures, r.NextAttempt = 3, t0.Add(time.Hour)
			})},
			want: []string{"create " + idOf(web, "app"), "create " + idOf(web, "sidecar")},
		},
		{
			name:    "kills come first, sorted; other pods are unaffected",
			desired: []api.Pod{job, web},
			actual: []ContainerInfo{
				ctr(web, "app", StateRunning),
				ctr(testPod("z", "uid-z", "", "c"), "c", StateExited),
				ctr(gone, "app", StateRunning),
			},
			want: []string{
				"kill " + idOf(gone, "app") + " 30s",
				"kill " + idOf(testPod("z", "uid-z", "", "c"), "c") + " 30s",
				"create " + idOf(job, "run"),
				"create " + idOf(web, "sidecar"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acts := plan(planInput{
				Desired: tt.desired,
				Actual:  tt.actual,
				Records: tt.records,
				Now:     t0,
				Backoff: backoffPolicy{Base: 10 * time.Second, Max: 5 * time.Minute},
			})
			var got []string
			for _, a := range acts {
				s := a.Kind.String() + " " + a.ID
				if a.Kind == actKill {
					s += " " + a.Grace.String()
				}
				if a.Kind != actKill && (a.Pod == nil || a.Container == nil) {
					t.Errorf("%s has no pod or container", s)
				}
				if a.Kind == actRestart && a.Exited == nil {
					t.Errorf("%s has no exited run", s)
				}
				got = append(got, s)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("plan:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestRecordOutcome(t *testing.T) {
	p := testPod("web", "1111aaaa-aaaa", "", "app")
	grace := int64(7)
	p.Spec.TerminationGracePeriodSeconds = &grace
	id := ContainerID(p.Namespace, p.Name, p.UID, "app")
	b := backoffPolicy{Base: 10 * time.Second, Max: 5 * time.Minute}
	st := newState()
	create := action{Kind: actCreate, ID: id, Pod: &p, Container: &p.Spec.Containers[0]}

	pullErr := fmt.Errorf("image hook: %w", &waitingError{Reason: reasonErrImagePull, Err: fmt.Errorf("boom")})
	recordOutcome(st, create, outcome{Err: pullErr}, t0, b)
	recordOutcome(st, create, outcome{Err: pullErr}, t0.Add(time.Minute), b)
	r := st.Containers[id]
	if r.Failures != 2 || !r.NextAttempt.Equal(t0.Add(time.Minute+20*time.Second)) || r.WaitingReason != reasonErrImagePull || r.GraceSeconds != 7 {
		t.Fatalf("after two failed pulls: %+v", r)
	}
	recordOutcome(st, create, outcome{Started: true}, t0.Add(2*time.Minute), b)
	if r := st.Containers[id]; r.Failures != 0 || r.WaitingReason != "" || !r.NextAttempt.IsZero() {
		t.Fatalf("after success: %+v", r)
	}

	exited := ctr(p, "app", StateExited)
	restart := action{Kind: actRestart, ID: id, Pod: &p, Container: &p.Spec.Containers[0], Exited: &exited}
	recordOutcome(st, restart, outcome{Removed: true, Started: true}, t0, b)
	recordOutcome(st, restart, outcome{Removed: true, Started: true}, t0, b)
	r = st.Containers[id]
	if r.RestartCount != 2 || r.CrashCount != 2 || r.LastTermination == nil || r.LastTermination.ExitCode != 1 || r.LastTermination.Reason != "Error" {
		t.Fatalf("after two restarts: %+v", r)
	}
	// A restart that could not remove the old run counts nothing.
	recordOutcome(st, restart, outcome{Err: fmt.Errorf("remove failed")}, t0, b)
	if r := st.Containers[id]; r.RestartCount != 2 || r.Failures != 1 || r.WaitingReason != reasonCreateContainerError {
		t.Fatalf("after failed restart: %+v", r)
	}
	// A new spec starts a fresh record.
	p2 := p
	p2.SpecHash = "other"
	recordOutcome(st, action{Kind: actCreate, ID: id, Pod: &p2, Container: &p2.Spec.Containers[0]}, outcome{Started: true}, t0, b)
	if r := st.Containers[id]; r.RestartCount != 0 || r.SpecHash != "other" {
		t.Fatalf("after new spec: %+v", r)
	}
}

var containerdID = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`)

func TestContainerID(t *testing.T) {
	long := strings.Repeat("a", 63)
	tests := []struct {
		ns, name, uid, c string
		want             string // "" = only check validity
	}{
		{"default", "web-7d9f-abcde", "0123456789abcdef", "app", "default_web-7d9f-abcde_01234567_app"},
		{"default", "web", "", "app", "default_web_app"},
		{"kube.system", "a.b", "12345678-aaaa", "c", "kube.system_a.b_12345678_c"},
		{long, long + "." + long, "0123456789abcdef", long, ""},
		{"default", "web--x", "0123456789abcdef", "app", ""},
		{"Ünïcode", "we b", "uid/with/slashes", "_", ""},
		{"", "", "", "", ""},
	}
	for _, tt := range tests {
		got := ContainerID(tt.ns, tt.name, tt.uid, tt.c)
		if !containerdID.MatchString(got) || len(got) > maxIDLen {
			t.Errorf("ContainerID(%q, %q, %q, %q) = %q: not a valid containerd id", tt.ns, tt.name, tt.uid, tt.c, got)
		}
		if tt.want != "" && got != tt.want {
			t.Errorf("ContainerID(%q, %q, %q, %q) = %q, want %q", tt.ns, tt.name, tt.uid, tt.c, got, tt.want)
		}
		if again := ContainerID(tt.ns, tt.name, tt.uid, tt.c); again != got {
			t.Errorf("ContainerID is not deterministic: %q then %q", got, again)
		}
	}
	// Names that collapse to the same readable form still differ.
	if a, b := ContainerID("d", "web--x", "u", "c"), ContainerID("d", "web-x", "u", "c"); a == b {
		t.Errorf("web--x and web-x share the id %q", a)
	}
	// Truncated ids differ by container.
	if a, b := ContainerID(long, long, "u", long+"1"), ContainerID(long, long, "u", long+"2"); a == b {
		t.Errorf("long names share the id %q", a)
	}
}

func FuzzContainerID(f *testing.F) {
	f.Add("default", "web", "0123456789", "app")
	f.Add("", "..--__", "-", ".")
	f.Fuzz(func(t *testing.T, ns, name, uid, c string) {
		id := ContainerID(ns, name, uid, c)
		if !containerdID.MatchString(id) || len(id) > maxIDLen {
			t.Fatalf("ContainerID(%q, %q, %q, %q) = %q: not a valid containerd id", ns, name, uid, c, id)
		}
	})
}
