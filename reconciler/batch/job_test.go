package batch

import (
	"math/rand/v2"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestPodNames(t *testing.T) {
	j := validJob()
	j.UID = "u1"
	seen := map[string]bool{}
	for i := range 20 {
		for a := range 20 {
			n := PodName(j, i, a)
			if seen[n] {
				t.Fatalf("duplicate pod name %s", n)
			}
			seen[n] = true
			if n != PodName(j, i, a) || PodUID(j, i, a) != PodUID(j, i, a) {
				t.Fatal("pod names are not stable")
			}
		}
	}
	other := j.DeepCopy()
	other.UID = "u2"
	if PodName(j, 0, 0) == PodName(other, 0, 0) {
		t.Fatal("a re-created Job reuses its predecessor's pod names")
	}
}

func TestBackoff(t *testing.T) {
	for failures, want := range map[int]time.Duration{
		0: 0, 1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 6: 320 * time.Second, 7: 6 * time.Minute, 50: 6 * time.Minute,
	} {
		if got := backoff(failures); got != want {
			t.Errorf("backoff(%d) = %s, want %s", failures, got, want)
		}
	}
}

func TestPodTemplateForIndexed(t *testing.T) {
	j := validJob()
	j.UID = "u1"
	j.Spec.Completions = ptr(int32(3))
	j.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
	p := PodToRun{Name: PodName(j, 2, 1), Index: 2, Attempt: 1}
	tmpl := PodTemplateFor(j, p)
	if tmpl.Name != p.Name || tmpl.Labels[batchv1.JobNameLabel] != "pi" || tmpl.Labels[batchv1.ControllerUidLabel] != "u1" ||
		tmpl.Annotations[batchv1.JobCompletionIndexAnnotation] != "2" {
		t.Fatalf("metadata %+v", tmpl.ObjectMeta)
	}
	env := tmpl.Spec.Containers[0].Env
	if len(env) != 1 || env[0] != (corev1.EnvVar{Name: EnvCompletionIndex, Value: "2"}) {
		t.Fatalf("env %v", env)
	}
	if len(j.Spec.Template.Spec.Containers[0].Env) != 0 {
		t.Fatal("PodTemplateFor modified the Job")
	}
}

func TestPlanJobForgetsUnknownPods(t *testing.T) {
	j := validJob()
	res := PlanJob(JobInput{Job: *j, Now: time.Unix(0, 0), Pods: []PodState{
		{Name: "stray", Phase: corev1.PodRunning}, {Name: "old-done", Phase: corev1.PodSucceeded},
	}})
	if len(res.Delete) != 1 || res.Delete[0] != "stray" {
		t.Fatalf("delete %v", res.Delete)
	}
}

// TestPlanJobInvariants drives random Jobs through random agent reports and
// checks after every plan that: planning is deterministic; no more than
// parallelism pods run or wait to start; a pod planned but not yet reported
// is never dropped while the Job runs (unless a work queue is drained);
// counts never go down; and a finished
// Job never starts a pod again.
func TestPlanJobInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	phases := []corev1.PodPhase{corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodFailed}
	for run := range 300 {
		j := validJob()
		j.UID = "u"
		j.Spec.Parallelism = ptr(int32(rng.IntN(4)))
		if rng.IntN(4) > 0 {
			j.Spec.Completions = ptr(int32(rng.IntN(6)))
		}
		j.Spec.BackoffLimit = ptr(int32(rng.IntN(5)))
		if rng.IntN(2) == 0 {
			j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		}
		now := time.Unix(1_700_000_000, 0)
		pods := map[string]PodState{}
		var prev JobResult
		for step := range 60 {
			now = now.Add(time.Duration(rng.IntN(30)) * time.Second)
			in := JobInput{Job: *j.DeepCopy(), Now: now}
			for _, name := range sortedKeys(pods) {
				in.Pods = append(in.Pods, pods[name])
			}
			res := PlanJob(in)
			if again := PlanJob(in); len(again.Pods) != len(res.Pods) || again.Status.Active != res.Status.Active {
				t.Fatalf("run %d step %d: not deterministic", run, step)
			}
			wanted := map[string]bool{}
			waiting := 0
			for _, p := range res.Pods {
				wanted[p.Name] = true
				if st, ok := pods[p.Name]; !ok || !isTerminal(st.Phase) {
					waiting++
				}
			}
			if !res.Finished && waiting > int(*j.Spec.Parallelism) && step > 0 {
				t.Fatalf("run %d step %d: %d pods running or new, parallelism %d", run, step, waiting, *j.Spec.Parallelism)
			}
			// (A work queue stops starting pods once one worker succeeded.)
			drained := j.Spec.Completions == nil && res.Status.Succeeded > 0
			if !prev.Finished && !res.Finished && !drained {
				for _, p := range prev.Pods {
					if _, reported := pods[p.Name]; !reported && !wanted[p.Name] {
						t.Fatalf("run %d step %d: dropped unreported pod %d/%d", run, step, p.Index, p.Attempt)
					}
				}
			}
			if prev.Finished && waiting > 0 {
				t.Fatalf("run %d step %d: finished Job starts pods", run, step)
			}
			if res.Status.Succeeded < prev.Status.Succeeded || res.Status.Failed < prev.Status.Failed {
				t.Fatalf("run %d step %d: counts went down", run, step)
			}
			j.Status, prev = res.Status, res
			for _, name := range res.Delete {
				delete(pods, name)
			}
			// The agent reports on some of the wanted pods.
			for _, p := range res.Pods {
				st, ok := pods[p.Name]
				if (ok && isTerminal(st.Phase)) || rng.IntN(3) == 0 {
					continue
				}
				st = PodState{Name: p.Name, Phase: phases[rng.IntN(len(phases))], FinishedAt: now}
				if st.Phase == corev1.PodRunning && j.Spec.Template.Spec.RestartPolicy == corev1.RestartPolicyOnFailure {
					st.RestartCount = int32(rng.IntN(2))
				}
				pods[p.Name] = st
			}
		}
	}
}
