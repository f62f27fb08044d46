// Package podnetwork is the kernel implementation of nodeagent.Network: it
// drives netplane/podnet (bridge, pod namespaces, IPAM, host-gw routes,
// masquerade), a netplane/proxy backend (service VIPs and NodePorts) and a
// netplane/dns server listening on the bridge gateway, translating the
// wire contract (package api) into their plain types.
//
// Pods use the node-local DNS server directly: their resolv.conf names the
// bridge gateway (the node's own address on the pod network), not the
// cluster DNS service IP, so DNS needs no proxy rule and keeps working
// while the service table is being replaced.
//
// It owns nothing of its own in the kernel: everything it installs belongs
// to the netplane package that installs it, and Network.Cleanup has each of
// them remove it. The translations (ProxyTable, DNSRecords, Peers) are
// pure; Network is the shell.
package podnetwork
