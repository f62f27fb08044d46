// Package backends selects a proxy.Backend by proxy.Config.Backend; it is
// the one place that knows every backend. It owns no rules itself.
package backends

import (
	"fmt"

	"github.com/moor-dev/moor/netplane/proxy"
	"github.com/moor-dev/moor/netplane/proxy/iptables"
	"github.com/moor-dev/moor/netplane/proxy/nft"
)

// New returns the backend cfg selects ("nftables" when empty).
func New(cfg proxy.Config) (proxy.Backend, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Backend {
	case proxy.KindIPTables:
		return iptables.New(cfg)
	case proxy.KindNFTables:
		return nft.New(cfg)
	}
	return nil, fmt.Errorf("%w: unknown backend %q", proxy.ErrInvalidConfig, cfg.Backend)
}
