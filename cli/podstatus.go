package cli

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// podSummary is what the pods table shows of a pod's status.
type podSummary struct {
	Ready, Total int
	Status       string
	Restarts     int32
	LastRestart  time.Time // zero when unknown
}

// summarizePod derives READY, STATUS and RESTARTS the way kubectl's pod
// printer does: init containers first, then containers from last to first
// so the first container's reason wins, then deletion.
func summarizePod(pod *corev1.Pod) podSummary {
	s := podSummary{Total: len(pod.Spec.Containers), Status: string(pod.Status.Phase)}
	if pod.Status.Reason != "" {
		s.Status = pod.Status.Reason
	}
	if s.Status == "" {
		s.Status = string(corev1.PodPending) // planned, not reported yet
	}
	initializing := summarizeInit(pod, &s)
	if !initializing {
		s.Restarts, s.LastRestart = 0, time.Time{}
		hasRunning := false
		cs := pod.Status.ContainerStatuses
		for i := len(cs) - 1; i >= 0; i-- {
			c := &cs[i]
			s.Restarts += c.RestartCount
			noteRestart(&s, c)
			switch {
			case c.State.Waiting != nil && c.State.Waiting.Reason != "":
				s.Status = c.State.Waiting.Reason
			case c.State.Terminated != nil && c.State.Terminated.Reason != "":
				s.Status = c.State.Terminated.Reason
			case c.State.Terminated != nil:
				s.Status = exitReason("", c.State.Terminated)
			case c.Ready && c.State.Running != nil:
				hasRunning = true
				s.Ready++
			}
		}
		if s.Status == "Completed" && hasRunning {
			s.Status = "NotReady"
			if podReady(pod) {
				s.Status = string(corev1.PodRunning)
			}
		}
	}
	if pod.DeletionTimestamp != nil {
		s.Status = "Terminating"
		if pod.Status.Reason == "NodeLost" {
			s.Status = "Unknown"
		}
	}
	return s
}

// summarizeInit applies the first init container that has not succeeded
// and reports whether the pod is still initializing.
func summarizeInit(pod *corev1.Pod, s *podSummary) bool {
	for i := range pod.Status.InitContainerStatuses {
		c := &pod.Status.InitContainerStatuses[i]
		s.Restarts += c.RestartCount
		noteRestart(s, c)
		switch {
		case c.State.Terminated != nil && c.State.Terminated.ExitCode == 0:
			continue
		case c.State.Terminated != nil:
			s.Status = exitReason("Init:", c.State.Terminated)
		case c.State.Waiting != nil && c.State.Waiting.Reason != "" && c.State.Waiting.Reason != "PodInitializing":
			s.Status = "Init:" + c.State.Waiting.Reason
		default:
			s.Status = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
		}
		return true
	}
	return false
}

func exitReason(prefix string, t *corev1.ContainerStateTerminated) string {
	if t.Reason != "" {
		return prefix + t.Reason
	}
	if t.Signal != 0 {
		return fmt.Sprintf("%sSignal:%d", prefix, t.Signal)
	}
	return fmt.Sprintf("%sExitCode:%d", prefix, t.ExitCode)
}

func noteRestart(s *podSummary, c *corev1.ContainerStatus) {
	if t := c.LastTerminationState.Terminated; c.RestartCount > 0 && t != nil && t.FinishedAt.Time.After(s.LastRestart) {
		s.LastRestart = t.FinishedAt.Time
	}
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// restartsColumn is "3" or, with a known last restart, "3 (5m ago)".
func (s podSummary) restartsColumn(now time.Time) string {
	if s.Restarts > 0 && !s.LastRestart.IsZero() {
		return fmt.Sprintf("%d (%s ago)", s.Restarts, humanDuration(now.Sub(s.LastRestart)))
	}
	return fmt.Sprint(s.Restarts)
}
