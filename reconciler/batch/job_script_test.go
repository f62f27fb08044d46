package batch

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// newTestJob builds the Job of a script from
// `job name=N [completions=C] [parallelism=P] [backoffLimit=B]
// [restartPolicy=R] [deadline=S] [ttl=S] [suspend=true]`.
func newTestJob(t interface {
	Helper()
	Fatalf(string, ...any)
}, args map[string]string) *batchv1.Job {
	t.Helper()
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: args["name"], Namespace: "default", UID: types.UID("uid-" + args["name"])}}
	num := func(key string) *int32 {
		v, ok := args[key]
		if !ok {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return ptr(int32(n))
	}
	j.Spec.Completions = num("completions")
	j.Spec.Parallelism = num("parallelism")
	j.Spec.BackoffLimit = num("backoffLimit")
	j.Spec.TTLSecondsAfterFinished = num("ttl")
	if d := num("deadline"); d != nil {
		j.Spec.ActiveDeadlineSeconds = ptr(int64(*d))
	}
	if args["suspend"] == "true" {
		j.Spec.Suspend = ptr(true)
	}
	rp := corev1.RestartPolicy(args["restartPolicy"])
	if rp == "" {
		rp = corev1.RestartPolicyNever
	}
	j.Spec.Template.Spec = corev1.PodSpec{RestartPolicy: rp, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}
	if errs := ValidateJob(j); len(errs) > 0 {
		t.Fatalf("invalid job: %v", errs.ToAggregate())
	}
	return j
}

func (w *world) plan(now time.Time) string {
	in := JobInput{Job: *w.job.DeepCopy(), Now: now}
	for _, name := range sortedKeys(w.pods) {
		in.Pods = append(in.Pods, w.pods[name])
	}
	res := PlanJob(in)
	// Determinism: planning the same input again gives the same result.
	if again := PlanJob(in); !reflect.DeepEqual(again, res) {
		w.t.Errorf("PlanJob is not deterministic:\n%v\n%v", res, again)
	}
	w.job.Status = res.Status
	var b strings.Builder
	var pods []string
	for _, p := range res.Pods {
		label := fmt.Sprintf("%d/%d", p.Index, p.Attempt)
		w.labels[p.Name] = label
		phase := "new"
		if st, ok := w.pods[p.Name]; ok {
			phase = string(st.Phase)
		}
		pods = append(pods, label+":"+phase)
	}
	fmt.Fprintf(&b, "pods [%s]\n", strings.Join(pods, " "))
	if len(res.Delete) > 0 {
		var del []string
		for _, name := range res.Delete {
			del = append(del, w.labels[name])
			delete(w.pods, name) // the agent stops it and stops reporting it
		}
		fmt.Fprintf(&b, "delete [%s]\n", strings.Join(del, " "))
	}
	s := res.Status
	fmt.Fprintf(&b, "status active=%d succeeded=%d failed=%d", s.Active, s.Succeeded, s.Failed)
	if s.Terminating != nil {
		fmt.Fprintf(&b, " terminating=%d", *s.Terminating)
	}
	fmt.Fprintf(&b, " start=%s completion=%s\n", w.fmtMeta(s.StartTime), w.fmtMeta(s.CompletionTime))
	for _, c := range s.Conditions {
		fmt.Fprintf(&b, "condition %s=%s reason=%s at=%s: %s\n", c.Type, c.Status, c.Reason, w.fmt(c.LastTransitionTime.Time), c.Message)
	}
	if res.Finished {
		b.WriteString("finished")
		if res.ExpireAt != nil {
			fmt.Fprintf(&b, " expireAt=%s expired=%t", w.fmt(*res.ExpireAt), res.Expired)
		}
		b.WriteString("\n")
	}
	if res.RequeueAfter > 0 {
		fmt.Fprintf(&b, "requeue in %s\n", res.RequeueAfter)
	}
	return b.String()
}

// report records an agent's report: `report <index>/<attempt> <Phase>
// [restarts=N] [at=<time>] [started=<time>]`; at is when the pod
// finished, started its status.startTime.
func (w *world) report(label string, phase corev1.PodPhase, args map[string]string) string {
	var idx, attempt int
	if _, err := fmt.Sscanf(label, "%d/%d", &idx, &attempt); err != nil {
		w.t.Fatalf("bad pod %q: %v", label, err)
	}
	name := PodName(w.job, idx, attempt)
	st := PodState{Name: name, Phase: phase}
	if v, ok := args["restarts"]; ok {
		st.RestartCount = w.atoi(v)
	}
	if v, ok := args["at"]; ok {
		st.FinishedAt = w.time(v)
	}
	if v, ok := args["started"]; ok {
		st.StartedAt = w.time(v)
	}
	w.pods[name] = st
	w.labels[name] = label
	return "ok\n"
}
