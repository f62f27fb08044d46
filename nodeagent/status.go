package nodeagent

import (
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
)

// statusInput is everything buildStatus looks at.
type statusInput struct {
	Node       string
	Digest     string // of the applied desired document
	Commit     string
	Pods       []api.Pod
	Actual     []ContainerInfo
	Records    map[string]containerRecord
	PodRecords map[string]podRecord
	Now        time.Time
	// NodeIP is status.hostIP; in HostNetwork mode also every pod's podIP.
	NodeIP      netip.Addr
	HostNetwork bool
}

// buildStatus reports every desired pod as the runtime and the records show
// it. It does no I/O; the same input gives the same status.
func buildStatus(in statusInput) api.NodeStatus {
	actual := make(map[string]*ContainerInfo, len(in.Actual))
	for i := range in.Actual {
		actual[in.Actual[i].ID] = &in.Actual[i]
	}
	st := api.NodeStatus{
		APIVersion:    api.Version,
		Kind:          api.KindNodeStatus,
		Node:          in.Node,
		NodeIP:        in.NodeIP,
		DesiredDigest: in.Digest,
		Commit:        in.Commit,
		ReportedAt:    in.Now.UTC(),
		Pods:          make([]api.PodStatus, 0, len(in.Pods)),
	}
	for i := range in.Pods {
		p := &in.Pods[i]
		st.Pods = append(st.Pods, api.PodStatus{
			Namespace: p.Namespace,
			Name:      p.Name,
			UID:       p.UID,
			Commit:    in.Commit,
			Status:    podStatus(in, p, actual),
		})
	}
	return st
}

// podStatus is one pod's corev1.PodStatus.
func podStatus(in statusInput, p *api.Pod, actual map[string]*ContainerInfo) corev1.PodStatus {
	var s corev1.PodStatus
	if in.NodeIP.IsValid() {
		s.HostIP = in.NodeIP.String()
		s.HostIPs = []corev1.HostIP{{IP: s.HostIP}}
	}
	r, ok := in.PodRecords[p.UID]
	if ok && !r.StartTime.IsZero() {
		t := metav1.NewTime(r.StartTime.UTC())
		s.StartTime = &t
	}
	podIP := r.IP
	if in.HostNetwork {
		podIP = in.NodeIP
	}
	if podIP.IsValid() {
		s.PodIP = podIP.String()
		s.PodIPs = []corev1.PodIP{{IP: s.PodIP}}
	}
	hash := specHash(p)
	allStarted, allReady := true, true
	var readyAt time.Time // when the last container became ready
	running, succeeded, failed := 0, 0, 0
	for ci := range p.Spec.Containers {
		c := &p.Spec.Containers[ci]
		id := ContainerID(p.Namespace, p.Name, p.UID, c.Name)
		info := actual[id]
		if info != nil && (info.Labels[LabelPodUID] != p.UID || info.Labels[LabelSpecHash] != hash) {
			info = nil // a previous incarnation, about to be replaced
		}
		rec := in.Records[id]
		if !rec.matches(p.UID, hash) {
			rec = containerRecord{}
		}
		cs := containerStatus(p, c, id, info, rec)
		s.ContainerStatuses = append(s.ContainerStatuses, cs)
		allReady = allReady && cs.Ready
		if cs.Ready {
			if t := readySince(c, info, rec); t.After(readyAt) {
				readyAt = t
			}
		}
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
			succeeded++
		case cs.State.Terminated != nil:
			failed++
		case cs.LastTerminationState.Terminated == nil:
			allStarted = false // waiting and never ran
		}
	}
	n := len(p.Spec.Containers)
	switch {
	case !allStarted || n == 0:
		s.Phase = corev1.PodPending
	case succeeded == n:
		s.Phase = corev1.PodSucceeded
	case failed > 0 && succeeded+failed == n && restartPolicy(p) == corev1.RestartPolicyNever:
		s.Phase = corev1.PodFailed
	default:
		s.Phase = corev1.PodRunning
	}
	ready := allReady && n > 0
	s.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
		condition(corev1.ContainersReady, ready, readyAt),
		condition(corev1.PodReady, ready, readyAt),
	}
	return s
}

// condition is a pod condition whose reason says why it is false. A true
// condition carries since, when it became true, as its transition time:
// the reconciler counts minReadySeconds from it.
func condition(t corev1.PodConditionType, ok bool, since time.Time) corev1.PodCondition {
	if ok {
		c := corev1.PodCondition{Type: t, Status: corev1.ConditionTrue}
		if !since.IsZero() {
			c.LastTransitionTime = metav1.NewTime(since.UTC())
		}
		return c
	}
	return corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}
}

// readySince is when a ready container became ready: when its readiness
// probe started to pass, else when it started running.
func readySince(c *corev1.Container, info *ContainerInfo, rec containerRecord) time.Time {
	if c.ReadinessProbe != nil && rec.Probe.forRun(info.StartedAt) && !rec.Probe.ReadyAt.IsZero() {
		return rec.Probe.ReadyAt
	}
	return info.StartedAt
}

// containerStatus is one container's status. info is nil when the runtime
// holds no container of this pod incarnation.
func containerStatus(p *api.Pod, c *corev1.Container, id string, info *ContainerInfo, rec containerRecord) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{
		Name:         c.Name,
		Image:        c.Image,
		RestartCount: rec.RestartCount,
	}
	if rec.LastTermination != nil {
		cs.LastTerminationState.Terminated = terminatedState(*rec.LastTermination)
	}
	waiting := func(reason, msg string) {
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
	}
	if info == nil {
		if rec.WaitingReason != "" {
			waiting(waitingReason(rec), rec.WaitingMessage)
		} else {
			waiting(reasonContainerCreating, "")
		}
		return cs
	}
	cs.ContainerID = "containerd://" + id
	started := false
	switch info.State {
	case StateRunning:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(info.StartedAt.UTC())}
		started, cs.Ready = probedReadiness(c, info, rec)
	case StateExited:
		term := terminationOf(info)
		rec.Killed.applyTo(&term)
		t := terminatedState(term)
		if shouldRestart(p.Spec.RestartPolicy, info.ExitCode) {
			cs.LastTerminationState.Terminated = t
			waiting(reasonCrashLoopBackOff, "back-off restarting exited container "+c.Name)
		} else {
			cs.State.Terminated = t
		}
	case StateCreated:
		if rec.WaitingReason != "" {
			waiting(waitingReason(rec), rec.WaitingMessage)
		} else {
			waiting(reasonContainerCreating, "")
		}
	default:
		waiting("Unknown", "the runtime reports the container's state as unknown")
	}
	cs.Started = &started
	return cs
}

// probedReadiness is whether a running container has started and is
// ready: without probes as soon as it runs; with a startup probe once it
// has passed, with a readiness probe while it passes, as the agent's
// probes last recorded for this run.
func probedReadiness(c *corev1.Container, info *ContainerInfo, rec containerRecord) (started, ready bool) {
	var pr probeRecord
	if rec.Probe.forRun(info.StartedAt) {
		pr = *rec.Probe
	}
	started = c.StartupProbe == nil || pr.Started
	ready = started && (c.ReadinessProbe == nil || pr.Ready)
	return started, ready
}

// waitingReason is the reason of a container that failed to be created:
// ErrImagePull after the first failed pull, ImagePullBackOff after more.
func waitingReason(rec containerRecord) string {
	if rec.WaitingReason == reasonErrImagePull && rec.Failures > 1 {
		return reasonImagePullBackOff
	}
	return rec.WaitingReason
}

// terminatedState converts a termination to its Kubernetes form.
func terminatedState(t termination) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{
		ExitCode:   t.ExitCode,
		Reason:     t.Reason,
		Message:    t.Message,
		StartedAt:  metav1.NewTime(t.StartedAt.UTC()),
		FinishedAt: metav1.NewTime(t.FinishedAt.UTC()),
	}
}
