package planner

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
)

const threeNodes = "a ready\nb ready\nc ready"

// TestRolloutGolden drives rollouts plan by plan, the simulated nodes
// reporting new pods ready one tick after they were planned, checks the
// invariants at every plan (rolloutSim.check) and compares the trace
// with testdata/rollout/<name>.golden (-update rewrites them).
func TestRolloutGolden(t *testing.T) {
	tests := []struct {
		name string
		run  func(s *rolloutSim)
	}{
		{"rolling-default", func(s *rolloutSim) {
			// replicas 4: maxSurge 25% = 1, maxUnavailable 25% = 1.
			s.until("deploy", 5)
			s.edit(image("nginx:2"))
			s.until("roll", 10)
		}},
		{"rolling-maxunavailable-0", func(s *rolloutSim) {
			s.edit(func(d *appsv1.Deployment) { *d = rolling(*d, "1", "0") })
			s.until("deploy", 5)
			s.edit(image("nginx:2"))
			s.until("roll", 10)
		}},
		{"rolling-maxsurge-0", func(s *rolloutSim) {
			s.edit(func(d *appsv1.Deployment) { *d = rolling(*d, "0", "1") })
			s.until("deploy", 5)
			s.edit(image("nginx:2"))
			s.until("roll", 10)
		}},
		{"rolling-percent", func(s *rolloutSim) {
			// replicas 10: maxSurge 25% = 3 (rounded up), maxUnavailable 25% = 2 (down).
			s.edit(scale(10))
			s.until("deploy", 5)
			s.edit(image("nginx:2"))
			s.until("roll", 10)
		}},
		{"recreate", func(s *rolloutSim) {
			s.edit(func(d *appsv1.Deployment) { d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType })
			s.until("deploy", 5)
			s.edit(image("nginx:2"))
			s.until("roll", 10)
		}},
		{"scale-during-rollout", func(s *rolloutSim) {
			s.until("deploy", 5)
			s.edit(image("nginx:2"))
			s.steps("roll", 1)
			s.edit(scale(8))
			s.steps("scaled up", 2)
			s.edit(scale(2))
			s.until("scaled down", 10)
		}},
		{"rollback", func(s *rolloutSim) {
			s.broken["nginx:bad"] = true
			s.until("deploy", 5)
			s.edit(image("nginx:bad"))
			s.steps("bad", 3) // stalls: the bad pods never get ready
			s.edit(image("nginx:1"))
			s.until("rollback", 5)
		}},
		{"three-revisions", func(s *rolloutSim) {
			s.edit(scale(6))
			s.until("deploy", 5)
			s.edit(image("nginx:2"))
			s.steps("to v2", 1)
			s.edit(image("nginx:3"))
			s.until("to v3", 10)
		}},
		{"unhealthy-old-pod", func(s *rolloutSim) {
			// maxUnavailable 0 and an old pod that never got ready: it
			// goes first, so it cannot block the rollout.
			s.edit(func(d *appsv1.Deployment) { *d = rolling(*d, "1", "0") })
			d := s.in.Objects.Deployments[0]
			s.sick[deploymentPods(&d)[1].Name] = true
			s.steps("deploy", 2)
			s.edit(image("nginx:2"))
			s.until("roll", 10)
		}},
		{"min-ready-seconds", func(s *rolloutSim) {
			// Pods become available 30s after they are ready; no report
			// changes then, but the planner asks for a plan (requeue).
			s.edit(func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = 30 })
			s.tick, s.followRequeue = time.Minute, true
			s.until("deploy", 5)
			s.edit(image("nginx:2"))
			s.until("roll", 12)
		}},
		{"paused", func(s *rolloutSim) {
			s.until("deploy", 5)
			s.edit(func(d *appsv1.Deployment) { d.Spec.Paused = true; image("nginx:2")(d) })
			s.steps("paused", 2)
			s.edit(scale(6))
			s.steps("paused, scaled", 2)
			s.edit(func(d *appsv1.Deployment) { d.Spec.Paused = false })
			s.until("resumed", 10)
		}},
		{"progress-deadline", func(s *rolloutSim) {
			s.broken["nginx:bad"] = true
			s.edit(func(d *appsv1.Deployment) { d.Spec.ProgressDeadlineSeconds = ptr(int32(60)) })
			s.until("deploy", 5)
			s.edit(image("nginx:bad"))
			s.steps("stuck", 2)
			s.tick = time.Minute
			s.steps("later", 1)
			s.tick = 5 * time.Second
			s.edit(image("nginx:1"))
			s.until("rollback", 5)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newRolloutSim(t, threeNodes, deployment("web", 4, "nginx:1", nil))
			tt.run(s)
			s.golden(tt.name)
		})
	}
}

func ptr[T any](v T) *T { return &v }
