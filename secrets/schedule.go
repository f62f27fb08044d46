package secrets

import (
	"time"
)

// When to renew or replace tokens and leases: pure functions of what Vault
// returned and when.

// renewal is the next action on a lease or token.
type renewal struct {
	// At is when to act; zero means never (no expiry).
	At time.Time
	// Renew is true to renew, false to replace: re-read the secret for a
	// new lease, log in again for a new token.
	Renew bool
}

// leaseRenewal plans a lease obtained (issued or last renewed) at obtained
// with TTL ttl; first is the TTL it was issued with. It acts at two thirds
// of the TTL: renewing when the lease is renewable and its TTL has not
// shrunk below a third of the first (the lease nears its maximum TTL),
// replacing it otherwise.
func leaseRenewal(obtained time.Time, ttl, first time.Duration, renewable bool) renewal {
	if ttl <= 0 {
		return renewal{}
	}
	return renewal{
		At:    obtained.Add(ttl * 2 / 3),
		Renew: renewable && ttl >= first/3,
	}
}

// tokenRenewal plans a token obtained at obtained with TTL ttl (first: its
// TTL at login). It acts before seconds before expiry, where before is
// RenewBefore when that is positive and at most half the TTL, else a third
// of the TTL. Like leases, a token whose TTL shrank below a third of the
// first is replaced by a new login.
func tokenRenewal(obtained time.Time, ttl, first time.Duration, renewable bool, renewBefore time.Duration) renewal {
	if ttl <= 0 {
		return renewal{}
	}
	before := ttl / 3
	if renewBefore > 0 && renewBefore <= ttl/2 {
		before = renewBefore
	}
	return renewal{
		At:    obtained.Add(ttl - before),
		Renew: renewable && ttl >= first/3,
	}
}

// backoff is the delay before retry attempt n (0-based) after a failure:
// doubling from 250ms, at most max.
func backoff(n int, max time.Duration) time.Duration {
	d := 250 * time.Millisecond
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
