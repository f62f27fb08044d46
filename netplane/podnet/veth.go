package podnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// wire makes sure the pod's namespace at rec.NetNS is connected: a veth
// with rec.HostVeth on the bridge (hairpin on, up) and eth0 in the pod
// (address, up, default route), plus lo up. Each step is idempotent; a
// half-made veth is deleted and made again.
func (n *Network) wire(rec podRecord) error {
	nodeH, closeNode, err := n.nodeHandle()
	if err != nil {
		return err
	}
	defer closeNode()
	podNS, err := netns.GetFromPath(rec.NetNS)
	if err != nil {
		return fmt.Errorf("open pod netns %s: %w", rec.NetNS, err)
	}
	defer podNS.Close()
	podH, err := netlink.NewHandleAt(podNS)
	if err != nil {
		return fmt.Errorf("open netlink in pod netns %s: %w", rec.NetNS, err)
	}
	defer podH.Close()

	bridge, err := nodeH.LinkByName(n.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("find bridge %s (run EnsureNode first): %w", n.cfg.Bridge, err)
	}
	host, err := n.ensureVeth(nodeH, podH, podNS, rec)
	if err != nil {
		return err
	}
	if err := nodeH.LinkSetMaster(host, bridge); err != nil {
		return fmt.Errorf("attach %s to bridge %s: %w", rec.HostVeth, n.cfg.Bridge, err)
	}
	// Hairpin lets a pod reach itself through a service VIP: the DNATed
	// packet leaves the bridge by the port it came in.
	if err := nodeH.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("hairpin on %s: %w", rec.HostVeth, err)
	}
	if err := nodeH.LinkSetUp(host); err != nil {
		return fmt.Errorf("bring %s up: %w", rec.HostVeth, err)
	}
	return n.configurePod(podH, rec)
}

// ensureVeth returns the host end of the pod's veth, creating the pair
// (the peer directly inside the pod namespace as eth0) if either end is
// missing.
func (n *Network) ensureVeth(nodeH, podH *netlink.Handle, podNS netns.NsHandle, rec podRecord) (netlink.Link, error) {
	hostName := rec.HostVeth
	var nf netlink.LinkNotFoundError
	host, hostErr := nodeH.LinkByName(hostName)
	if hostErr != nil && !errors.As(hostErr, &nf) {
		return nil, fmt.Errorf("find veth %s: %w", hostName, hostErr)
	}
	peer, peerErr := podH.LinkByName(PodInterface)
	if peerErr != nil && !errors.As(peerErr, &nf) {
		return nil, fmt.Errorf("find pod %s: %w", PodInterface, peerErr)
	}
	if hostErr == nil && peerErr == nil {
		// A veth's IFLA_LINK is its peer's index (in the peer's namespace).
		if _, ok := host.(*netlink.Veth); ok && peer.Attrs().ParentIndex == host.Attrs().Index {
			return host, nil
		}
	}
	// Half made (or mismatched): start over. Deleting one end deletes both.
	if hostErr == nil {
		if err := nodeH.LinkDel(host); err != nil {
			return nil, fmt.Errorf("delete stale veth %s: %w", hostName, err)
		}
	}
	if peerErr == nil {
		if err := podH.LinkDel(peer); err != nil && !errors.As(err, &nf) {
			n.log.Debug("delete stale pod eth0", "err", err)
		}
	}
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: hostName, MTU: n.cfg.MTU},
		PeerName:  PodInterface,
		// A MAC derived from the address survives re-creation, so
		// neighbours' ARP caches stay right after a repair.
		PeerHardwareAddr: macFor(rec.IP),
		PeerMTU:          uint32(n.cfg.MTU),
		PeerNamespace:    netlink.NsFd(int(podNS)),
	}
	if err := nodeH.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("create veth %s: %w", hostName, err)
	}
	host, err := nodeH.LinkByName(hostName)
	if err != nil {
		return nil, fmt.Errorf("find new veth %s: %w", hostName, err)
	}
	return host, nil
}

// configurePod brings lo and eth0 up inside the pod and gives eth0 the
// pod's address and a default route via the gateway.
func (n *Network) configurePod(podH *netlink.Handle, rec podRecord) error {
	lo, err := podH.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find pod lo: %w", err)
	}
	if err := podH.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring pod lo up: %w", err)
	}
	eth, err := podH.LinkByName(PodInterface)
	if err != nil {
		return fmt.Errorf("find pod %s: %w", PodInterface, err)
	}
	addr := &netlink.Addr{IPNet: ipNet(rec.IP, n.cfg.PodCIDR.Bits())}
	if err := podH.AddrReplace(eth, addr); err != nil {
		return fmt.Errorf("set pod address %s: %w", addr.IPNet, err)
	}
	if err := podH.LinkSetUp(eth); err != nil {
		return fmt.Errorf("bring pod %s up: %w", PodInterface, err)
	}
	def := &netlink.Route{
		LinkIndex: eth.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw:        n.Gateway().AsSlice(),
	}
	if err := podH.RouteReplace(def); err != nil {
		return fmt.Errorf("set pod default route via %s: %w", n.Gateway(), err)
	}
	return nil
}

// macFor returns a locally administered unicast MAC embedding an IPv4
// address (0a:58:a:b:c:d, as other CNIs do).
func macFor(ip netip.Addr) net.HardwareAddr {
	b := ip.As4()
	return net.HardwareAddr{0x0a, 0x58, b[0], b[1], b[2], b[3]}
}
