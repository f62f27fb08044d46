package nodeagent

import (
	"context"
	"time"
)

// WireSecrets gives a's hooks Config.Secrets and the applied document's
// Secrets, as New does once agent.go passes them in hookDeps.
func WireSecrets(a *Agent) {
	for _, h := range a.runner.hooks {
		if e, ok := h.(*envHook); ok {
			e.secrets.source, e.secrets.refs = a.cfg.Secrets, a.secretRefs
		}
	}
}

// RunSecrets runs the agent's secrets loop until ctx ends (a no-op while
// Run already runs it).
func RunSecrets(ctx context.Context, a *Agent) { a.runSecrets(ctx) }

// SetVersionWait sets how long a pod holds for a Secret version at most
// and how often it is retried meanwhile; call it before the agent runs.
func SetVersionWait(a *Agent, limit, retry time.Duration) {
	w := &a.secretVolumes().secrets.waits
	w.limit, w.retry = limit, retry
}
