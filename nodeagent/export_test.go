package nodeagent

import "time"

// SetRetryBackoff shortens the server retry backoff for tests.
func SetRetryBackoff(a *Agent, base, max time.Duration) {
	a.retry = backoffPolicy{Base: base, Max: max}
}

// VerifyPinned exposes the join handshake's certificate check.
var VerifyPinned = verifyPinned

// SetProbeSecond makes a probe "second" (periodSeconds, timeoutSeconds,
// initialDelaySeconds) last d, for fast tests.
func SetProbeSecond(a *Agent, d time.Duration) {
	a.probes.d.second = d
}
