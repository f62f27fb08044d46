package nodeagent

import (
	"context"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

// runSecrets keeps Secrets current until ctx ends: it tells the
// SecretSource which Secrets the applied desired state uses (Watch),
// re-projects in place every projected volume of a Secret the source
// reports changed (and all of them when the desired state changes), retries
// failed updates with backoff, and removes the volumes of pods that are
// gone, including those left by a previous run of the agent. Containers
// are never restarted here: pods using a Secret through env are rolled by
// the reconciler (AnnotationSecretVersions). It also keeps pods from
// waiting longer than they must: a container waiting for a Secret is
// retried at once when the Secret becomes readable (a change, or its
// status error clearing), and pods holding for a Secret version
// (secrets_hook_version.go) ask for a report and are retried every
// versionWaitRetry. Run calls it once.
func (a *Agent) runSecrets(ctx context.Context) {
	v := a.secretVolumes()
	if v == nil {
		return
	}
	src := v.secrets.source
	var changes <-chan string
	if src != nil {
		changes = src.Changes()
	}
	waits := &v.secrets.waits
	began := waits.beganCh()
	t := time.NewTicker(a.cfg.ResyncInterval)
	defer t.Stop()
	retry := map[string]pendingRotation{}
	failing := map[string]bool{} // Secrets whose status shows an error
	var holdRetry <-chan time.Time
	lastDigest := ""
	for {
		a.collectSecretVolumes(ctx, v)
		now := a.now()
		if digest, refs := a.appliedSecrets(); digest != lastDigest {
			lastDigest = digest
			if src != nil {
				src.Watch(vaultRefs(refs))
			}
			// Bring every projected volume up to date: a new document may
			// change plain Secrets, and after an agent restart the
			// volumes of adopted pods may be behind. Unchanged files are
			// left alone.
			for i := range refs {
				retry[refs[i].Key()] = pendingRotation{}
			}
			a.pruneVersionWaits(waits)
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
		if src != nil {
			if keys := readableAgain(src.Status(), failing); len(keys) > 0 {
				a.retrySecretPods("secret readable again", keys...)
			}
		}
		if holdRetry == nil && len(waits.holding()) > 0 {
			holdRetry = time.After(waits.retryOrDefault())
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
			a.retrySecretPods("secret changed", key)
			// The server learns the new version now, not at the next
			// periodic report: env consumers roll sooner.
			signal(a.reportNow)
		case <-began:
			// The node's status now carries the versions the server
			// waits for.
			signal(a.reportNow)
		case <-holdRetry:
			holdRetry = nil
			a.retryHeldPods(waits)
		case <-t.C:
		}
	}
}

// readableAgain returns the Secrets of statuses whose error cleared since
// the last call; failing holds the keys that had one, and is updated.
func readableAgain(statuses []api.SecretStatus, failing map[string]bool) []string {
	var out []string
	seen := map[string]bool{}
	for i := range statuses {
		s := &statuses[i]
		key := s.Key()
		seen[key] = true
		switch {
		case s.Error != "":
			failing[key] = true
		case failing[key]:
			delete(failing, key)
			out = append(out, key)
		}
	}
	for key := range failing {
		if !seen[key] {
			delete(failing, key)
		}
	}
	sort.Strings(out)
	return out
}

// secretRetryable reports whether a container waiting for reason may
// start once a Secret it uses became readable: the Secret could not be
// read for env or a volume, or for the credentials of an image pull.
func secretRetryable(reason string) bool {
	return reason == reasonCreateContainerConfigError || reason == reasonErrImagePull
}

// retrySecretPods ends the retry backoff of the containers that wait for
// a reason a Secret can cause, in the desired pods using any of keys
// ("namespace/name"), and asks for a reconcile: they are tried again at
// once rather than after a crash backoff grown while Vault was away.
func (a *Agent) retrySecretPods(why string, keys ...string) {
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	a.mu.Lock()
	var retried []string
	if a.st != nil {
		for _, p := range a.desiredPodsLocked() {
			if !podUsesSecrets(&p, want) {
				continue
			}
			retried = append(retried, a.endBackoffLocked(&p, func(rec containerRecord) bool {
				return secretRetryable(rec.WaitingReason)
			})...)
		}
	}
	a.mu.Unlock()
	if len(retried) == 0 {
		return
	}
	a.log.Info(why+"; retrying the containers waiting for it now", "secrets", keys, "containers", retried)
	a.persist()
	signal(a.kick)
}

// retryHeldPods ends the backoff of the containers of pods holding for a
// Secret version and asks for a reconcile.
func (a *Agent) retryHeldPods(waits *versionWaits) {
	held := waits.holding()
	a.mu.Lock()
	var retried []string
	for _, p := range a.desiredPodsLocked() {
		if held[p.UID] && a.st != nil {
			retried = append(retried, a.endBackoffLocked(&p, func(rec containerRecord) bool {
				return rec.WaitingReason == reasonContainerCreating
			})...)
		}
	}
	a.mu.Unlock()
	if len(retried) > 0 {
		signal(a.kick)
	}
}

// pruneVersionWaits forgets the waits of pods no longer desired.
func (a *Agent) pruneVersionWaits(waits *versionWaits) {
	a.mu.Lock()
	desired := map[string]bool{}
	for _, p := range a.desiredPodsLocked() {
		desired[p.UID] = true
	}
	a.mu.Unlock()
	waits.prune(func(uid string) bool { return desired[uid] })
}

// endBackoffLocked makes p's containers whose record waits in retry
// backoff for a reason match accepts due now, counting no failure so far;
// it returns their IDs. a.mu is held.
func (a *Agent) endBackoffLocked(p *api.Pod, match func(containerRecord) bool) []string {
	var ids []string
	hash := specHash(p)
	for _, c := range p.Spec.Containers {
		id := ContainerID(p.Namespace, p.Name, p.UID, c.Name)
		rec, ok := a.st.Containers[id]
		if !ok || !rec.matches(p.UID, hash) || rec.Failures == 0 || !match(rec) {
			continue
		}
		rec.Failures, rec.NextAttempt = 0, time.Time{}
		a.st.Containers[id] = rec
		ids = append(ids, id)
	}
	return ids
}

// podUsesSecrets reports whether p uses one of the Secrets keys
// ("namespace/name") through env, envFrom, a volume or its image pull
// secrets.
func podUsesSecrets(p *api.Pod, keys map[string]bool) bool {
	uses := func(name string) bool { return name != "" && keys[p.Namespace+"/"+name] }
	for _, ps := range p.Spec.ImagePullSecrets {
		if uses(ps.Name) {
			return true
		}
	}
	for i := range p.Spec.Volumes {
		if s := p.Spec.Volumes[i].Secret; s != nil && uses(s.SecretName) {
			return true
		}
	}
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for i := range cs {
			c := &cs[i]
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && uses(e.ValueFrom.SecretKeyRef.Name) {
					return true
				}
			}
			for _, e := range c.EnvFrom {
				if e.SecretRef != nil && uses(e.SecretRef.Name) {
					return true
				}
			}
		}
	}
	return false
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
