package podnet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/vishvananda/netlink"
)

// PodInterface is the pod side of the veth, inside the pod's namespace.
const PodInterface = "eth0"

// Config configures a node's pod network.
type Config struct {
	// Bridge is the node bridge pods attach to; default "moor0".
	Bridge string
	// PodCIDR is this node's pod CIDR (IPv4, /30 or larger); the bridge
	// gets its first address, pods the rest.
	PodCIDR netip.Prefix
	// ClusterCIDR holds every node's pod CIDR; traffic leaving it is
	// masqueraded.
	ClusterCIDR netip.Prefix
	// StateDir holds the IPAM state (ipam.json).
	StateDir string
	// NodeIP is this node's address (the gateway other nodes route this
	// node's pod CIDR through).
	NodeIP netip.Addr
	// HostNetNS is the network namespace the node runs in: "" = the
	// current one, else a path like /var/run/netns/node-a (tests).
	HostNetNS string
	// NetNSDir is where pod namespaces are bind-mounted as
	// moor-<hash of pod ID>; default /var/run/netns (visible to `ip netns`).
	NetNSDir string
	// MTU of the bridge and veths; default 1500.
	MTU int
	// Log receives progress messages; default: discarded.
	Log *slog.Logger
}

// Validate reports the first configuration mistake, naming the field.
func (c Config) Validate() error {
	switch {
	case c.Bridge == "" || len(c.Bridge) > 15:
		return fmt.Errorf("podnet: Bridge %q: must be 1 to 15 characters", c.Bridge)
	case !c.PodCIDR.IsValid() || !c.PodCIDR.Addr().Is4():
		return fmt.Errorf("podnet: PodCIDR %q: must be an IPv4 prefix such as 10.244.1.0/24", c.PodCIDR)
	case c.PodCIDR.Bits() > 30:
		return fmt.Errorf("podnet: PodCIDR %s: too small, use /30 or larger", c.PodCIDR)
	case !c.ClusterCIDR.IsValid() || !c.ClusterCIDR.Addr().Is4():
		return fmt.Errorf("podnet: ClusterCIDR %q: must be an IPv4 prefix such as 10.244.0.0/16", c.ClusterCIDR)
	case c.ClusterCIDR.Bits() > c.PodCIDR.Bits() || !c.ClusterCIDR.Contains(c.PodCIDR.Addr()):
		return fmt.Errorf("podnet: PodCIDR %s is not inside ClusterCIDR %s", c.PodCIDR, c.ClusterCIDR)
	case c.StateDir == "":
		return errors.New("podnet: StateDir is required (IPAM state must survive restarts)")
	case !c.NodeIP.IsValid():
		return errors.New("podnet: NodeIP is required")
	case c.HostNetNS != "" && !filepath.IsAbs(c.HostNetNS):
		return fmt.Errorf("podnet: HostNetNS %q: must be an absolute path", c.HostNetNS)
	case !filepath.IsAbs(c.NetNSDir):
		return fmt.Errorf("podnet: NetNSDir %q: must be an absolute path", c.NetNSDir)
	case c.MTU < 576 || c.MTU > 65535:
		return fmt.Errorf("podnet: MTU %d: must be between 576 and 65535", c.MTU)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Bridge == "" {
		c.Bridge = "moor0"
	}
	if c.NetNSDir == "" {
		c.NetNSDir = "/var/run/netns"
	}
	if c.MTU == 0 {
		c.MTU = 1500
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Attachment is a pod's place on the pod network.
type Attachment struct {
	// NetNSPath is the pod's network namespace: put it in the OCI spec's
	// network namespace entry of every container of the pod.
	NetNSPath string
	// IP is the pod's address (status.podIP); Gateway is the bridge's.
	IP      netip.Addr
	Gateway netip.Addr
	// HostVeth is the node side of the pod's veth.
	HostVeth string
}

// Network is one node's pod network. Its methods are safe for concurrent
// use; they serialize on the node.
type Network struct {
	cfg   Config
	log   *slog.Logger
	mu    sync.Mutex
	alloc *allocator
	recs  map[string]podRecord
}

// New loads the IPAM state; it does not touch the kernel.
func New(cfg Config) (*Network, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	alloc, recs, err := loadState(cfg.StateDir, cfg.PodCIDR)
	if err != nil {
		return nil, err
	}
	return &Network{cfg: cfg, log: cfg.Log, alloc: alloc, recs: recs}, nil
}

// Gateway is the bridge address pods route through (and the address a
// node-local DNS server listens on).
func (n *Network) Gateway() netip.Addr { return n.alloc.gateway() }

func (n *Network) nodeHandle() (*netlink.Handle, func(), error) {
	return handleAt(n.cfg.HostNetNS)
}

// names derives the namespace path and host veth name from a pod ID.
func (n *Network) names(podID string) (nsPath, hostVeth string) {
	sum := sha256.Sum256([]byte(podID))
	h := hex.EncodeToString(sum[:])
	return filepath.Join(n.cfg.NetNSDir, "moor-"+h[:12]), "mv" + h[:12]
}

// EnsureNode sets up the node side: the bridge with the gateway address,
// IP forwarding, bridge netfilter (so service DNAT also applies between
// pods on one bridge) and the iptables chains MOOR-PODNET-EGRESS (nat:
// masquerade pod traffic leaving ClusterCIDR) and MOOR-PODNET-FORWARD
// (filter: accept bridge traffic). Idempotent.
func (n *Network) EnsureNode(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.ensureBridge(); err != nil {
		return err
	}
	if err := writeSysctl(n.cfg.HostNetNS, "net/ipv4/ip_forward", "1"); err != nil {
		return fmt.Errorf("enable IP forwarding: %w", err)
	}
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err == nil {
		if err := writeSysctl(n.cfg.HostNetNS, "net/bridge/bridge-nf-call-iptables", "1"); err != nil {
			return fmt.Errorf("enable bridge netfilter: %w", err)
		}
	} else {
		n.log.Warn("br_netfilter is not loaded: a pod reaching a service VIP backed by a pod on the same node may get no reply; run `modprobe br_netfilter`")
	}
	rules := renderRules(n.cfg.PodCIDR.Masked(), n.cfg.ClusterCIDR.Masked(), n.cfg.Bridge)
	if err := (iptables{netns: n.cfg.HostNetNS}).apply(ctx, rules); err != nil {
		return err
	}
	n.log.Info("node pod network ready", "bridge", n.cfg.Bridge, "gateway", n.Gateway(), "podCIDR", n.cfg.PodCIDR)
	return nil
}

func (n *Network) ensureBridge() error {
	h, closeH, err := n.nodeHandle()
	if err != nil {
		return err
	}
	defer closeH()
	link, err := h.LinkByName(n.cfg.Bridge)
	var nf netlink.LinkNotFoundError
	switch {
	case errors.As(err, &nf):
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.cfg.Bridge, MTU: n.cfg.MTU}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("create bridge %s: %w", n.cfg.Bridge, err)
		}
		if link, err = h.LinkByName(n.cfg.Bridge); err != nil {
			return fmt.Errorf("find bridge %s: %w", n.cfg.Bridge, err)
		}
	case err != nil:
		return fmt.Errorf("find bridge %s: %w", n.cfg.Bridge, err)
	case link.Type() != "bridge":
		return fmt.Errorf("%s is a %s, not a bridge: remove it or choose another Bridge name", n.cfg.Bridge, link.Type())
	}
	// A fixed MAC: otherwise the bridge takes the lowest port's, which
	// changes as pods come and go and leaves pods' ARP caches stale.
	if mac := macFor(n.Gateway()); link.Attrs().HardwareAddr.String() != mac.String() {
		if err := h.LinkSetHardwareAddr(link, mac); err != nil {
			return fmt.Errorf("set MAC of bridge %s: %w", n.cfg.Bridge, err)
		}
	}
	gw := &netlink.Addr{IPNet: ipNet(n.Gateway(), n.cfg.PodCIDR.Bits())}
	if err := h.AddrReplace(link, gw); err != nil {
		return fmt.Errorf("set %s on bridge %s: %w", gw.IPNet, n.cfg.Bridge, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring bridge %s up: %w", n.cfg.Bridge, err)
	}
	return nil
}

// Setup gives the pod a network namespace with lo up and eth0 (one end of
// a veth whose other end is on the bridge) holding the pod's address and a
// default route via the gateway. Calling it again for the same pod (say
// after an agent restart) returns the same attachment, repairing whatever
// is missing. EnsureNode must have run. After a failure the address stays
// allocated: retry Setup or call Teardown.
func (n *Network) Setup(ctx context.Context, podID string) (Attachment, error) {
	if err := ctx.Err(); err != nil {
		return Attachment{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	rec, ok := n.recs[podID]
	if !ok {
		ip, err := n.alloc.allocate(podID)
		if err != nil {
			return Attachment{}, err
		}
		nsPath, veth := n.names(podID)
		rec = podRecord{IP: ip, NetNS: nsPath, HostVeth: veth}
		n.recs[podID] = rec
		if err := saveState(n.cfg.StateDir, n.alloc, n.recs); err != nil {
			delete(n.recs, podID)
			n.alloc.release(podID)
			return Attachment{}, err
		}
	}
	att := Attachment{NetNSPath: rec.NetNS, IP: rec.IP, Gateway: n.Gateway(), HostVeth: rec.HostVeth}
	if !isNetNS(rec.NetNS) {
		if err := createNetNS(rec.NetNS); err != nil {
			return Attachment{}, fmt.Errorf("pod %s: %w", podID, err)
		}
	}
	if err := n.wire(rec); err != nil {
		return Attachment{}, fmt.Errorf("pod %s: %w", podID, err)
	}
	n.log.Debug("pod network ready", "pod", podID, "ip", rec.IP, "netns", rec.NetNS)
	return att, nil
}

// Teardown deletes the pod's veth and namespace and frees its address.
// An unknown pod is a no-op.
func (n *Network) Teardown(ctx context.Context, podID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	rec, ok := n.recs[podID]
	if !ok {
		return nil
	}
	h, closeH, err := n.nodeHandle()
	if err != nil {
		return err
	}
	defer closeH()
	var nf netlink.LinkNotFoundError
	if link, err := h.LinkByName(rec.HostVeth); err == nil {
		if err := h.LinkDel(link); err != nil {
			return fmt.Errorf("pod %s: delete veth %s: %w", podID, rec.HostVeth, err)
		}
	} else if !errors.As(err, &nf) {
		return fmt.Errorf("pod %s: find veth %s: %w", podID, rec.HostVeth, err)
	}
	if err := deleteNetNS(rec.NetNS); err != nil {
		return fmt.Errorf("pod %s: %w", podID, err)
	}
	n.alloc.release(podID)
	delete(n.recs, podID)
	if err := saveState(n.cfg.StateDir, n.alloc, n.recs); err != nil {
		return err
	}
	n.log.Debug("pod network removed", "pod", podID, "ip", rec.IP)
	return nil
}

// List returns the pods holding an attachment, sorted; the agent tears
// down those it no longer runs.
func (n *Network) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.alloc.pods(), nil
}

func ipNet(ip netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(bits, ip.BitLen())}
}
