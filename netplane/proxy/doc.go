// Package proxy owns moor's service VIP programming model: the pure service
// table (ClusterIP/NodePort services, their ports and endpoints), the
// configuration shared by every backend, the Backend interface the node
// agent drives, and Cache, with which a backend finds the few services that
// changed since its last sync without validating, hashing or rendering the
// whole table again.
//
// The backends live in subpackages: nft (default, nftables over netlink) and
// iptables (one iptables-restore --noflush text under a MOOR- prefix). Both
// render the same Table and are exercised by the shared suite in proxytest.
//
// This package does no I/O. It must not import reconciler/..., nodeagent/...
// or api/: the node agent translates the wire contract into a Table.
package proxy
