package api

import (
	"net/netip"
	"sort"
)

// DefaultDNSDomain is the cluster DNS domain: services resolve as
// <service>.<namespace>.svc.<domain>.
const DefaultDNSDomain = "cluster.local"

// Service types as NodeDesired carries them (the names of Kubernetes).
const (
	ServiceTypeClusterIP    = "ClusterIP"
	ServiceTypeNodePort     = "NodePort"
	ServiceTypeLoadBalancer = "LoadBalancer" // served as NodePort: moor has no load balancer
)

// Session affinities.
const (
	AffinityNone     = "None"
	AffinityClientIP = "ClientIP"
)

// Network is the cluster network as one node needs it: where its pods get
// their addresses, how to reach the other nodes' pods (host-gw routes) and
// where the cluster DNS listens.
type Network struct {
	// PodCIDR is this node's share of ClusterCIDR; the agent hands out pod
	// addresses from it. Zero when the cluster CIDR is exhausted: the node
	// can then run no pods that need an address.
	PodCIDR     netip.Prefix `json:"podCIDR,omitzero"`
	ClusterCIDR netip.Prefix `json:"clusterCIDR"`
	ServiceCIDR netip.Prefix `json:"serviceCIDR"`
	// DNSDomain is the cluster domain ("cluster.local").
	DNSDomain string `json:"dnsDomain"`
	// DNSServiceIP is the virtual IP of the cluster DNS (the tenth address
	// of ServiceCIDR, 10.96.0.10 by default); pods get it as nameserver.
	DNSServiceIP netip.Addr `json:"dnsServiceIP"`
	// Peers are every other node with a known address and a pod CIDR,
	// sorted by name: route Peer.PodCIDR via Peer.NodeIP.
	Peers []Peer `json:"peers"`
}

// Peer is another node of the cluster.
type Peer struct {
	Name    string       `json:"name"`
	NodeIP  netip.Addr   `json:"nodeIP"`
	PodCIDR netip.Prefix `json:"podCIDR"`
}

// Service is one Service of the cluster with its endpoints. Every node gets
// the same table of every Service in every namespace.
type Service struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Type is ServiceTypeClusterIP, ServiceTypeNodePort or
	// ServiceTypeLoadBalancer; the last is served exactly like NodePort.
	Type string `json:"type"`
	// ClusterIP is the virtual IP; zero for a headless Service
	// (clusterIP: None), which gets DNS records for its endpoints and no
	// proxy rules.
	ClusterIP netip.Addr `json:"clusterIP,omitzero"`
	// SessionAffinity is AffinityNone or AffinityClientIP; with ClientIP,
	// a client sticks to one endpoint for SessionAffinityTimeoutSeconds
	// (default 10800, as in Kubernetes).
	SessionAffinity               string `json:"sessionAffinity"`
	SessionAffinityTimeoutSeconds int32  `json:"sessionAffinityTimeoutSeconds,omitempty"`
	// Ports are in the order the manifest lists them; the first is the one
	// of the {SVC}_SERVICE_PORT environment variable.
	Ports []ServicePort `json:"ports"`
	// Endpoints are the pods that receive the Service's traffic, sorted by
	// pod name: ready pods with an address, plus not-ready ones when the
	// Service sets publishNotReadyAddresses. Every endpoint listed gets
	// traffic; Ready says whether the pod itself is ready.
	Endpoints []Endpoint `json:"endpoints"`
}

// Key is "namespace/name".
func (s *Service) Key() string { return s.Namespace + "/" + s.Name }

// ServicePort is one port of a Service.
type ServicePort struct {
	// Name is unique within the Service; it may be empty only when the
	// Service has a single port. It keys Endpoint.Ports and names the
	// {SVC}_SERVICE_PORT_<NAME> environment variable.
	Name     string `json:"name,omitempty"`
	Protocol string `json:"protocol"` // "TCP" or "UDP"
	Port     int32  `json:"port"`
	// NodePort is the port opened on every node's addresses, for
	// NodePort and LoadBalancer Services; 0 otherwise.
	NodePort int32 `json:"nodePort,omitempty"`
}

// Endpoint is one pod behind a Service, in the Service's namespace.
type Endpoint struct {
	Pod   string     `json:"pod"`
	IP    netip.Addr `json:"ip"`
	Node  string     `json:"node"`
	Ready bool       `json:"ready"`
	// Ports maps a ServicePort.Name to the port on this pod that receives
	// its traffic (the targetPort, resolved against the pod's container
	// ports when it is named). A service port missing here has no port on
	// this pod: send that port's traffic to the other endpoints.
	Ports map[string]int32 `json:"ports,omitempty"`
}

// canonical returns a copy of n with every list in canonical order.
func (n *Network) canonical() *Network {
	if n == nil {
		return nil
	}
	c := *n
	c.Peers = make([]Peer, len(n.Peers)) // never nil: "peers": []
	copy(c.Peers, n.Peers)
	sort.Slice(c.Peers, func(i, j int) bool { return c.Peers[i].Name < c.Peers[j].Name })
	return &c
}

// SortServices orders services by namespace, then name, and each one's
// endpoints by pod name, as canonical documents need. Ports keep their
// order: it is meaningful.
func SortServices(svcs []Service) {
	sort.Slice(svcs, func(i, j int) bool {
		if svcs[i].Namespace != svcs[j].Namespace {
			return svcs[i].Namespace < svcs[j].Namespace
		}
		return svcs[i].Name < svcs[j].Name
	})
	for i := range svcs {
		eps := svcs[i].Endpoints
		sort.Slice(eps, func(a, b int) bool { return eps[a].Pod < eps[b].Pod })
	}
}

// canonicalServices returns a sorted deep-enough copy of svcs (nil when
// empty) so Encode never reorders its input.
func canonicalServices(svcs []Service) []Service {
	if len(svcs) == 0 {
		return nil
	}
	out := make([]Service, len(svcs))
	for i, s := range svcs {
		s.Ports = append([]ServicePort{}, s.Ports...)
		s.Endpoints = append([]Endpoint{}, s.Endpoints...)
		out[i] = s
	}
	SortServices(out)
	return out
}
