package planner

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/manifest"
)

// Defaults of NetworkConfig, as in Kubernetes (flannel's cluster CIDR,
// kube-apiserver's service CIDR and node port range).
var (
	DefaultClusterCIDR = netip.MustParsePrefix("10.244.0.0/16")
)

// DefaultNodeCIDRSize is the prefix length of each node's pod CIDR.
const DefaultNodeCIDRSize = 24

// dnsServiceIPIndex is the offset of the cluster DNS address in the
// service CIDR: 10.96.0.10, as kube-dns.
const dnsServiceIPIndex = 10

// NetworkConfig is the cluster network the planner allocates from. Zero
// fields take their defaults.
type NetworkConfig struct {
	// ClusterCIDR is where pods get their addresses (default
	// 10.244.0.0/16); each node gets a slice of NodeCIDRSize bits.
	ClusterCIDR  netip.Prefix
	NodeCIDRSize int // default 24
	// ServiceCIDR is where Services get their virtual IPs (default
	// 10.96.0.0/12).
	ServiceCIDR netip.Prefix
	// NodePortRange is the inclusive range of node ports (default
	// 30000-32767).
	NodePortRange [2]int
	// DNSDomain is the cluster domain (default cluster.local).
	DNSDomain string
}

// withDefaults returns c with zero fields set to their defaults.
func (c NetworkConfig) withDefaults() NetworkConfig {
	if !c.ClusterCIDR.IsValid() {
		c.ClusterCIDR = DefaultClusterCIDR
	}
	if c.NodeCIDRSize == 0 {
		c.NodeCIDRSize = DefaultNodeCIDRSize
	}
	if !c.ServiceCIDR.IsValid() {
		c.ServiceCIDR = manifest.DefaultServiceCIDR
	}
	if c.NodePortRange == [2]int{} {
		c.NodePortRange = manifest.DefaultNodePortRange
	}
	if c.DNSDomain == "" {
		c.DNSDomain = api.DefaultDNSDomain
	}
	c.ClusterCIDR, c.ServiceCIDR = c.ClusterCIDR.Masked(), c.ServiceCIDR.Masked()
	return c
}

// Validate fills in defaults and checks the configuration.
func (c *NetworkConfig) Validate() error {
	*c = c.withDefaults()
	switch {
	case !c.ClusterCIDR.Addr().Is4() || !c.ServiceCIDR.Addr().Is4():
		return fmt.Errorf("network: cluster CIDR %s and service CIDR %s must be IPv4; moor supports IPv4 only", c.ClusterCIDR, c.ServiceCIDR)
	case c.ClusterCIDR.Overlaps(c.ServiceCIDR):
		return fmt.Errorf("network: cluster CIDR %s and service CIDR %s overlap; pick disjoint ranges", c.ClusterCIDR, c.ServiceCIDR)
	case c.NodeCIDRSize < c.ClusterCIDR.Bits() || c.NodeCIDRSize > 30:
		return fmt.Errorf("network: node CIDR size /%d must lie between the cluster CIDR's /%d and /30", c.NodeCIDRSize, c.ClusterCIDR.Bits())
	case c.ServiceCIDR.Bits() > 28:
		return fmt.Errorf("network: service CIDR %s is too small; use /28 or larger", c.ServiceCIDR)
	}
	if lo, hi := c.NodePortRange[0], c.NodePortRange[1]; lo < 1 || hi > 65535 || lo > hi {
		return fmt.Errorf("network: node port range %d-%d must lie within 1-65535 with the first not above the last", lo, hi)
	}
	return nil
}

// DNSServiceIP is the cluster DNS's virtual IP: the tenth address of the
// service CIDR (10.96.0.10 by default). No Service may claim it.
func (c NetworkConfig) DNSServiceIP() netip.Addr {
	c = c.withDefaults()
	return addrAt(c.ServiceCIDR.Addr(), dnsServiceIPIndex)
}

// ManifestOptions is what manifest validation needs to know of c.
func (c NetworkConfig) ManifestOptions() manifest.Options {
	c = c.withDefaults()
	return manifest.Options{
		ServiceCIDR:        c.ServiceCIDR,
		NodePortRange:      c.NodePortRange,
		ReservedClusterIPs: map[netip.Addr]string{c.DNSServiceIP(): "the cluster DNS service"},
	}
}

// Allocations are the pod CIDRs, cluster IPs and node ports the planner
// handed out. Pass the last Output.Allocations back as the next
// Input.Allocations so they stay stable across commits and restarts.
type Allocations struct {
	// PodCIDRs maps a node name to its pod CIDR.
	PodCIDRs map[string]netip.Prefix `json:"podCIDRs,omitempty"`
	// ClusterIPs maps "namespace/name" of a Service to its virtual IP.
	ClusterIPs map[string]netip.Addr `json:"clusterIPs,omitempty"`
	// NodePorts maps NodePortKey of a Service port to its node port.
	NodePorts map[string]int32 `json:"nodePorts,omitempty"`
}

// NodePortKey identifies a Service port for node port allocation: the
// port number and protocol, not its name, so renaming keeps the node port.
func NodePortKey(namespace, name string, port int32, protocol string) string {
	return fmt.Sprintf("%s/%s/%d/%s", namespace, name, port, protocol)
}

// addrAt returns the IPv4 address n after base.
func addrAt(base netip.Addr, n uint32) netip.Addr {
	b := base.As4()
	binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])+n)
	return netip.AddrFrom4(b)
}

// addrIndex returns a's offset from base.
func addrIndex(base, a netip.Addr) uint32 {
	x, y := base.As4(), a.As4()
	return binary.BigEndian.Uint32(y[:]) - binary.BigEndian.Uint32(x[:])
}

// allocatePodCIDRs gives every node a pod CIDR: its previous one when
// still valid, else the lowest free one, nodes taken in name order.
func allocatePodCIDRs(cfg NetworkConfig, nodes []Node, prev map[string]netip.Prefix) (map[string]netip.Prefix, []string) {
	out := make(map[string]netip.Prefix, len(nodes))
	if cfg.NodeCIDRSize < cfg.ClusterCIDR.Bits() || cfg.NodeCIDRSize > 32 || !cfg.ClusterCIDR.Addr().Is4() {
		return out, []string{fmt.Sprintf("no pod CIDRs: node CIDR size /%d does not fit cluster CIDR %s", cfg.NodeCIDRSize, cfg.ClusterCIDR)}
	}
	count := uint64(1) << (cfg.NodeCIDRSize - cfg.ClusterCIDR.Bits())
	step := uint32(1) << (32 - cfg.NodeCIDRSize)
	used := map[uint64]bool{}
	var rest []string
	for _, n := range nodes { // sorted by name
		p, ok := prev[n.Name]
		if ok && p.Bits() == cfg.NodeCIDRSize && p == p.Masked() && cfg.ClusterCIDR.Contains(p.Addr()) {
			i := uint64(addrIndex(cfg.ClusterCIDR.Addr(), p.Addr()) / step)
			if !used[i] {
				used[i], out[n.Name] = true, p
				continue
			}
		}
		rest = append(rest, n.Name)
	}
	var warnings []string
	next := uint64(0)
	for _, name := range rest {
		for next < count && used[next] {
			next++
		}
		if next == count {
			warnings = append(warnings, fmt.Sprintf("node %s has no pod CIDR: cluster CIDR %s has no free /%d left; widen --cluster-cidr", name, cfg.ClusterCIDR, cfg.NodeCIDRSize))
			continue
		}
		used[next] = true
		out[name] = netip.PrefixFrom(addrAt(cfg.ClusterCIDR.Addr(), uint32(next)*step), cfg.NodeCIDRSize)
	}
	return out, warnings
}

// networks builds each node's Network section.
func networks(cfg NetworkConfig, nodes []Node, cidrs map[string]netip.Prefix) map[string]*api.Network {
	var peers []api.Peer
	for _, n := range nodes { // sorted by name
		if p, ok := cidrs[n.Name]; ok && n.Address.IsValid() {
			peers = append(peers, api.Peer{Name: n.Name, NodeIP: n.Address, PodCIDR: p})
		}
	}
	out := make(map[string]*api.Network, len(nodes))
	for _, n := range nodes {
		others := make([]api.Peer, 0, len(peers))
		for _, p := range peers {
			if p.Name != n.Name {
				others = append(others, p)
			}
		}
		out[n.Name] = &api.Network{
			PodCIDR:      cidrs[n.Name],
			ClusterCIDR:  cfg.ClusterCIDR,
			ServiceCIDR:  cfg.ServiceCIDR,
			DNSDomain:    cfg.DNSDomain,
			DNSServiceIP: cfg.DNSServiceIP(),
			Peers:        others,
		}
	}
	return out
}
