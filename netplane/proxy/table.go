package proxy

import (
	"cmp"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// ErrInvalidTable classifies a Table (or Config) that cannot be programmed;
// the wrapping message names the offending service and field.
var ErrInvalidTable = errors.New("invalid service table")

// Protocol is a transport protocol a service port answers on.
type Protocol string

// Supported protocols.
const (
	TCP Protocol = "TCP"
	UDP Protocol = "UDP"
)

// Number returns the IP protocol number (6 or 17), 0 for unknown.
func (p Protocol) Number() uint8 {
	switch p {
	case TCP:
		return 6
	case UDP:
		return 17
	}
	return 0
}

// Affinity is a service's session affinity.
type Affinity string

// Session affinity kinds.
const (
	AffinityNone     Affinity = ""
	AffinityClientIP Affinity = "ClientIP"
)

// DefaultAffinityTimeout is Kubernetes' default ClientIP affinity timeout (3h).
const DefaultAffinityTimeout = 10800

// Table is the complete desired service state of one node.
type Table struct {
	Services []Service
}

// Service is one Kubernetes-style service.
type Service struct {
	Namespace, Name string
	// ClusterIP is the virtual IP. The zero (invalid) Addr means headless:
	// the service gets no rules at all.
	ClusterIP       netip.Addr
	Ports           []Port
	SessionAffinity Affinity
	// AffinityTimeout is in seconds; 0 means DefaultAffinityTimeout.
	AffinityTimeout uint32
}

// Port is one service port with the endpoints serving it.
type Port struct {
	Name     string
	Protocol Protocol
	Port     uint16
	// NodePort is 0 when the port is not exposed on the node's addresses.
	NodePort uint16
	// Endpoints carry the target port resolved per endpoint.
	Endpoints []Endpoint
}

// Endpoint is one backend of a service port.
type Endpoint struct {
	IP    netip.Addr
	Port  uint16
	Ready bool
	// Local marks an endpoint running on this node. Only a local endpoint
	// can reach itself through its service (hairpin), so only local
	// endpoints get the hairpin masquerade rule.
	Local bool
}

// Key returns "namespace/name".
func (s *Service) Key() string { return s.Namespace + "/" + s.Name }

// Headless reports whether the service has no VIP (clusterIP: None).
func (s *Service) Headless() bool { return !s.ClusterIP.IsValid() }

// Timeout returns the effective affinity timeout in seconds.
func (s *Service) Timeout() uint32 {
	if s.AffinityTimeout == 0 {
		return DefaultAffinityTimeout
	}
	return s.AffinityTimeout
}

// PortID names one service port uniquely: "ns/name/tcp/portname" (the port
// number replaces an empty name).
func PortID(s *Service, p *Port) string {
	name := p.Name
	if name == "" {
		name = fmt.Sprint(p.Port)
	}
	return s.Key() + "/" + strings.ToLower(string(p.Protocol)) + "/" + name
}

// ReadyEndpoints returns the ready endpoints in canonical order.
func (p *Port) ReadyEndpoints() []Endpoint {
	var out []Endpoint
	for _, e := range p.Endpoints {
		if e.Ready {
			out = append(out, e)
		}
	}
	return out
}

// Sort puts the table in canonical order in place: services by key, ports by
// (protocol, port), endpoints by (IP, port). Renderers require sorted input.
func (t *Table) Sort() {
	sortIfNeeded(t.Services, compareServices)
	for i := range t.Services {
		t.Services[i].sort()
	}
}

// compareServices orders services by (namespace, name).
func compareServices(a, b Service) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// sort puts the service's ports and endpoints in canonical order.
func (s *Service) sort() {
	sortIfNeeded(s.Ports, func(a, b Port) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
	})
	for j := range s.Ports {
		sortIfNeeded(s.Ports[j].Endpoints, func(a, b Endpoint) int {
			return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port))
		})
	}
}

// sortIfNeeded sorts s unless it already is: tables are usually resynced
// unchanged, and checking is much cheaper than sorting.
func sortIfNeeded[S ~[]E, E any](s S, cmp func(a, b E) int) {
	if !slices.IsSortedFunc(s, cmp) {
		slices.SortFunc(s, cmp)
	}
}

// Hash returns a digest of everything in the service that affects rules.
// Callers compare hashes of sorted services to find what changed.
func (s *Service) Hash() string {
	var buf [512]byte
	b := buf[:0]
	str := func(v string) { b = binary.AppendUvarint(b, uint64(len(v))); b = append(b, v...) }
	addr := func(a netip.Addr) {
		switch {
		case a.Is4():
			a4 := a.As4()
			b = append(append(b, 4), a4[:]...)
		case a.IsValid():
			a16 := a.As16()
			b = append(append(b, 16), a16[:]...)
		default:
			b = append(b, 0)
		}
	}
	str(s.Namespace)
	str(s.Name)
	addr(s.ClusterIP)
	str(string(s.SessionAffinity))
	b = binary.BigEndian.AppendUint32(b, s.AffinityTimeout)
	for _, p := range s.Ports {
		str(p.Name)
		str(string(p.Protocol))
		b = binary.BigEndian.AppendUint16(b, p.Port)
		b = binary.BigEndian.AppendUint16(b, p.NodePort)
		b = binary.AppendUvarint(b, uint64(len(p.Endpoints)))
		for _, e := range p.Endpoints {
			addr(e.IP)
			b = binary.BigEndian.AppendUint16(b, e.Port)
			b = append(b, boolByte(e.Ready)|boolByte(e.Local)<<1)
		}
	}
	sum := sha256.Sum256(b)
	return hashEncoding.EncodeToString(sum[:10])
}

var hashEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// ShortHash returns the first n characters of the base32 SHA-256 of s; it
// makes stable, name-safe identifiers for chains.
func ShortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hashEncoding.EncodeToString(sum[:])[:n]
}

// Validate checks the table for what no backend can program: IPv6 or
// invalid addresses, unknown protocols, zero ports, duplicate services,
// ports or NodePorts, NodePorts outside [npMin, npMax].
func (t *Table) Validate(npMin, npMax uint16) error {
	var errs []error
	seen := make(map[string]bool, len(t.Services))
	nodePorts := map[nodePortKey]string{}
	for i := range t.Services {
		s := &t.Services[i]
		errs = append(errs, validateService(s, npMin, npMax)...)
		if seen[s.Key()] {
			errs = append(errs, invalid(s, "listed twice; merge the two entries"))
		}
		seen[s.Key()] = true
		for _, p := range s.Ports {
			if p.NodePort == 0 {
				continue
			}
			nk := nodePortKey{p.Protocol, p.NodePort}
			if other, ok := nodePorts[nk]; ok {
				errs = append(errs, nodePortTaken(s, nk, other))
			}
			nodePorts[nk] = s.Key()
		}
	}
	return errors.Join(errs...)
}

// nodePortKey is a NodePort as the kernel sees it: protocol and port.
type nodePortKey struct {
	proto Protocol
	port  uint16
}

func invalid(s *Service, format string, a ...any) error {
	return fmt.Errorf("%w: service %s: %s", ErrInvalidTable, s.Key(), fmt.Sprintf(format, a...))
}

func nodePortTaken(s *Service, nk nodePortKey, other string) error {
	return invalid(s, "nodePort %s/%d is already used by %s", nk.proto, nk.port, other)
}

// validateService checks one service on its own: everything Validate
// checks except duplicate services and NodePorts shared between services.
func validateService(s *Service, npMin, npMax uint16) []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, invalid(s, format, a...)) }
	if s.Namespace == "" || s.Name == "" {
		bad("namespace and name are required")
	}
	if s.ClusterIP.IsValid() && !s.ClusterIP.Is4() {
		bad("clusterIP %s is not IPv4; only IPv4 services are supported", s.ClusterIP)
	}
	if s.SessionAffinity != AffinityNone && s.SessionAffinity != AffinityClientIP {
		bad("sessionAffinity %q: use ClientIP or leave empty", s.SessionAffinity)
	}
	for i, p := range s.Ports {
		if p.Protocol.Number() == 0 {
			bad("port %d: protocol %q is not supported; use TCP or UDP", p.Port, p.Protocol)
		}
		if p.Port == 0 {
			bad("port %q: port number 0 is invalid", p.Name)
		}
		for _, q := range s.Ports[:i] {
			if q.Protocol == p.Protocol && q.Port == p.Port {
				bad("port %s/%d is listed twice", p.Protocol, p.Port)
				break
			}
		}
		if p.NodePort != 0 && (p.NodePort < npMin || p.NodePort > npMax) {
			bad("nodePort %d is outside the NodePort range %d-%d", p.NodePort, npMin, npMax)
		}
		for _, e := range p.Endpoints {
			if !e.IP.Is4() {
				bad("port %d: endpoint %s is not an IPv4 address", p.Port, e.IP)
			}
			if e.Port == 0 {
				bad("port %d: endpoint %s has target port 0", p.Port, e.IP)
			}
		}
	}
	return errs
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}
