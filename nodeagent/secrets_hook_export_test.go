package nodeagent

import "context"

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
