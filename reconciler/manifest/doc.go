// Package manifest parses and validates every manifest of one commit into
// the real Kubernetes API types (k8s.io/api), strictly: unknown fields,
// duplicate keys, fields moor does not implement yet, unsupported kinds and
// semantically invalid objects are all errors, each naming the file, the
// document, the object and the exact field path. A commit with any error is
// rejected as a whole, so Load reports every error it finds, not the first.
//
// It owns the list of supported kinds (kinds.go), the allow-list of the
// fields moor implements (allowlist.go) and the validation rules
// (validate.go). It does no I/O: callers read the files of a commit and pass
// their contents in. It knows nothing about Git, nodes or planning.
package manifest
