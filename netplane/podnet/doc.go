// Package podnet owns a node's pod network: the bridge (moor0) and its
// gateway address, one network namespace per pod with a veth into the
// bridge, IPAM over the node's pod CIDR (persisted in StateDir/ipam.json),
// host-gw routes to other nodes' pod CIDRs (marked with RouteProtocol), and
// the iptables chains MOOR-PODNET-EGRESS (nat, masquerade) and
// MOOR-PODNET-FORWARD (filter).
//
// It must not touch service VIP rules (netplane/proxy owns every other
// MOOR- chain), routes it did not install, or import the reconciler, the
// node agent or package api: callers pass plain values (Peer, pod IDs).
//
// Cleanup (and Network.Cleanup) removes all of it again, bridge to state
// file, for a node leaving or `moor up` exiting.
//
// Pure cores: the allocator (ipam.go), planRoutes (routes.go) and
// renderRules (rules.go); the rest is the netlink/iptables shell.
package podnet
