package nodeagent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/nodeagent/internal/backoff"
)

// Labels the agent puts on every container. They let a restarted agent
// adopt running containers instead of restarting them.
const (
	LabelPodNamespace = "moor.dev/pod-namespace"
	LabelPodName      = "moor.dev/pod-name"
	LabelPodUID       = "moor.dev/pod-uid"
	LabelContainer    = "moor.dev/container"
	LabelSpecHash     = "moor.dev/spec-hash"
)

const (
	// defaultGrace is terminationGracePeriodSeconds when a pod sets none.
	defaultGrace = 30 * time.Second
	// backoffResetAfter is how long a container must run for its crash
	// backoff to start over, as in Kubernetes.
	backoffResetAfter = 10 * time.Minute
	// maxIDLen is containerd's limit on identifiers.
	maxIDLen = 76
	// uidPrefixLen is how much of the pod UID a container ID carries.
	uidPrefixLen = 8
)

// ContainerID returns the runtime ID of a pod's container:
// "<namespace>_<name>_<uid-prefix>_<container>". It is deterministic, a
// valid containerd identifier and at most 76 characters; names that do not
// fit (or are not DNS names) are shortened and suffixed with a hash of all
// four inputs.
func ContainerID(namespace, name, uid, container string) string {
	uidPrefix := uid
	if len(uidPrefix) > uidPrefixLen {
		uidPrefix = uidPrefix[:uidPrefixLen]
	}
	var parts []string
	lossy := false
	for _, s := range []string{namespace, name, uidPrefix, container} {
		c := sanitizeIDPart(s)
		lossy = lossy || c != s
		if c != "" {
			parts = append(parts, c)
		}
	}
	id := strings.Join(parts, "_")
	if !lossy && len(id) <= maxIDLen && id != "" {
		return id
	}
	sum := sha256.Sum256([]byte(namespace + "\x00" + name + "\x00" + uid + "\x00" + container))
	h := hex.EncodeToString(sum[:])[:12]
	keep := id
	if len(keep) > maxIDLen-len(h)-1 {
		keep = keep[:maxIDLen-len(h)-1]
	}
	keep = strings.TrimRight(keep, "._-")
	if keep == "" {
		return h
	}
	return keep + "_" + h
}

// sanitizeIDPart maps s onto containerd's identifier alphabet: characters
// outside [A-Za-z0-9._-] become '-', runs of separators collapse to their
// first, and separators at either end are dropped.
func sanitizeIDPart(s string) string {
	var b strings.Builder
	lastSep := true // drops leading separators
	for _, r := range s {
		alnum := r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		if alnum {
			b.WriteRune(r)
			lastSep = false
			continue
		}
		if lastSep {
			continue
		}
		if r != '.' && r != '_' && r != '-' {
			r = '-'
		}
		b.WriteRune(r)
		lastSep = true
	}
	return strings.TrimRight(b.String(), "._-")
}

// specHash is the hash recorded on a pod's containers; a change replaces them.
func specHash(p *api.Pod) string {
	if p.SpecHash != "" {
		return p.SpecHash
	}
	return api.HashObject(p.Spec)
}

// containerLabels are the labels of container c of pod p.
func containerLabels(p *api.Pod, c string) map[string]string {
	return map[string]string{
		LabelPodNamespace: p.Namespace,
		LabelPodName:      p.Name,
		LabelPodUID:       p.UID,
		LabelContainer:    c,
		LabelSpecHash:     specHash(p),
	}
}

// podGrace is the pod's termination grace period.
func podGrace(p *api.Pod) time.Duration {
	if s := p.Spec.TerminationGracePeriodSeconds; s != nil && *s >= 0 {
		return time.Duration(*s) * time.Second
	}
	return defaultGrace
}

// shouldRestart applies a pod's restart policy to an exit code.
func shouldRestart(policy corev1.RestartPolicy, exitCode uint32) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	default: // Always, and the Kubernetes default when unset
		return true
	}
}

// backoffPolicy is the crash and retry backoff: Base doubling per
// consecutive failure up to Max.
type backoffPolicy struct {
	Base, Max time.Duration
}

// delay is the wait before attempt n+1 after n consecutive failures (n≥0):
// Base, 2·Base, 4·Base, ... capped at Max.
func (b backoffPolicy) delay(n int) time.Duration {
	return backoff.Policy(b).Delay(n)
}

// crashIndex is the number of consecutive restarts that count towards the
// backoff of the exit in info: the record's, or 0 when the run that ended
// lasted long enough to reset it.
func crashIndex(rec containerRecord, info *ContainerInfo) int {
	if !info.StartedAt.IsZero() && info.FinishedAt.Sub(info.StartedAt) >= backoffResetAfter {
		return 0
	}
	return rec.CrashCount
}

// restartAt is when an exited container may be restarted.
func (b backoffPolicy) restartAt(rec containerRecord, info *ContainerInfo) time.Time {
	return info.FinishedAt.Add(b.delay(crashIndex(rec, info)))
}

// actionKind is what the runner does to one container.
type actionKind int

const (
	// actCreate runs the prestart hooks (image pull, ...), creates and
	// starts a container that does not exist.
	actCreate actionKind = iota
	// actStart starts a container that was created but never started.
	actStart
	// actRestart removes an exited container and creates it anew, counting
	// a restart.
	actRestart
	// actKill stops a container (signal, grace, kill) and removes it.
	actKill
)

func (k actionKind) String() string {
	switch k {
	case actCreate:
		return "create"
	case actStart:
		return "start"
	case actRestart:
		return "restart"
	case actKill:
		return "kill"
	}
	return fmt.Sprintf("action(%d)", int(k))
}

// action is one step for the runner. Pod and Container are nil for kills of
// containers no pod wants.
type action struct {
	Kind      actionKind
	ID        string
	Pod       *api.Pod
	Container *corev1.Container
	// Grace is the stop grace period of actKill.
	Grace time.Duration
	// Exited is the run actRestart replaces.
	Exited *ContainerInfo
	// Reason says why, for logs.
	Reason string
}

// planInput is everything plan looks at.
type planInput struct {
	Desired []api.Pod
	Actual  []ContainerInfo
	Records map[string]containerRecord
	Now     time.Time
	Backoff backoffPolicy
}

// plan diffs the desired pods against the runtime's containers and returns
// the actions that move one towards the other: kills first (sorted by ID),
// then the desired containers in pod and container order. It does no I/O
// and never returns an action for a container that needs none, so a
// running container that matches is adopted as is. Containers waiting for a
// backoff get no action; status shows why they wait.
func plan(in planInput) []action {
	actual := make(map[string]*ContainerInfo, len(in.Actual))
	for i := range in.Actual {
		actual[in.Actual[i].ID] = &in.Actual[i]
	}
	var kills, rest []action
	wanted := map[string]bool{}
	for pi := range in.Desired {
		p := &in.Desired[pi]
		hash := specHash(p)
		for ci := range p.Spec.Containers {
			c := &p.Spec.Containers[ci]
			id := ContainerID(p.Namespace, p.Name, p.UID, c.Name)
			wanted[id] = true
			rec := in.Records[id]
			if !rec.matches(p.UID, hash) {
				rec = containerRecord{}
			}
			info, exists := actual[id]
			if exists && (info.Labels[LabelPodUID] != p.UID || info.Labels[LabelSpecHash] != hash || info.Labels[LabelContainer] != c.Name) {
				kills = append(kills, killAction(info, in.Records, "replaced by a new pod or spec"))
				continue
			}
			if a, ok := planContainer(in, p, c, id, rec, info); ok {
				rest = append(rest, a)
			}
		}
	}
	for i := range in.Actual {
		info := &in.Actual[i]
		if !wanted[info.ID] {
			kills = append(kills, killAction(info, in.Records, "pod no longer desired"))
		}
	}
	sort.Slice(kills, func(i, j int) bool { return kills[i].ID < kills[j].ID })
	return append(kills, rest...)
}

// planContainer decides what a desired container that is missing or belongs
// to the right pod incarnation needs (info is nil when missing).
func planContainer(in planInput, p *api.Pod, c *corev1.Container, id string, rec containerRecord, info *ContainerInfo) (action, bool) {
	a := action{ID: id, Pod: p, Container: c}
	inRetryBackoff := rec.Failures > 0 && in.Now.Before(rec.NextAttempt)
	switch {
	case info == nil:
		if inRetryBackoff {
			return a, false
		}
		a.Kind, a.Reason = actCreate, "container missing"
	case info.State == StateCreated:
		if inRetryBackoff {
			return a, false
		}
		a.Kind, a.Reason = actStart, "container created but not started"
	case info.State == StateExited:
		if inRetryBackoff || !shouldRestart(p.Spec.RestartPolicy, info.ExitCode) || in.Now.Before(in.Backoff.restartAt(rec, info)) {
			return a, false
		}
		a.Kind, a.Exited = actRestart, info
		a.Reason = fmt.Sprintf("exited with code %d, restart policy %s", info.ExitCode, restartPolicy(p))
	default: // running (adopted or ours) or unknown: leave it alone
		return a, false
	}
	return a, true
}

// killAction stops and removes info, with the grace period recorded when it
// was created.
func killAction(info *ContainerInfo, recs map[string]containerRecord, reason string) action {
	grace := defaultGrace
	if rec, ok := recs[info.ID]; ok && rec.matches(info.Labels[LabelPodUID], info.Labels[LabelSpecHash]) && rec.GraceSeconds >= 0 {
		grace = time.Duration(rec.GraceSeconds) * time.Second
	}
	return action{Kind: actKill, ID: info.ID, Grace: grace, Reason: reason}
}

// restartPolicy is the pod's policy with the Kubernetes default applied.
func restartPolicy(p *api.Pod) corev1.RestartPolicy {
	if p.Spec.RestartPolicy == "" {
		return corev1.RestartPolicyAlways
	}
	return p.Spec.RestartPolicy
}
