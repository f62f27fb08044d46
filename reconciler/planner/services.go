package planner

import (
	"fmt"
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
)

// defaultAffinityTimeout is Kubernetes' default ClientIP affinity timeout
// (three hours).
const defaultAffinityTimeout = 10800

// svcKey is "namespace/name" of a Service, its namespace defaulted.
func svcKey(s *corev1.Service) string { return svcNamespace(s) + "/" + s.Name }

func svcNamespace(s *corev1.Service) string {
	if s.Namespace == "" {
		return defaultNamespace
	}
	return s.Namespace
}

func protocolOf(p corev1.Protocol) string {
	if p == "" {
		return string(corev1.ProtocolTCP)
	}
	return string(p)
}

// sortedServices returns pointers to svcs sorted by key.
func sortedServices(svcs []corev1.Service) []*corev1.Service {
	out := make([]*corev1.Service, len(svcs))
	for i := range svcs {
		out[i] = &svcs[i]
	}
	sort.SliceStable(out, func(i, j int) bool { return svcKey(out[i]) < svcKey(out[j]) })
	return out
}

// allocateClusterIPs gives every Service that is not headless a virtual IP:
// the one its spec asks for, else its previous one while still valid and
// free, else the lowest free address, Services taken in key order. The
// network and broadcast addresses and the DNS address are never handed out.
func allocateClusterIPs(cfg NetworkConfig, svcs []*corev1.Service, prev map[string]netip.Addr) (map[string]netip.Addr, []string) {
	cidr := cfg.ServiceCIDR
	size := uint64(1) << (32 - cidr.Bits())
	used := map[netip.Addr]bool{cidr.Addr(): true, addrAt(cidr.Addr(), uint32(size-1)): true, cfg.DNSServiceIP(): true}
	out := map[string]netip.Addr{}
	var warnings []string
	var keep, fresh []*corev1.Service
	for _, s := range svcs {
		switch req := manifest.RequestedClusterIP(&s.Spec); req {
		case corev1.ClusterIPNone:
		case "":
			keep = append(keep, s)
		default:
			a, err := netip.ParseAddr(req)
			if err != nil || !cidr.Contains(a) || used[a] {
				warnings = append(warnings, fmt.Sprintf("service %s: clusterIP %s is not a free address of %s; allocating another", svcKey(s), req, cidr))
				keep = append(keep, s)
				continue
			}
			used[a], out[svcKey(s)] = true, a
		}
	}
	for _, s := range keep {
		if a, ok := prev[svcKey(s)]; ok && a.Is4() && cidr.Contains(a) && !used[a] {
			used[a], out[svcKey(s)] = true, a
			continue
		}
		fresh = append(fresh, s)
	}
	next := uint64(1)
	for _, s := range fresh {
		for next < size && used[addrAt(cidr.Addr(), uint32(next))] {
			next++
		}
		if next >= size {
			warnings = append(warnings, fmt.Sprintf("service %s has no clusterIP: service CIDR %s is full; widen --service-cidr", svcKey(s), cidr))
			continue
		}
		a := addrAt(cidr.Addr(), uint32(next))
		used[a], out[svcKey(s)] = true, a
	}
	return out, warnings
}

// allocateNodePorts gives every port of NodePort and LoadBalancer Services
// a node port, by the same rules as allocateClusterIPs: asked for, else
// previous, else lowest free. One Service may use one node port for TCP and
// UDP; other Services may not share it.
func allocateNodePorts(cfg NetworkConfig, svcs []*corev1.Service, prev map[string]int32) (map[string]int32, []string) {
	lo, hi := int32(cfg.NodePortRange[0]), int32(cfg.NodePortRange[1])
	owner := map[int32]string{} // node port → service key
	out := map[string]int32{}
	var warnings []string
	type pending struct{ svc, key string }
	var keep, fresh []pending
	claim := func(svc, key string, port int32) bool {
		if port < lo || port > hi {
			return false
		}
		if o, ok := owner[port]; ok && o != svc {
			return false
		}
		owner[port], out[key] = svc, port
		return true
	}
	for _, s := range svcs {
		if !manifest.HasNodePorts(s.Spec.Type) {
			continue
		}
		for _, p := range s.Spec.Ports {
			key := NodePortKey(svcNamespace(s), s.Name, p.Port, protocolOf(p.Protocol))
			switch {
			case p.NodePort == 0:
				keep = append(keep, pending{svcKey(s), key})
			case !claim(svcKey(s), key, p.NodePort):
				warnings = append(warnings, fmt.Sprintf("service %s: nodePort %d is taken or outside %d-%d; allocating another", svcKey(s), p.NodePort, lo, hi))
				keep = append(keep, pending{svcKey(s), key})
			}
		}
	}
	for _, k := range keep {
		if p, ok := prev[k.key]; !ok || !claim(k.svc, k.key, p) {
			fresh = append(fresh, k)
		}
	}
	next := lo
	for _, k := range fresh {
		for next <= hi && owner[next] != "" {
			next++
		}
		if next > hi {
			warnings = append(warnings, fmt.Sprintf("service %s has no node port for %s: the range %d-%d is full", k.svc, k.key, lo, hi))
			continue
		}
		claim(k.svc, k.key, next)
	}
	return out, warnings
}

// serviceTable builds the table every node gets: each Service with its
// allocations and endpoints.
func serviceTable(svcs []*corev1.Service, alloc *Allocations, pods []api.Pod, placement map[string]string, rep *reports) []api.Service {
	byNS := map[string][]*api.Pod{}
	for i := range pods {
		if _, ok := placement[pods[i].Key()]; ok {
			byNS[pods[i].Namespace] = append(byNS[pods[i].Namespace], &pods[i])
		}
	}
	table := make([]api.Service, 0, len(svcs))
	for _, s := range svcs {
		ns := svcNamespace(s)
		svc := api.Service{
			Namespace:       ns,
			Name:            s.Name,
			Type:            string(serviceType(s)),
			ClusterIP:       alloc.ClusterIPs[svcKey(s)],
			SessionAffinity: string(corev1.ServiceAffinityNone),
			Ports:           make([]api.ServicePort, 0, len(s.Spec.Ports)),
			Endpoints:       []api.Endpoint{},
		}
		if s.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
			svc.SessionAffinity, svc.SessionAffinityTimeoutSeconds = api.AffinityClientIP, affinityTimeout(s)
		}
		for _, p := range s.Spec.Ports {
			proto := protocolOf(p.Protocol)
			svc.Ports = append(svc.Ports, api.ServicePort{Name: p.Name, Protocol: proto, Port: p.Port,
				NodePort: alloc.NodePorts[NodePortKey(ns, s.Name, p.Port, proto)]})
		}
		if len(s.Spec.Selector) > 0 {
			sel := labels.SelectorFromSet(s.Spec.Selector)
			for _, p := range byNS[ns] {
				if sel.Matches(labels.Set(p.Labels)) {
					if ep, ok := endpoint(s, p, placement[p.Key()], rep); ok {
						svc.Endpoints = append(svc.Endpoints, ep)
					}
				}
			}
		}
		table = append(table, svc)
	}
	api.SortServices(table)
	return table
}

func serviceType(s *corev1.Service) corev1.ServiceType {
	if s.Spec.Type == "" {
		return corev1.ServiceTypeClusterIP
	}
	return s.Spec.Type
}

func affinityTimeout(s *corev1.Service) int32 {
	if c := s.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		return *c.ClientIP.TimeoutSeconds
	}
	return defaultAffinityTimeout
}

// endpoint makes pod p an endpoint of s when its node reports this very pod
// with an address and ready (or s publishes not-ready addresses), and at
// least one of s's ports resolves on it.
func endpoint(s *corev1.Service, p *api.Pod, node string, rep *reports) (api.Endpoint, bool) {
	r := rep.of(p, node)
	if r == nil || r.Status.PodIP == "" {
		return api.Endpoint{}, false
	}
	ip, err := netip.ParseAddr(r.Status.PodIP)
	if err != nil {
		return api.Endpoint{}, false
	}
	_, ready := readySince(&r.Status)
	terminal := r.Status.Phase == corev1.PodSucceeded || r.Status.Phase == corev1.PodFailed
	if terminal || (!ready && !s.Spec.PublishNotReadyAddresses) {
		return api.Endpoint{}, false
	}
	ep := api.Endpoint{Pod: p.Name, IP: ip, Node: node, Ready: ready}
	for _, sp := range s.Spec.Ports {
		if port, ok := targetPort(&sp, &p.Spec); ok {
			if ep.Ports == nil {
				ep.Ports = map[string]int32{}
			}
			ep.Ports[sp.Name] = port
		}
	}
	if len(s.Spec.Ports) > 0 && len(ep.Ports) == 0 {
		return api.Endpoint{}, false
	}
	return ep, true
}

// targetPort resolves a Service port's targetPort on a pod: a number as
// is (unset: the port itself), a name by the pod's container ports of the
// same name and protocol.
func targetPort(sp *corev1.ServicePort, spec *corev1.PodSpec) (int32, bool) {
	t := sp.TargetPort
	if t.Type == intstr.Int {
		if t.IntVal == 0 {
			return sp.Port, true
		}
		return t.IntVal, true
	}
	for _, c := range spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == t.StrVal && protocolOf(cp.Protocol) == protocolOf(sp.Protocol) {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}
