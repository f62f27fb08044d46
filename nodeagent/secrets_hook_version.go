package nodeagent

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moor-dev/moor/api"
)

// Pods holding for a Secret version.
//
// A pod reading a Vault KV Secret through env carries
// api.AnnotationSecretVersions; version 0 there means no node had reported
// reading the Secret when the server planned the pod. The next plan names
// the version, which changes the pod's template (a Deployment rolls it, a
// bare Pod gets a new UID): a pod started now would be replaced at once,
// a double start on every first deploy. So the env hook reads the Secret
// (the node's status then reports its version), the secrets loop asks for a
// report, and the pod's containers wait with ContainerCreating, retried
// every versionWaitRetry rather than with the crash backoff, until the
// document naming the version replaces the pod. Should that document not
// come (the server unreachable, or planning something else), the pod starts
// with what the node read once versionWaitLimit has passed since it first
// waited.

const (
	// versionWaitLimit is how long a pod holds for a Secret version at
	// most.
	versionWaitLimit = 30 * time.Second
	// versionWaitRetry is how often a holding pod is tried again.
	versionWaitRetry = time.Second
)

// versionWaits are the pods holding for Secret versions. Its zero value is
// ready for use; it is safe for concurrent use.
type versionWaits struct {
	// limit and retry are versionWaitLimit and versionWaitRetry when zero
	// (tests shorten them); set before the agent runs.
	limit, retry time.Duration
	// now is time.Now when nil.
	now func() time.Time

	mu    sync.Mutex
	pods  map[string]*versionWait // by pod UID
	began chan struct{}           // a pod began to hold
}

// versionWait is one pod's wait.
type versionWait struct {
	since time.Time // when it first held
	// holding is set while its last attempt held the pod; cleared once the
	// pod may start (the limit passed or the versions are known).
	holding bool
}

func (w *versionWaits) clock() time.Time {
	if w.now != nil {
		return w.now()
	}
	return time.Now()
}

func (w *versionWaits) limitOrDefault() time.Duration {
	if w.limit > 0 {
		return w.limit
	}
	return versionWaitLimit
}

func (w *versionWaits) retryOrDefault() time.Duration {
	if w.retry > 0 {
		return w.retry
	}
	return versionWaitRetry
}

// hold records that pod uid's containers wait for versions now and reports
// whether they still should: false once the limit has passed since the pod
// first waited.
func (w *versionWaits) hold(uid string) (hold bool, until time.Time) {
	now := w.clock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pods == nil {
		w.pods = map[string]*versionWait{}
	}
	pw, ok := w.pods[uid]
	if !ok {
		pw = &versionWait{since: now}
		w.pods[uid] = pw
	}
	until = pw.since.Add(w.limitOrDefault())
	pw.holding = now.Before(until)
	if pw.holding && !ok {
		signal(w.beganLocked())
	}
	return pw.holding, until
}

// release records that pod uid need not wait (any more).
func (w *versionWaits) release(uid string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if pw, ok := w.pods[uid]; ok {
		pw.holding = false
	}
}

// holding returns the UIDs of the pods whose last attempt held them.
func (w *versionWaits) holding() map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]bool{}
	for uid, pw := range w.pods {
		if pw.holding {
			out[uid] = true
		}
	}
	return out
}

// prune forgets the pods for which keep says no.
func (w *versionWaits) prune(keep func(uid string) bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for uid := range w.pods {
		if !keep(uid) {
			delete(w.pods, uid)
		}
	}
}

// began delivers a value when a pod begins to hold; wakes coalesce.
func (w *versionWaits) beganCh() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.beganLocked()
}

func (w *versionWaits) beganLocked() chan struct{} {
	if w.began == nil {
		w.began = make(chan struct{}, 1)
	}
	return w.began
}

// awaitVersions holds req's pod while its AnnotationSecretVersions names, at
// version 0, a Secret this node reads from Vault (KV, not pinned): it
// reads each such Secret, so that the node's status reports its version,
// and returns a ContainerCreating waiting error until versionWaitLimit has
// passed since the pod first waited. A Secret that cannot be read does not
// hold the pod: the hook that uses it reports why.
func (r *secretResolver) awaitVersions(ctx context.Context, req *prestartRequest) error {
	if r == nil || r.source == nil {
		return nil
	}
	pod := req.Pod
	var read []string
	for _, name := range unversionedSecrets(pod) {
		ref, err := r.lookup(pod.Namespace, name)
		if err != nil || !followsLatestKV(&ref) {
			continue
		}
		s, err := r.read(ctx, req, name)
		if err != nil {
			continue
		}
		read = append(read, fmt.Sprintf("Secret %s (this node read version %d)", ref.Key(), s.Version))
	}
	if len(read) == 0 {
		r.waits.release(pod.UID)
		return nil
	}
	hold, until := r.waits.hold(pod.UID)
	if !hold {
		return nil
	}
	return &waitingError{Reason: reasonContainerCreating, Err: fmt.Errorf(
		"waiting for the server to learn the version of %s, which the pod reads through env (%s names version 0), so that the pod starts once; it starts anyway at %s",
		strings.Join(read, ", "), api.AnnotationSecretVersions, until.UTC().Format(time.RFC3339))}
}

// unversionedSecrets are the names pod's AnnotationSecretVersions gives
// version 0, sorted.
func unversionedSecrets(pod *api.Pod) []string {
	a := pod.Annotations[api.AnnotationSecretVersions]
	if a == "" {
		return nil
	}
	var out []string
	for name, v := range api.ParseSecretVersions(a) {
		if v == 0 {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// followsLatestKV reports whether ref is a Vault KV Secret that follows
// the latest version: the only kind whose version the server learns from
// the nodes.
func followsLatestKV(ref *api.SecretRef) bool {
	v := ref.Vault
	return v != nil && (v.Engine == "" || v.Engine == api.VaultEngineKV) && v.Version == 0
}
