package podnetwork

import (
	"net/netip"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/netplane/dns"
	"github.com/moor-dev/moor/netplane/podnet"
	"github.com/moor-dev/moor/netplane/proxy"
)

// ProxyTable translates the service table of a desired document into the
// proxy's. Headless services are kept (the backends skip them); ports of
// protocols the proxy does not support (SCTP) are left out; an endpoint
// serves a port only when it resolved that port's target port. Every
// endpoint listed is marked ready: the reconciler lists exactly the pods
// that must get traffic (ready ones, plus not-ready ones of services
// publishing them). Endpoints inside local, this node's pod CIDR, are
// marked Local: the backends masquerade hairpin traffic (a pod reaching
// itself through its service) only for those.
func ProxyTable(svcs []api.Service, local netip.Prefix) *proxy.Table {
	t := &proxy.Table{Services: make([]proxy.Service, 0, len(svcs))}
	for i := range svcs {
		s := &svcs[i]
		ps := proxy.Service{Namespace: s.Namespace, Name: s.Name, ClusterIP: s.ClusterIP}
		if s.SessionAffinity == api.AffinityClientIP {
			ps.SessionAffinity = proxy.AffinityClientIP
			if s.SessionAffinityTimeoutSeconds > 0 {
				ps.AffinityTimeout = uint32(s.SessionAffinityTimeoutSeconds)
			}
		}
		nodePorts := s.Type == api.ServiceTypeNodePort || s.Type == api.ServiceTypeLoadBalancer
		for _, sp := range s.Ports {
			proto := proxy.Protocol(sp.Protocol)
			if proto == "" {
				proto = proxy.TCP
			}
			if proto.Number() == 0 || sp.Port <= 0 || sp.Port > 65535 {
				continue
			}
			pp := proxy.Port{Name: sp.Name, Protocol: proto, Port: uint16(sp.Port)}
			if nodePorts && sp.NodePort > 0 && sp.NodePort <= 65535 {
				pp.NodePort = uint16(sp.NodePort)
			}
			for _, ep := range s.Endpoints {
				target, ok := ep.Ports[sp.Name]
				if !ok || target <= 0 || target > 65535 || !ep.IP.IsValid() {
					continue
				}
				pp.Endpoints = append(pp.Endpoints, proxy.Endpoint{IP: ep.IP, Port: uint16(target), Ready: true,
					Local: local.IsValid() && local.Contains(ep.IP)})
			}
			ps.Ports = append(ps.Ports, pp)
		}
		t.Services = append(t.Services, ps)
	}
	return t
}

// DNSRecords translates the service table into the DNS server's records:
// every service with its VIP and ports, and its ready endpoints (the A
// records of headless services).
func DNSRecords(svcs []api.Service) dns.Records {
	r := dns.Records{Services: make([]dns.Service, 0, len(svcs))}
	for i := range svcs {
		s := &svcs[i]
		ds := dns.Service{Namespace: s.Namespace, Name: s.Name, ClusterIP: s.ClusterIP}
		for _, p := range s.Ports {
			if p.Port > 0 && p.Port <= 65535 {
				ds.Ports = append(ds.Ports, dns.Port{Name: p.Name, Protocol: p.Protocol, Port: uint16(p.Port)})
			}
		}
		seen := map[netip.Addr]bool{}
		for _, ep := range s.Endpoints {
			if ep.Ready && ep.IP.IsValid() && !seen[ep.IP] {
				seen[ep.IP] = true
				ds.Endpoints = append(ds.Endpoints, ep.IP)
			}
		}
		r.Services = append(r.Services, ds)
	}
	return r
}

// Peers translates the other nodes of the network into podnet's peers.
func Peers(n *api.Network) []podnet.Peer {
	if n == nil {
		return nil
	}
	out := make([]podnet.Peer, 0, len(n.Peers))
	for _, p := range n.Peers {
		out = append(out, podnet.Peer{Name: p.Name, NodeIP: p.NodeIP, PodCIDR: p.PodCIDR})
	}
	return out
}
