package nodeagent

import "time"

// SetVersionWait sets how long a pod holds for a Secret version at most
// and how often it is retried meanwhile; call it before the agent runs.
func SetVersionWait(a *Agent, limit, retry time.Duration) {
	w := &a.secretVolumes().secrets.waits
	w.limit, w.retry = limit, retry
}
