package podnetwork

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/netplane/dns"
	"github.com/moor-dev/moor/netplane/podnet"
	"github.com/moor-dev/moor/netplane/proxy"
	"github.com/moor-dev/moor/nodeagent"
)

// ErrNotReady classifies an Attach before the node's pod network exists
// (no document with a pod CIDR synced yet).
var ErrNotReady = errors.New("pod network not ready")

// Config configures a node's network.
type Config struct {
	// NodeIP is this node's address. Required.
	NodeIP netip.Addr
	// Bridge is the node bridge; default "moor0".
	Bridge string
	// StateDir keeps the address allocations across restarts. Required.
	StateDir string
	// NetNSDir is where pod namespaces are mounted; default /var/run/netns.
	NetNSDir string
	// HostNetNS, when set (a path like /run/netns/node1), puts the node
	// side (bridge, routes, rules, the DNS listener) into that network
	// namespace instead of the agent's own. Tests use it; DNS queries to
	// upstreams still leave from the agent's namespace.
	HostNetNS string
	// DNSPort is the port the DNS server listens on at the bridge
	// gateway; default 53. Pods' resolv.conf can only name port 53.
	DNSPort int
	// DNSUpstreams receive names outside the cluster domain; nil: the
	// nameservers of the node's /etc/resolv.conf.
	DNSUpstreams []string
	// Proxy is the service proxy backend kind (proxy.KindNFTables by
	// default); NewProxy builds it once the cluster CIDR is known.
	Proxy    proxy.Kind
	NewProxy func(proxy.Config) (proxy.Backend, error)
	// Log defaults to discarding.
	Log *slog.Logger
}

// Validate reports the first mistake, naming the field.
func (c *Config) Validate() error {
	switch {
	case !c.NodeIP.IsValid():
		return errors.New("pod network: NodeIP is required: give the node's address (--node-ip)")
	case c.StateDir == "":
		return errors.New("pod network: StateDir is required (address allocations must survive restarts)")
	case c.NewProxy == nil:
		return errors.New("pod network: NewProxy is required")
	case c.DNSPort < 0 || c.DNSPort > 65535:
		return fmt.Errorf("pod network: DNSPort %d is not a port", c.DNSPort)
	}
	return nil
}

// Network implements nodeagent.Network on the kernel. Create it with New;
// the node side is set up by the first Sync that carries a pod CIDR.
type Network struct {
	cfg Config
	log *slog.Logger

	syncMu sync.Mutex // serializes Sync
	mu     sync.Mutex // guards the fields below
	pods   *podnet.Network
	cidr   netip.Prefix
	domain string
	dns    *dns.Server
	proxy  proxy.Backend
}

var _ nodeagent.Network = (*Network)(nil)

// New checks cfg; it touches nothing.
func New(cfg Config) (*Network, error) {
	if cfg.Bridge == "" {
		cfg.Bridge = "moor0"
	}
	if cfg.DNSPort == 0 {
		cfg.DNSPort = 53
	}
	if cfg.Proxy == "" {
		cfg.Proxy = proxy.KindNFTables
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Network{cfg: cfg, log: cfg.Log.With("component", "podnetwork")}, nil
}

// Sync sets up the node on the first document with a pod CIDR, then
// programs routes, the service table and the DNS records. Every step runs
// even when an earlier one failed; the errors are joined.
func (n *Network) Sync(ctx context.Context, net *api.Network, svcs []api.Service) error {
	n.syncMu.Lock()
	defer n.syncMu.Unlock()
	var errs []error
	if err := n.ensureNode(ctx, net); err != nil {
		errs = append(errs, err)
	}
	n.mu.Lock()
	pods, px, srv := n.pods, n.proxy, n.dns
	n.mu.Unlock()
	if pods != nil {
		if err := pods.Routes(ctx, Peers(net)); err != nil {
			errs = append(errs, fmt.Errorf("pod routes: %w", err))
		}
	}
	if px != nil {
		if err := px.Sync(ctx, ProxyTable(svcs, net.PodCIDR)); err != nil {
			errs = append(errs, fmt.Errorf("service proxy (%s): %w", px.Name(), err))
		}
	}
	if srv != nil {
		srv.Update(DNSRecords(svcs))
	}
	return errors.Join(errs...)
}

// ensureNode creates what is missing of the pod network, the proxy
// backend and the DNS server.
func (n *Network) ensureNode(ctx context.Context, net *api.Network) error {
	if net == nil || !net.PodCIDR.IsValid() {
		return errors.New("the server assigned this node no pod CIDR (the cluster CIDR may be exhausted): pods cannot get addresses")
	}
	n.mu.Lock()
	pods, cidr, px, srv := n.pods, n.cidr, n.proxy, n.dns
	n.mu.Unlock()
	if pods != nil && cidr != net.PodCIDR {
		return fmt.Errorf("the node's pod CIDR changed from %s to %s: running pods keep their addresses; drain the node and clear its state dir to move it", cidr, net.PodCIDR)
	}
	var errs []error
	if pods == nil {
		p, err := podnet.New(podnet.Config{
			Bridge: n.cfg.Bridge, PodCIDR: net.PodCIDR, ClusterCIDR: net.ClusterCIDR,
			StateDir: n.cfg.StateDir, NodeIP: n.cfg.NodeIP, NetNSDir: n.cfg.NetNSDir,
			HostNetNS: n.cfg.HostNetNS, Log: n.log.With("component", "podnet"),
		})
		if err == nil {
			err = p.EnsureNode(ctx)
		}
		if err != nil {
			return fmt.Errorf("set up the node's pod network: %w", err)
		}
		pods, cidr = p, net.PodCIDR
	}
	if px == nil {
		b, err := n.cfg.NewProxy(proxy.Config{Backend: n.cfg.Proxy, ClusterCIDR: net.ClusterCIDR,
			NetNSPath: n.cfg.HostNetNS, Log: n.log})
		if err != nil {
			errs = append(errs, fmt.Errorf("service proxy: %w", err))
		}
		px = b
	}
	domain := net.DNSDomain
	if domain == "" {
		domain = api.DefaultDNSDomain
	}
	if srv == nil {
		var err error
		if srv, err = n.startDNS(pods.Gateway(), domain); err != nil {
			errs = append(errs, err)
		}
	}
	n.mu.Lock()
	n.pods, n.cidr, n.proxy, n.dns, n.domain = pods, cidr, px, srv, domain
	n.mu.Unlock()
	return errors.Join(errs...)
}

func (n *Network) startDNS(gw netip.Addr, domain string) (*dns.Server, error) {
	listen := net.JoinHostPort(gw.String(), strconv.Itoa(n.cfg.DNSPort))
	srv, err := dns.New(dns.Config{Listen: listen, Domain: domain, Upstreams: n.cfg.DNSUpstreams,
		Log: n.log.With("component", "dns")})
	if err != nil {
		return nil, fmt.Errorf("DNS server: %w", err)
	}
	// The server lives until Close, not until one Sync's context ends.
	start := func() error { return srv.Start(context.Background()) }
	if err := podnet.RunInNetNS(n.cfg.HostNetNS, start); err != nil {
		return nil, fmt.Errorf("DNS server on %s: %w", listen, err)
	}
	return srv, nil
}

// Attach sets up (or repairs and returns) the pod's namespace and address.
func (n *Network) Attach(ctx context.Context, pod *api.Pod) (nodeagent.Attachment, error) {
	n.mu.Lock()
	pods, domain := n.pods, n.domain
	n.mu.Unlock()
	if pods == nil {
		return nodeagent.Attachment{}, fmt.Errorf("%w: the node has no pod CIDR from the server yet", ErrNotReady)
	}
	att, err := pods.Setup(ctx, pod.UID)
	if err != nil {
		return nodeagent.Attachment{}, err
	}
	return nodeagent.Attachment{
		NetNSPath:  att.NetNSPath,
		IP:         att.IP,
		ResolvConf: dns.ResolvConf(pod.Namespace, att.Gateway.String(), domain),
	}, nil
}

// Detach removes the pod's namespace and frees its address.
func (n *Network) Detach(ctx context.Context, podUID string) error {
	n.mu.Lock()
	pods := n.pods
	n.mu.Unlock()
	if pods == nil {
		return nil
	}
	return pods.Teardown(ctx, podUID)
}

// Attached lists the pods holding an address; none before the node is set
// up.
func (n *Network) Attached(ctx context.Context) ([]string, error) {
	n.mu.Lock()
	pods := n.pods
	n.mu.Unlock()
	if pods == nil {
		return nil, nil
	}
	return pods.List(ctx)
}

// Close stops the DNS server. Routes, rules and pod namespaces stay: pods
// keep running and a restarted agent picks them up.
func (n *Network) Close() error {
	n.mu.Lock()
	srv := n.dns
	n.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// Cleanup stops the DNS server and removes everything the node's network
// installed in the host: the service proxy's rules (proxy.Backend.Cleanup;
// the nftables table moor and the iptables MOOR- chains are both removed,
// whichever backend is configured, as an earlier run may have used the
// other), then the pods' namespaces and veths, the bridge, the host-gw
// routes, podnet's iptables rules and the address allocations
// (podnet.Cleanup). It removes what an earlier run left too, so it also
// works before the first Sync. Pods still running lose their network.
//
// Every step runs even when an earlier one failed; the errors are joined.
// Cleanup is idempotent; a later Sync builds the node's network again.
// It is meant for `moor up` on exit and `moor agent
// --cleanup-network-on-exit`; Close leaves everything in place instead.
func (n *Network) Cleanup(ctx context.Context) error {
	n.syncMu.Lock()
	defer n.syncMu.Unlock()
	n.mu.Lock()
	pods, px, srv := n.pods, n.proxy, n.dns
	n.pods, n.cidr, n.proxy, n.dns = nil, netip.Prefix{}, nil, nil
	n.mu.Unlock()
	var errs []error
	if srv != nil {
		if err := srv.Close(); err != nil {
			errs = append(errs, fmt.Errorf("stop DNS server: %w", err))
		}
	}
	for _, kind := range []proxy.Kind{proxy.KindNFTables, proxy.KindIPTables} {
		b := px
		if b == nil || b.Name() != string(kind) {
			var err error
			b, err = n.cfg.NewProxy(proxy.Config{Backend: kind, NetNSPath: n.cfg.HostNetNS, Log: n.log})
			if err != nil {
				// e.g. iptables is not installed: nothing of it to remove.
				n.log.Debug("no proxy backend to clean up", "backend", kind, "err", err)
				continue
			}
		}
		if err := b.Cleanup(ctx); err != nil {
			errs = append(errs, fmt.Errorf("remove service proxy rules (%s): %w", kind, err))
		}
		if c, ok := b.(io.Closer); ok {
			_ = c.Close()
		}
	}
	if pods != nil {
		if err := pods.Cleanup(ctx); err != nil {
			errs = append(errs, fmt.Errorf("remove pod network: %w", err))
		}
	} else {
		err := podnet.Cleanup(ctx, podnet.CleanupConfig{Bridge: n.cfg.Bridge, StateDir: n.cfg.StateDir,
			HostNetNS: n.cfg.HostNetNS, Log: n.log.With("component", "podnet")})
		if err != nil {
			errs = append(errs, fmt.Errorf("remove pod network: %w", err))
		}
	}
	return errors.Join(errs...)
}
