package podnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteProtocol is the routing protocol number (rtm_protocol) on the routes
// podnet installs, so Routes finds and removes its own stale routes and
// leaves everyone else's alone. `ip route show proto 77` lists them.
const RouteProtocol = 77

// Peer is another node as far as pod routing cares.
type Peer struct {
	Name    string
	NodeIP  netip.Addr
	PodCIDR netip.Prefix
}

// hostRoute is one host-gw route: Dst via Gw.
type hostRoute struct {
	Dst netip.Prefix
	Gw  netip.Addr
}

// planRoutes is the pure core of Routes: from this node's pod CIDR and
// address, the peers and the routes podnet installed earlier, it returns
// the routes to replace (add or change) and the stale ones to delete, both
// sorted by destination. Peers without an address or pod CIDR, and this
// node itself, are skipped; two peers claiming the same pod CIDR are an
// error.
func planRoutes(self netip.Prefix, selfIP netip.Addr, peers []Peer, existing []hostRoute) (replace, remove []hostRoute, err error) {
	want := map[netip.Prefix]hostRoute{}
	owner := map[netip.Prefix]string{}
	for _, p := range peers {
		if !p.NodeIP.IsValid() || !p.PodCIDR.IsValid() {
			continue
		}
		dst := p.PodCIDR.Masked()
		if dst == self.Masked() || p.NodeIP == selfIP {
			continue
		}
		if o, dup := owner[dst]; dup {
			return nil, nil, fmt.Errorf("nodes %q and %q both claim pod CIDR %s", o, p.Name, dst)
		}
		owner[dst] = p.Name
		want[dst] = hostRoute{Dst: dst, Gw: p.NodeIP}
	}
	// The first existing route per destination is kept (or rewritten in
	// place by RouteReplace if its gateway changed); extra ones and routes
	// to destinations no longer wanted go.
	seen := map[netip.Prefix]bool{}
	current := map[netip.Prefix]bool{}
	for _, r := range existing {
		w, ok := want[r.Dst]
		if !ok || seen[r.Dst] {
			remove = append(remove, r)
			continue
		}
		seen[r.Dst] = true
		current[r.Dst] = w == r
	}
	for dst, w := range want {
		if !current[dst] {
			replace = append(replace, w)
		}
	}
	byDst := func(rs []hostRoute) {
		sort.Slice(rs, func(i, j int) bool {
			if rs[i].Dst.Addr() != rs[j].Dst.Addr() {
				return rs[i].Dst.Addr().Less(rs[j].Dst.Addr())
			}
			return rs[i].Dst.Bits() < rs[j].Dst.Bits()
		})
	}
	byDst(replace)
	byDst(remove)
	return replace, remove, nil
}

// Routes programs host-gw routes to every peer's pod CIDR via the peer's
// node address, and removes the routes podnet installed earlier for nodes
// no longer listed. Peers may include this node (it is skipped).
func (n *Network) Routes(ctx context.Context, peers []Peer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h, closeH, err := n.nodeHandle()
	if err != nil {
		return err
	}
	defer closeH()
	filter := &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
	cur, err := h.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("list moor routes: %w", err)
	}
	existing := make([]hostRoute, 0, len(cur))
	for _, r := range cur {
		existing = append(existing, fromNetlink(r))
	}
	replace, remove, err := planRoutes(n.cfg.PodCIDR, n.cfg.NodeIP, peers, existing)
	if err != nil {
		return err
	}
	for _, r := range remove {
		if err := h.RouteDel(toNetlink(r)); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("remove stale route to %s via %s: %w", r.Dst, r.Gw, err)
		}
		n.log.Info("removed pod route", "dst", r.Dst, "via", r.Gw)
	}
	for _, r := range replace {
		if err := h.RouteReplace(toNetlink(r)); err != nil {
			if errors.Is(err, unix.ENETUNREACH) {
				return fmt.Errorf("route to pod CIDR %s via %s: the node address is not on a directly connected network (host-gw needs all nodes on one L2 segment): %w", r.Dst, r.Gw, err)
			}
			return fmt.Errorf("route to pod CIDR %s via %s: %w", r.Dst, r.Gw, err)
		}
		n.log.Info("installed pod route", "dst", r.Dst, "via", r.Gw)
	}
	return nil
}

func toNetlink(r hostRoute) *netlink.Route {
	return &netlink.Route{
		Dst:      &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), 32)},
		Gw:       r.Gw.AsSlice(),
		Protocol: RouteProtocol,
		Table:    unix.RT_TABLE_MAIN,
	}
}

func fromNetlink(r netlink.Route) hostRoute {
	var out hostRoute
	if r.Dst != nil {
		if a, ok := netip.AddrFromSlice(r.Dst.IP); ok {
			bits, _ := r.Dst.Mask.Size()
			out.Dst = netip.PrefixFrom(a.Unmap(), bits)
		}
	}
	if a, ok := netip.AddrFromSlice(r.Gw); ok {
		out.Gw = a.Unmap()
	}
	return out
}
