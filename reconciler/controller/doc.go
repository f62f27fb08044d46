// Package controller is the reconciler's control loop: it fetches the
// tracked branch, validates the commit's manifests, runs the pure planner
// and publishes each node's share. It also answers the server API's
// questions (join, status reports, admin views) from the state store.
//
// It owns the order of those steps and the rule that an invalid commit
// never replaces the last good one. It does not parse HTTP, speak Git or
// compute placements itself: those live in httpapi, source and planner.
package controller
