package nodeagent

import (
	"context"
	"time"

	"github.com/moor-dev/moor/api"
)

// runSecrets keeps Secrets current until ctx ends: it tells the
// SecretSource which Secrets the applied desired state uses (Watch),
// re-projects in place every projected volume of a Secret the source
// reports changed (and all of them when the desired state changes), retries
// failed updates with backoff, and removes the volumes of pods that are
// gone, including those left by a previous run of the agent. Containers
// are never restarted here: pods using a Secret through env are rolled by
// the reconciler (AnnotationSecretVersions). A second call while one runs
// returns at once.
func (a *Agent) runSecrets(ctx context.Context) {
	v := a.secretVolumes()
	if v == nil || !v.looping.CompareAndSwap(false, true) {
		return
	}
	defer v.looping.Store(false)
	var changes <-chan string
	if v.secrets.source != nil {
		changes = v.secrets.source.Changes()
	}
	t := time.NewTicker(a.cfg.ResyncInterval)
	defer t.Stop()
	retry := map[string]pendingRotation{}
	lastDigest := ""
	for {
		a.collectSecretVolumes(ctx, v)
		now := a.now()
		if digest, refs := a.appliedSecrets(); digest != lastDigest {
			lastDigest = digest
			if v.secrets.source != nil {
				v.secrets.source.Watch(vaultRefs(refs))
			}
			// Bring every projected volume up to date: a new document may
			// change plain Secrets, and after an agent restart the
			// volumes of adopted pods may be behind. Unchanged files are
			// left alone.
			for i := range refs {
				retry[refs[i].Key()] = pendingRotation{}
			}
		}
		for key, p := range retry {
			if now.Before(p.next) {
				continue
			}
			if a.rotateSecret(ctx, v, key) {
				delete(retry, key)
			} else {
				retry[key] = pendingRotation{failures: p.failures + 1, next: now.Add(a.crash.delay(p.failures))}
			}
		}
		select {
		case <-ctx.Done():
			return
		case key, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			if !a.rotateSecret(ctx, v, key) {
				retry[key] = pendingRotation{failures: 1, next: a.now().Add(a.crash.delay(0))}
			}
		case <-t.C:
		}
	}
}

// pendingRotation is a Secret whose volumes failed to update.
type pendingRotation struct {
	failures int
	next     time.Time
}

// rotateSecret re-projects the volumes of Secret key in the desired pods
// and reports whether all of them are current.
func (a *Agent) rotateSecret(ctx context.Context, v *secretVolumeHook, key string) bool {
	a.mu.Lock()
	pods := a.desiredPodsLocked()
	a.mu.Unlock()
	updated, errs := v.rotate(ctx, key, pods)
	for _, vol := range updated {
		a.log.Info("secret volume updated", "secret", key, "volume", vol)
	}
	for _, err := range errs {
		if ctx.Err() == nil {
			a.log.Error("update secret volume; keeping its previous files and retrying", "secret", key, "err", err)
		}
	}
	return len(errs) == 0
}

// collectSecretVolumes removes the secret volumes of pods that are not
// desired, have no container and no action running.
func (a *Agent) collectSecretVolumes(ctx context.Context, v *secretVolumeHook) {
	a.mu.Lock()
	desired := map[string]bool{}
	for _, p := range a.desiredPodsLocked() {
		desired[p.UID] = true
	}
	a.mu.Unlock()
	var gone []string
	for _, uid := range v.projectedPods() {
		if !desired[uid] {
			gone = append(gone, uid)
		}
	}
	if len(gone) == 0 {
		return
	}
	actual, err := a.rt.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Error("list containers for secret volume cleanup", "err", err)
		}
		return
	}
	hasContainer := map[string]bool{}
	for _, c := range actual {
		hasContainer[c.Labels[LabelPodUID]] = true
	}
	removed, err := v.collect(gone, func(uid string) bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.inflightPods[uid] > 0 || hasContainer[uid] {
			return true
		}
		for _, p := range a.desiredPodsLocked() {
			if p.UID == uid {
				return true
			}
		}
		return false
	})
	for _, uid := range removed {
		a.log.Info("secret volumes removed", "pod_uid", uid)
	}
	if err != nil {
		a.log.Error("remove secret volumes of a gone pod; will retry", "err", err)
	}
}

// appliedSecrets returns the applied document's digest and Secrets.
func (a *Agent) appliedSecrets() (string, []api.SecretRef) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st == nil || a.desired == nil {
		return "", nil
	}
	return a.st.Digest, a.desired.Secrets
}

// vaultRefs are the Vault-backed Secrets of refs.
func vaultRefs(refs []api.SecretRef) []api.SecretRef {
	out := make([]api.SecretRef, 0, len(refs))
	for _, r := range refs {
		if r.Vault != nil {
			out = append(out, r)
		}
	}
	return out
}

// secretRefs returns the Secrets of the applied desired document.
func (a *Agent) secretRefs() []api.SecretRef {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.desired == nil {
		return nil
	}
	return a.desired.Secrets
}

// secretVolumes is the runner's secret volume hook, nil when it has none.
func (a *Agent) secretVolumes() *secretVolumeHook {
	for _, h := range a.runner.hooks {
		if v, ok := h.(*secretVolumeHook); ok {
			return v
		}
	}
	return nil
}
