package dns

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"
)

// ttl is the TTL of every record the server answers itself: short, since
// services and endpoints change with every sync.
const ttl = 5

// Records is the cluster's DNS data: every service of every namespace.
type Records struct {
	Services []Service
}

// Service is one service as DNS sees it.
type Service struct {
	Namespace, Name string
	// ClusterIP is the service VIP; invalid means headless (A records are
	// then the Endpoints).
	ClusterIP netip.Addr
	Ports     []Port
	// Endpoints are the ready pods' addresses (used for headless services).
	Endpoints []netip.Addr
}

// Port is a service port; only named ports get SRV records.
type Port struct {
	Name     string
	Protocol string // TCP (default), UDP or SCTP
	Port     uint16
}

// table is the immutable lookup form of Records, keyed by lower-case
// "<svc>.<ns>".
type table struct {
	services   map[string]*Service
	namespaces map[string]bool
}

func newTable(r Records) *table {
	t := &table{services: map[string]*Service{}, namespaces: map[string]bool{}}
	for i := range r.Services {
		s := r.Services[i] // copy: the caller keeps its slice
		s.Endpoints = slices.Clone(s.Endpoints)
		slices.SortFunc(s.Endpoints, func(a, b netip.Addr) int { return a.Compare(b) })
		s.Endpoints = slices.Compact(s.Endpoints)
		ns, name := strings.ToLower(s.Namespace), strings.ToLower(s.Name)
		t.services[name+"."+ns] = &s
		t.namespaces[ns] = true
	}
	return t
}

// nameKind is what a name inside the cluster domain asks for.
type nameKind int

const (
	kindOther    nameKind = iota // not a name moor serves records for
	kindApex                     // <domain>, svc.<domain>, <ns>.svc.<domain>
	kindService                  // <svc>.<ns>.svc.<domain>
	kindEndpoint                 // <a-b-c-d>.<svc>.<ns>.svc.<domain>
	kindSRV                      // _<port>._<proto>.<svc>.<ns>.svc.<domain>
	kindProto                    // _<proto>.<svc>.<ns>.svc.<domain> (empty non-terminal)
)

// parsedName is a query name split against the cluster domain.
type parsedName struct {
	kind          nameKind
	ns, svc       string
	port, proto   string     // kindSRV (port) and kindSRV/kindProto (proto)
	endpoint      netip.Addr // kindEndpoint
	namespaceOnly bool       // kindApex for <ns>.svc.<domain>
}

// parseName splits qname (any case, with or without the final dot) against
// domain (lower case, no final dot). inDomain is false for names outside
// the domain, which are forwarded.
func parseName(qname, domain string) (p parsedName, inDomain bool) {
	name := strings.TrimSuffix(strings.ToLower(qname), ".")
	if name == domain {
		return parsedName{kind: kindApex}, true
	}
	rest, ok := strings.CutSuffix(name, "."+domain)
	if !ok {
		return parsedName{}, false
	}
	if rest == "" {
		return parsedName{kind: kindOther}, true
	}
	labels := strings.Split(rest, ".")
	n := len(labels)
	if labels[n-1] != "svc" {
		return parsedName{kind: kindOther}, true
	}
	switch n {
	case 1:
		return parsedName{kind: kindApex}, true
	case 2:
		return parsedName{kind: kindApex, ns: labels[0], namespaceOnly: true}, true
	case 3:
		return parsedName{kind: kindService, svc: labels[0], ns: labels[1]}, true
	case 4:
		svc, ns := labels[1], labels[2]
		if proto, ok := strings.CutPrefix(labels[0], "_"); ok && proto != "" {
			return parsedName{kind: kindProto, svc: svc, ns: ns, proto: proto}, true
		}
		if ip, ok := dashedIP(labels[0]); ok {
			return parsedName{kind: kindEndpoint, svc: svc, ns: ns, endpoint: ip}, true
		}
	case 5:
		port, okPort := strings.CutPrefix(labels[0], "_")
		proto, okProto := strings.CutPrefix(labels[1], "_")
		if okPort && okProto && port != "" && proto != "" {
			return parsedName{kind: kindSRV, svc: labels[2], ns: labels[3], port: port, proto: proto}, true
		}
	}
	return parsedName{kind: kindOther}, true
}

// dashedIP parses an endpoint label such as 10-244-1-5.
func dashedIP(label string) (netip.Addr, bool) {
	if strings.Count(label, "-") != 3 {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(strings.ReplaceAll(label, "-", "."))
	if err != nil || !ip.Is4() {
		return netip.Addr{}, false
	}
	return ip, true
}

func dashed(ip netip.Addr) string { return strings.ReplaceAll(ip.String(), ".", "-") }

// answer is the pure core of the server for names inside the domain: the
// response code, answer and additional records. NOERROR with no answers
// is NODATA (the name exists, not with that type).
func (t *table) answer(domain string, p parsedName, qtype uint16) (rcode int, ans, extra []mdns.RR) {
	switch p.kind {
	case kindApex:
		if p.namespaceOnly && !t.namespaces[p.ns] {
			return mdns.RcodeNameError, nil, nil
		}
		return mdns.RcodeSuccess, nil, nil
	case kindService:
		s := t.services[p.svc+"."+p.ns]
		if s == nil {
			return mdns.RcodeNameError, nil, nil
		}
		if qtype != mdns.TypeA && qtype != mdns.TypeANY {
			return mdns.RcodeSuccess, nil, nil
		}
		return mdns.RcodeSuccess, aRecords(serviceName(s, domain), serviceIPs(s)), nil
	case kindEndpoint:
		s := t.services[p.svc+"."+p.ns]
		if s == nil || s.ClusterIP.IsValid() || !slices.Contains(s.Endpoints, p.endpoint) {
			return mdns.RcodeNameError, nil, nil
		}
		if qtype != mdns.TypeA && qtype != mdns.TypeANY {
			return mdns.RcodeSuccess, nil, nil
		}
		return mdns.RcodeSuccess, aRecords(endpointName(s, p.endpoint, domain), []netip.Addr{p.endpoint}), nil
	case kindProto:
		s := t.services[p.svc+"."+p.ns]
		if s == nil || !slices.ContainsFunc(s.Ports, func(pt Port) bool { return protoOf(pt) == p.proto }) {
			return mdns.RcodeNameError, nil, nil
		}
		return mdns.RcodeSuccess, nil, nil
	case kindSRV:
		return t.srv(domain, p, qtype)
	}
	return mdns.RcodeNameError, nil, nil
}

func (t *table) srv(domain string, p parsedName, qtype uint16) (int, []mdns.RR, []mdns.RR) {
	s := t.services[p.svc+"."+p.ns]
	if s == nil {
		return mdns.RcodeNameError, nil, nil
	}
	i := slices.IndexFunc(s.Ports, func(pt Port) bool {
		return pt.Name != "" && strings.ToLower(pt.Name) == p.port && protoOf(pt) == p.proto
	})
	if i < 0 {
		return mdns.RcodeNameError, nil, nil
	}
	if qtype != mdns.TypeSRV && qtype != mdns.TypeANY {
		return mdns.RcodeSuccess, nil, nil
	}
	owner := fmt.Sprintf("_%s._%s.%s", p.port, p.proto, serviceName(s, domain))
	var ans, extra []mdns.RR
	add := func(target string, ip netip.Addr) {
		ans = append(ans, &mdns.SRV{
			Hdr:      mdns.RR_Header{Name: owner, Rrtype: mdns.TypeSRV, Class: mdns.ClassINET, Ttl: ttl},
			Priority: 0, Weight: 100, Port: s.Ports[i].Port, Target: target,
		})
		extra = append(extra, aRecords(target, []netip.Addr{ip})...)
	}
	if s.ClusterIP.IsValid() {
		add(serviceName(s, domain), s.ClusterIP)
	} else {
		for _, ip := range s.Endpoints {
			add(endpointName(s, ip, domain), ip)
		}
	}
	return mdns.RcodeSuccess, ans, extra
}

func protoOf(p Port) string {
	if p.Protocol == "" {
		return "tcp"
	}
	return strings.ToLower(p.Protocol)
}

func serviceIPs(s *Service) []netip.Addr {
	if s.ClusterIP.IsValid() {
		return []netip.Addr{s.ClusterIP}
	}
	return s.Endpoints
}

func serviceName(s *Service, domain string) string {
	return strings.ToLower(s.Name + "." + s.Namespace + ".svc." + domain + ".")
}

func endpointName(s *Service, ip netip.Addr, domain string) string {
	return dashed(ip) + "." + serviceName(s, domain)
}

func aRecords(name string, ips []netip.Addr) []mdns.RR {
	out := make([]mdns.RR, 0, len(ips))
	for _, ip := range ips {
		if !ip.Is4() {
			continue // AAAA is not served: moor's pod network is IPv4
		}
		out = append(out, &mdns.A{
			Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: ttl},
			A:   ip.AsSlice(),
		})
	}
	return out
}

// soa is the authority record sent with NXDOMAIN and NODATA answers so
// resolvers cache the negative answer for ttl seconds only.
func soa(domain string) mdns.RR {
	return &mdns.SOA{
		Hdr:     mdns.RR_Header{Name: domain + ".", Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: ttl},
		Ns:      "ns.dns." + domain + ".",
		Mbox:    "hostmaster." + domain + ".",
		Serial:  1,
		Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: ttl,
	}
}
