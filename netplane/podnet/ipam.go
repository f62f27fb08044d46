package podnet

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
)

// ErrExhausted is returned (wrapped) when the node's pod CIDR has no free
// address left.
var ErrExhausted = errors.New("pod CIDR exhausted")

// allocator is the pure IPAM core: it hands out addresses of one IPv4 pod
// CIDR to pod IDs, reserving the network address, the gateway (the first
// host address) and the broadcast address. It does no I/O; the store
// persists it.
//
// Allocation is round-robin from the last address handed out, so a freed
// address is not reused at once (stale conntrack entries and ARP caches of
// the previous owner get time to expire).
type allocator struct {
	prefix netip.Prefix
	byPod  map[string]netip.Addr
	byIP   map[netip.Addr]string
	last   netip.Addr // last address handed out; invalid = none yet
}

// newAllocator returns an empty allocator for prefix, which must be an IPv4
// prefix of length /30 or shorter (a /31 or /32 leaves no pod address).
func newAllocator(prefix netip.Prefix) (*allocator, error) {
	if !prefix.IsValid() || !prefix.Addr().Is4() {
		return nil, fmt.Errorf("pod CIDR %q: must be an IPv4 prefix such as 10.244.1.0/24", prefix)
	}
	if prefix.Bits() > 30 {
		return nil, fmt.Errorf("pod CIDR %s: too small, use /30 or larger (network, gateway and broadcast are reserved)", prefix)
	}
	return &allocator{
		prefix: prefix.Masked(),
		byPod:  map[string]netip.Addr{},
		byIP:   map[netip.Addr]string{},
	}, nil
}

// gateway is the bridge's address: the first host address of the prefix.
func (a *allocator) gateway() netip.Addr { return a.prefix.Addr().Next() }

// broadcast is the last address of the prefix.
func (a *allocator) broadcast() netip.Addr { return lastAddr(a.prefix) }

// reserved reports whether ip may never be handed to a pod.
func (a *allocator) reserved(ip netip.Addr) bool {
	return ip == a.prefix.Addr() || ip == a.gateway() || ip == a.broadcast()
}

// capacity is the number of pod addresses in the prefix.
func (a *allocator) capacity() int {
	return 1<<(32-a.prefix.Bits()) - 3
}

// lookup returns the address held by podID.
func (a *allocator) lookup(podID string) (netip.Addr, bool) {
	ip, ok := a.byPod[podID]
	return ip, ok
}

// allocate returns podID's address, handing out a new one if it has none.
func (a *allocator) allocate(podID string) (netip.Addr, error) {
	if podID == "" {
		return netip.Addr{}, errors.New("allocate: empty pod ID")
	}
	if ip, ok := a.byPod[podID]; ok {
		return ip, nil
	}
	if len(a.byPod) >= a.capacity() {
		return netip.Addr{}, fmt.Errorf("allocate an address for pod %q: all %d addresses of %s are in use: %w",
			podID, a.capacity(), a.prefix, ErrExhausted)
	}
	ip := a.last
	if !ip.IsValid() {
		ip = a.gateway()
	}
	for {
		ip = ip.Next()
		if !a.prefix.Contains(ip) {
			ip = a.prefix.Addr()
		}
		if _, used := a.byIP[ip]; !used && !a.reserved(ip) {
			break
		}
	}
	a.assign(podID, ip)
	a.last = ip
	return ip, nil
}

// assign records ip as podID's (used when loading persisted state).
func (a *allocator) assign(podID string, ip netip.Addr) {
	a.byPod[podID] = ip
	a.byIP[ip] = podID
}

// release frees podID's address; releasing an unknown pod is a no-op.
func (a *allocator) release(podID string) {
	if ip, ok := a.byPod[podID]; ok {
		delete(a.byIP, ip)
		delete(a.byPod, podID)
	}
}

// pods returns the pod IDs holding an address, sorted.
func (a *allocator) pods() []string {
	out := make([]string, 0, len(a.byPod))
	for id := range a.byPod {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// lastAddr returns the highest address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
