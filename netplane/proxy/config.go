package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Kind selects a backend.
type Kind string

// ErrInvalidConfig classifies a Config no backend can use.
var ErrInvalidConfig = errors.New("invalid proxy configuration")

// Backend kinds.
const (
	KindNFTables Kind = "nftables"
	KindIPTables Kind = "iptables"
)

// Default NodePort range, as in Kubernetes.
const (
	DefaultNodePortMin = 30000
	DefaultNodePortMax = 32767
)

// Backend programs a service Table into the kernel. Sync may apply the whole
// table or only what changed since the last Sync; calling it again with an
// unchanged table is cheap and repairs rules removed from outside.
type Backend interface {
	Name() string
	Sync(ctx context.Context, t *Table) error
	// Cleanup removes everything this backend ever installed.
	Cleanup(ctx context.Context) error
}

// Config configures a backend.
type Config struct {
	// Backend is KindNFTables (default) or KindIPTables.
	Backend Kind
	// NetNSPath, when set (e.g. /run/netns/node1), programs the rules inside
	// that network namespace instead of the caller's.
	NetNSPath string
	// NodePortMin/Max bound valid NodePorts; zero means the default range.
	NodePortMin, NodePortMax uint16
	// ClusterCIDR, when valid, makes traffic to a VIP from outside it
	// masqueraded so replies return through this node.
	ClusterCIDR netip.Prefix
	// MasqueradeAll masquerades all VIP traffic.
	MasqueradeAll bool
	// ResyncPeriod bounds the time between full resyncs, which repair any
	// external edit of the rules; zero means one minute.
	ResyncPeriod time.Duration
	// Log receives the backend's messages; nil discards them.
	Log *slog.Logger
}

// WithDefaults returns c with empty fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Backend == "" {
		c.Backend = KindNFTables
	}
	if c.NodePortMin == 0 && c.NodePortMax == 0 {
		c.NodePortMin, c.NodePortMax = DefaultNodePortMin, DefaultNodePortMax
	}
	if c.ResyncPeriod == 0 {
		c.ResyncPeriod = time.Minute
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports configuration the backends cannot use.
func (c Config) Validate() error {
	switch c.Backend {
	case KindNFTables, KindIPTables:
	default:
		return fmt.Errorf("%w: proxy backend %q: use %q or %q", ErrInvalidConfig, c.Backend, KindNFTables, KindIPTables)
	}
	if c.NodePortMin == 0 || c.NodePortMin > c.NodePortMax {
		return fmt.Errorf("%w: NodePort range %d-%d: give a non-empty range such as %d-%d",
			ErrInvalidConfig, c.NodePortMin, c.NodePortMax, DefaultNodePortMin, DefaultNodePortMax)
	}
	if c.ClusterCIDR.IsValid() && !c.ClusterCIDR.Addr().Is4() {
		return fmt.Errorf("%w: cluster CIDR %s is not IPv4", ErrInvalidConfig, c.ClusterCIDR)
	}
	return nil
}
