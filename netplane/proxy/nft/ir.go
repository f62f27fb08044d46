// Package nft is moor's default service proxy backend. It renders a
// proxy.Table into the nftables table "ip moor" and applies it over netlink,
// one batch per sync, sending only the changed services' objects on a
// partial sync.
//
// Per packet: one verdict-map lookup (VIP . proto . port, or proto . port
// for NodePorts on local addresses) goes to the shared chain select-N for
// the port's N ready endpoints, whose one rule looks up
// (key . numgen random mod N) in the endpoint map and DNATs. A port without
// ready endpoints is in the no-endpoint maps and gets a reject. A service
// is therefore only map elements; only ClientIP-affinity ports get a chain.
// Cost does not grow with the number of services, and neither does a sync:
// the kernel checks each new map element against every rule bound to the
// map, so the few shared select rules keep a 10k-service load linear.
//
// The renderer (Render) is pure and golden-tested as text; Backend is the
// thin netlink shell. The package touches nothing outside the table "moor".
package nft

import (
	"fmt"
	"net/netip"
	"strings"
)

// TableName is the nftables table (family ip) moor owns.
const TableName = "moor"

// MasqMark is the packet mark bit asking nat-postrouting to masquerade.
const MasqMark = 0x4000

// Names of the fixed maps and chains.
const (
	MapServiceIPs        = "service-ips"
	MapServiceNodePorts  = "service-nodeports"
	MapNoEndpointIPs     = "no-endpoint-services"
	MapNoEndpointPorts   = "no-endpoint-nodeports"
	SetHairpin           = "hairpin"
	MapEndpoints         = "endpoints"
	MapNodePortEndpoints = "nodeport-endpoints"
	MapAffinity          = "affinity"
	ChainServices        = "services"
	ChainMasquerading    = "masquerading"
	ChainReject          = "reject-chain"
	ChainEndpointsCheck  = "service-endpoints-check"
	ChainNodePortsCheck  = "nodeport-endpoints-check"
	loopbackPrefixString = "127.0.0.0/8"
)

// KeyKind is the layout of a map key.
type KeyKind int

// Map key layouts.
const (
	KeyAddrProtoPort      KeyKind = iota // ipv4_addr . inet_proto . inet_service
	KeyProtoPort                         // inet_proto . inet_service
	KeySaddrDaddr                        // ipv4_addr . ipv4_addr
	KeyIDSaddr                           // affinity id (64 bits) . ipv4_addr
	KeyAddrProtoPortIndex                // ipv4_addr . inet_proto . inet_service . index
	KeyProtoPortIndex                    // inet_proto . inet_service . index
)

func (k KeyKind) String() string {
	switch k {
	case KeyAddrProtoPort:
		return "ipv4_addr . inet_proto . inet_service"
	case KeyProtoPort:
		return "inet_proto . inet_service"
	case KeyIDSaddr:
		return "id . ipv4_addr"
	case KeyAddrProtoPortIndex:
		return "ipv4_addr . inet_proto . inet_service . integer"
	case KeyProtoPortIndex:
		return "inet_proto . inet_service . integer"
	}
	return "ipv4_addr . ipv4_addr"
}

// Ruleset is the whole rendered table: fixed objects plus one fragment per
// service that has rules.
type Ruleset struct {
	Maps     []*MapDecl
	Base     []*Chain
	Selects  []*Chain // shared endpoint-choice chains, one per endpoint count
	Services []*Fragment
}

// DataKind is what a map maps to.
type DataKind int

// Map data kinds.
const (
	DataNone     DataKind = iota // a plain set
	DataVerdict                  // a verdict map
	DataAddrPort                 // ipv4_addr . inet_service (a DNAT target)
)

// MapDecl declares a named global map or set. Dynamic maps are filled by
// the packet path (with per-element timeouts), not by the applier.
type MapDecl struct {
	Name    string
	Key     KeyKind
	Data    DataKind
	Dynamic bool
}

// Fragment is everything one service owns; partial syncs replace fragments.
type Fragment struct {
	Key      string
	Chains   []*Chain
	Elements []Element
	// Selects lists the endpoint counts N whose shared select chains the
	// fragment's elements jump to.
	Selects []int
	// Hairpin lists ready endpoint IPs: (ip . ip) elements of SetHairpin,
	// shared between services (the applier reference-counts them).
	Hairpin []netip.Addr
}

// Element is one element of a global map: the key fields its map's KeyKind
// uses (IP, Proto, Port, Index) → goto Goto, or → To for endpoint maps.
type Element struct {
	Map   string
	IP    netip.Addr
	Proto uint8
	Port  uint16
	Index uint32
	Goto  string
	To    netip.AddrPort
}

// Hook makes a chain a base chain.
type Hook struct {
	Type     string // "nat" or "filter"
	Hook     string // prerouting, input, forward, output, postrouting
	Priority int32
}

// Chain is a named chain with its rules in order.
type Chain struct {
	Name  string
	Hook  *Hook
	Rules []Rule
}

// Rule is a sequence of statements; all matches must hold for the
// following statements to run.
type Rule []Stmt

// Stmt is one statement of a rule. The concrete types below are the whole
// vocabulary: the applier and the test evaluator switch over them.
type Stmt interface{ String() string }

// MatchSaddr matches the source address against a prefix.
type MatchSaddr struct {
	Prefix netip.Prefix
	Not    bool
}

// MatchDaddr matches the destination address against a prefix.
type MatchDaddr struct {
	Prefix netip.Prefix
	Not    bool
}

// MatchProto matches the layer-4 protocol.
type MatchProto struct{ Proto uint8 }

// MatchFibLocal matches packets whose destination is a local address.
type MatchFibLocal struct{}

// MatchMark matches packets carrying MasqMark.
type MatchMark struct{}

// SetMark sets MasqMark (Clear=false) or clears it.
type SetMark struct{ Clear bool }

// Masquerade source-NATs to the outgoing interface's address.
type Masquerade struct{}

// Verdict jumps to, goes to or returns from a chain.
type Verdict struct {
	Kind  string // jump, goto, return
	Chain string
}

// VmapLookup dispatches on a global verdict map.
type VmapLookup struct {
	Key KeyKind
	Map string
}

// SetLookup matches when the key is in a global set.
type SetLookup struct {
	Key KeyKind
	Set string
}

// Reject answers with a TCP reset (TCPReset) or ICMP port unreachable.
type Reject struct{ TCPReset bool }

// NumgenZero matches with probability 1/Mod (numgen random mod Mod == 0).
// A chain of N endpoint rules with Mod = N, N-1, ..., 1 picks uniformly, as
// kube-proxy's iptables statistic rules do. (A shared numgen map is
// quadratic to load: the kernel validates every element against every
// rule bound to the map, and registers may not carry state across chains.)
type NumgenZero struct{ Mod uint32 }

// DNATSelect picks numgen random mod N, looks up (packet key . index) in
// Map and destination-NATs there. It lives only in the shared select chains:
// one rule per endpoint count binds the endpoint maps, because the kernel
// validates every inserted map element against every rule bound to the map.
type DNATSelect struct {
	Key KeyKind // KeyAddrProtoPort (VIP) or KeyProtoPort (NodePort)
	N   int
	Map string
}

// DNAT destination-NATs to To.
type DNAT struct{ To netip.AddrPort }

// RecordAffinity stores (ID . saddr) → the DNAT target of this rule in
// MapAffinity for Timeout seconds.
type RecordAffinity struct {
	ID      uint64
	Timeout uint32
	To      netip.AddrPort
}

// DNATAffinity destination-NATs to the endpoint recorded in MapAffinity for
// (ID . saddr), refreshing its timeout; without an entry it does not match.
// ID covers the endpoint set, so a change starts afresh.
type DNATAffinity struct {
	ID      uint64
	Timeout uint32
}

func neg(not bool) string {
	if not {
		return "!= "
	}
	return ""
}

// ProtoName returns "tcp", "udp" or the number.
func ProtoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	}
	return fmt.Sprint(p)
}

func (s MatchSaddr) String() string  { return "ip saddr " + neg(s.Not) + s.Prefix.String() }
func (s MatchDaddr) String() string  { return "ip daddr " + neg(s.Not) + s.Prefix.String() }
func (s MatchProto) String() string  { return "meta l4proto " + ProtoName(s.Proto) }
func (MatchFibLocal) String() string { return "fib daddr type local" }
func (MatchMark) String() string     { return fmt.Sprintf("meta mark & 0x%x == 0x%x", MasqMark, MasqMark) }
func (Masquerade) String() string    { return "masquerade fully-random" }
func (s DNATAffinity) String() string {
	return fmt.Sprintf("dnat ip to 0x%016x . ip saddr map @%s update @%s timeout %ds", s.ID, MapAffinity, MapAffinity, s.Timeout)
}
func (s VmapLookup) String() string { return keyExpr(s.Key) + " vmap @" + s.Map }
func (s SetLookup) String() string  { return keyExpr(s.Key) + " @" + s.Set }
func (s SetMark) String() string {
	if s.Clear {
		return fmt.Sprintf("meta mark set meta mark & 0x%x", ^uint32(MasqMark))
	}
	return fmt.Sprintf("meta mark set meta mark | 0x%x", MasqMark)
}

func (s Verdict) String() string {
	if s.Chain == "" {
		return s.Kind
	}
	return s.Kind + " " + s.Chain
}

func (s Reject) String() string {
	if s.TCPReset {
		return "reject with tcp reset"
	}
	return "reject with icmp port-unreachable"
}

func (s NumgenZero) String() string { return fmt.Sprintf("numgen random mod %d == 0", s.Mod) }
func (s DNATSelect) String() string {
	return fmt.Sprintf("dnat ip to %s . numgen random mod %d map @%s", keyExpr(s.Key), s.N, s.Map)
}
func (s DNAT) String() string { return fmt.Sprintf("dnat ip to %s", s.To) }
func (s RecordAffinity) String() string {
	return fmt.Sprintf("update @%s { 0x%016x . ip saddr timeout %ds : %s . %d }", MapAffinity, s.ID, s.Timeout, s.To.Addr(), s.To.Port())
}

func keyExpr(k KeyKind) string {
	switch k {
	case KeyAddrProtoPort:
		return "ip daddr . meta l4proto . th dport"
	case KeyProtoPort:
		return "meta l4proto . th dport"
	}
	return "ip saddr . ip daddr"
}

func (r Rule) String() string {
	parts := make([]string, len(r))
	for i, s := range r {
		parts[i] = s.String()
	}
	return strings.Join(parts, " ")
}

// SelectChain names the shared chain choosing among n endpoints.
func SelectChain(nodePort bool, n int) string {
	if nodePort {
		return fmt.Sprintf("select-nodeport-%d", n)
	}
	return fmt.Sprintf("select-%d", n)
}

// ElementKey renders the element's key as nft prints it.
func (e Element) keyString(k KeyKind) string {
	switch k {
	case KeyAddrProtoPort:
		return fmt.Sprintf("%s . %s . %d", e.IP, ProtoName(e.Proto), e.Port)
	case KeyProtoPort:
		return fmt.Sprintf("%s . %d", ProtoName(e.Proto), e.Port)
	case KeyAddrProtoPortIndex:
		return fmt.Sprintf("%s . %s . %d . %d", e.IP, ProtoName(e.Proto), e.Port, e.Index)
	case KeyProtoPortIndex:
		return fmt.Sprintf("%s . %d . %d", ProtoName(e.Proto), e.Port, e.Index)
	}
	return fmt.Sprintf("%s . %s", e.IP, e.IP)
}
