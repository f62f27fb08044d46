// Package metrics owns the reconciler's Prometheus metrics and its health
// endpoints: /metrics, /healthz (the process answers) and /readyz (named
// readiness checks pass).
//
// Metrics live in their own registry, never Prometheus's global default,
// so tests and several servers in one process do not collide. Every method
// of a nil *Metrics does nothing, so components may hold one optionally.
// The package records what others report; it does not decide what a sync,
// commit or webhook result is, and it does not mount itself on a listener.
package metrics
