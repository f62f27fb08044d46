// Package api is moor's wire contract: the documents the reconciler publishes
// to node agents, the status agents report back, the join handshake and the
// admin read models the CLI consumes. It owns only types, canonical encoding
// and digests; it does no I/O and imports neither the reconciler nor the
// node agent, which meet only here.
package api
