// Package secrets is the node's Vault client: it logs the node in (AppRole or
// a token file), keeps its token renewed, reads the Secrets the node's pods
// use (KV v2 values at the latest or a pinned version, and leased secrets),
// watches them for rotation and reports what it read without the values.
//
// The Manager is what the node agent uses: Get returns a Secret's current
// values, Changes names the Secrets whose values changed (a new KV version
// or a re-issued lease), Status reports versions, key names and errors.
// Values live only in the Manager's memory; when Vault is sealed or
// unreachable, the last good values stay in use and Status carries the
// error.
//
// Errors carry a class (ErrNotFound, ErrKeyMissing, ErrPermissionDenied,
// ErrUnavailable, ErrInvalid), each also matching its
// github.com/containerd/errdefs class, and their messages name the Vault
// path and key and say what to fix. They never quote a value.
//
// The package imports neither the reconciler nor the node agent; the
// agent projects Secret volumes on a tmpfs itself
// (nodeagent.TmpfsProjector).
package secrets
