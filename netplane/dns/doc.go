// Package dns is moor's per-node DNS server (github.com/miekg/dns) for
// pods: it answers A records for <svc>.<ns>.svc.<domain> (the ClusterIP,
// or every ready endpoint of a headless service), A records for headless
// endpoints as <a-b-c-d>.<svc>.<ns>.svc.<domain>, SRV records for named
// ports as _<port>._<proto>.<svc>.<ns>.svc.<domain>, NXDOMAIN for other
// names in the domain, and forwards every other name to the host's
// upstream resolvers. ResolvConf renders the matching pod resolv.conf.
//
// It owns only its listeners. It must not import the reconciler, the node
// agent or package api: the agent converts its desired state into Records
// and calls Update. The pure cores are parseName and table.answer
// (records.go); server.go is the network shell.
package dns
