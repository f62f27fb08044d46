// Package controller is the reconciler's control loop: it fetches the
// tracked branch, validates the commit's manifests, runs the pure planner
// and publishes each node's share. It also answers the server API's
// questions (join, status reports, admin views) from the state store,
// and keeps each commit's timeline: webhook, fetch, plan or rejection,
// publication, and per node the pull and the moment all its pods ran.
//
// It owns the order of those steps and the rule that an invalid commit
// never replaces the last good one. It does not parse HTTP, speak Git or
// compute placements itself: those live in httpapi, source and planner.
package controller
