package batch

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/*.txt with the actual output")

// TestScripts runs the timelines in testdata/*.txt. Each case is a command
// line, "----", and the expected output up to a blank line; lines starting
// with # are comments. Every tick or plan starts from persisted state only
// (CronJob/Job status and child Jobs/pod reports), as a restarted server
// would. Rewrite expectations with `go test -run TestScripts -update`.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScript(t, file)
		})
	}
}

type scriptCase struct {
	comments []string
	cmd      string
	want     string
	line     int
}

func parseScript(t *testing.T, text string) []scriptCase {
	var cases []scriptCase
	var cur *scriptCase
	inOutput := false
	for i, l := range strings.Split(text, "\n") {
		switch {
		case inOutput && l == "":
			inOutput, cur = false, nil
		case inOutput:
			cur.want += l + "\n"
		case l == "----":
			if cur == nil || cur.cmd == "" {
				t.Fatalf("line %d: ---- without a command", i+1)
			}
			inOutput = true
		case strings.HasPrefix(l, "#") || l == "":
			if cur == nil {
				cases = append(cases, scriptCase{})
				cur = &cases[len(cases)-1]
			}
			cur.comments = append(cur.comments, l)
		default:
			if cur == nil {
				cases = append(cases, scriptCase{})
				cur = &cases[len(cases)-1]
			}
			cur.cmd, cur.line = l, i+1
		}
	}
	return cases
}

func runScript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cases := parseScript(t, string(data))
	w := &world{t: t, jobs: map[string]*batchv1.Job{}, pods: map[string]PodState{}, labels: map[string]string{}}
	var out strings.Builder
	for _, c := range cases {
		for _, l := range c.comments {
			out.WriteString(l + "\n")
		}
		if c.cmd == "" {
			continue
		}
		got := w.run(c.cmd)
		fmt.Fprintf(&out, "%s\n----\n%s\n", c.cmd, got)
		if !*update && got != c.want {
			t.Errorf("%s:%d: %s\ngot:\n%swant:\n%s", file, c.line, c.cmd, got, c.want)
		}
	}
	if *update {
		if err := os.WriteFile(file, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// world is the persisted state a server would keep between plans.
type world struct {
	t      *testing.T
	cj     *batchv1.CronJob
	jobs   map[string]*batchv1.Job // the CronJob's children
	job    *batchv1.Job            // the Job under test
	pods   map[string]PodState
	labels map[string]string // pod name -> "index/attempt"
}

func (w *world) run(cmd string) string {
	w.t.Helper()
	f := strings.Fields(cmd)
	args := map[string]string{}
	for _, a := range f[1:] {
		k, v, _ := strings.Cut(a, "=")
		if k == "schedule" {
			v = strings.ReplaceAll(v, "_", " ")
		}
		args[k] = v
	}
	switch f[0] {
	case "cronjob":
		w.cj, w.jobs = newTestCronJob(w.t, args), map[string]*batchv1.Job{}
		return "ok\n"
	case "suspend": // suspend true|false: edit the CronJob or Job in Git
		if w.cj != nil {
			w.cj.Spec.Suspend = ptr(f[1] == "true")
		}
		if w.job != nil {
			w.job.Spec.Suspend = ptr(f[1] == "true")
		}
		return "ok\n"
	case "tick":
		return w.tick(w.time(f[1]))
	case "finish":
		return w.finish(f[1], f[2], w.time(f[3]))
	case "job":
		w.job, w.pods = newTestJob(w.t, args), map[string]PodState{}
		return "ok\n"
	case "plan":
		return w.plan(w.time(f[1]))
	case "report":
		return w.report(f[1], corev1.PodPhase(f[2]), args)
	}
	w.t.Fatalf("unknown command %q", cmd)
	return ""
}

func (w *world) time(s string) time.Time { return mustTime(w.t, s) }

func (w *world) atoi(s string) int32 {
	n, err := strconv.Atoi(s)
	if err != nil {
		w.t.Fatal(err)
	}
	return int32(n)
}

func newTestCronJob(t *testing.T, args map[string]string) *batchv1.CronJob {
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: args["name"], Namespace: "default",
		CreationTimestamp: metav1.Time{Time: mustTime(t, args["created"])}}}
	cj.Spec.Schedule = args["schedule"]
	if v, ok := args["tz"]; ok {
		cj.Spec.TimeZone = ptr(v)
	}
	cj.Spec.ConcurrencyPolicy = batchv1.ConcurrencyPolicy(args["policy"])
	cj.Spec.Suspend = ptr(args["suspend"] == "true")
	for key, dst := range map[string]**int32{"successLimit": &cj.Spec.SuccessfulJobsHistoryLimit, "failedLimit": &cj.Spec.FailedJobsHistoryLimit} {
		if v, ok := args[key]; ok {
			n, _ := strconv.Atoi(v)
			*dst = ptr(int32(n))
		}
	}
	if v, ok := args["deadline"]; ok {
		n, _ := strconv.Atoi(v)
		cj.Spec.StartingDeadlineSeconds = ptr(int64(n))
	}
	cj.Spec.JobTemplate.Spec.Template.Spec = corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
		Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}
	if errs := ValidateCronJob(cj); len(errs) > 0 {
		t.Fatalf("invalid cronjob: %v", errs.ToAggregate())
	}
	return cj
}

func (w *world) tick(now time.Time) string {
	in := CronInput{CronJob: *w.cj.DeepCopy(), Now: now}
	for _, name := range sortedKeys(w.jobs) {
		in.Jobs = append(in.Jobs, *w.jobs[name])
	}
	res, err := PlanCronJob(in)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	var b strings.Builder
	for _, e := range res.Events {
		fmt.Fprintf(&b, "event %s %s: %s\n", e.Type, e.Reason, e.Message)
	}
	for _, name := range res.Delete {
		delete(w.jobs, name)
	}
	if j := res.Create; j != nil {
		fmt.Fprintf(&b, "create %s scheduled=%s\n", j.Name, j.Annotations[batchv1.CronJobScheduledTimestampAnnotation])
		w.jobs[j.Name] = j
	}
	w.cj.Status = res.Status
	var active []string
	for _, r := range res.Status.Active {
		active = append(active, r.Name)
	}
	fmt.Fprintf(&b, "status lastSchedule=%s lastSuccessful=%s active=[%s]\n",
		w.fmtMeta(res.Status.LastScheduleTime), w.fmtMeta(res.Status.LastSuccessfulTime), strings.Join(active, " "))
	fmt.Fprintf(&b, "jobs [%s]\n", strings.Join(sortedKeys(w.jobs), " "))
	if !res.NextSchedule.IsZero() {
		fmt.Fprintf(&b, "next %s in %s\n", w.fmt(res.NextSchedule), res.RequeueAfter)
	}
	return b.String()
}

func (w *world) finish(name, how string, at time.Time) string {
	j, ok := w.jobs[name]
	if !ok {
		return "no job " + name + "\n"
	}
	c := batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Time{Time: at}}
	if how == "failed" {
		c.Type = batchv1.JobFailed
	} else {
		j.Status.CompletionTime = &metav1.Time{Time: at}
	}
	j.Status.Conditions = append(j.Status.Conditions, c)
	return "ok\n"
}

// fmt shows a time in the CronJob's zone (UTC without a CronJob).
func (w *world) fmt(t time.Time) string {
	loc := time.UTC
	if w.cj != nil && w.cj.Spec.TimeZone != nil {
		loc, _ = time.LoadLocation(*w.cj.Spec.TimeZone)
	}
	return t.In(loc).Format(time.RFC3339)
}

func (w *world) fmtMeta(t *metav1.Time) string {
	if t == nil {
		return "<nil>"
	}
	return w.fmt(t.Time)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
