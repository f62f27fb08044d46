package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"

	"github.com/moor-dev/moor/netplane/proxy"
	"github.com/moor-dev/moor/netplane/proxy/backends"
	"github.com/moor-dev/moor/nodeagent/podnetwork"
)

// completeNetwork checks the network flags, then parses --node-ip or finds
// the source address of the route to the server.
func (o *agentOptions) completeNetwork() error {
	if o.podNetwork {
		if err := checkProxyBackend(proxy.Kind(o.proxyBackend)); err != nil {
			return err
		}
	}
	if o.nodeIP != "" {
		ip, err := netip.ParseAddr(o.nodeIP)
		if err != nil {
			return fmt.Errorf("--node-ip %q: %w", o.nodeIP, err)
		}
		o.agent.NodeIP = ip.Unmap()
		return nil
	}
	ip, err := routeSource(o.agent.Server)
	if err != nil {
		if o.podNetwork {
			return fmt.Errorf("find this node's address (set --node-ip): %w", err)
		}
		return nil // host network: the address is only informational
	}
	o.agent.NodeIP = ip
	return nil
}

// routeSource returns the local address the kernel would use to reach the
// server (a UDP "connection" sends nothing).
func routeSource(server string) (netip.Addr, error) {
	u, err := url.Parse(server)
	if err != nil || u.Hostname() == "" {
		return netip.Addr{}, fmt.Errorf("server URL %q has no host", server)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	c, err := net.Dial("udp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("route to %s: %w", u.Host, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// attachNetwork sets o.agent.Network when --pod-network is on and returns
// what stops it. With cleanup the stop also removes everything the pod
// network put into the host (bridge, routes, nftables/iptables rules); run
// it after the pods are gone.
func (o *agentOptions) attachNetwork(log *slog.Logger) (func(ctx context.Context, cleanup bool), error) {
	if !o.podNetwork {
		return func(context.Context, bool) {}, nil
	}
	n, err := newPodNetwork(o, log)
	if err != nil {
		return nil, err
	}
	o.agent.Network = n
	return func(ctx context.Context, cleanup bool) {
		if cleanup {
			if err := n.Cleanup(ctx); err != nil {
				log.Error("remove the node's network from the host", "err", err)
			} else {
				log.Info("removed the node's network from the host", "bridge", o.bridge)
			}
		}
		_ = n.Close()
	}, nil
}

// newPodNetwork builds the agent's pod network, proxy and DNS.
func newPodNetwork(o *agentOptions, log *slog.Logger) (*podnetwork.Network, error) {
	return podnetwork.New(podnetwork.Config{
		NodeIP:   o.agent.NodeIP,
		Bridge:   o.bridge,
		StateDir: filepath.Join(o.agent.DataDir, "network"),
		Proxy:    proxy.Kind(o.proxyBackend),
		NewProxy: newProxyBackend,
		Log:      log,
	})
}

// newProxyBackend builds the service proxy backend cfg names.
func newProxyBackend(cfg proxy.Config) (proxy.Backend, error) { return backends.New(cfg) }

// checkProxyBackend rejects an unknown --proxy-backend before anything starts.
func checkProxyBackend(k proxy.Kind) error {
	switch k {
	case proxy.KindNFTables, proxy.KindIPTables, "":
		return nil
	}
	return fmt.Errorf("--proxy-backend %q: use %s (default) or %s", k, proxy.KindNFTables, proxy.KindIPTables)
}
