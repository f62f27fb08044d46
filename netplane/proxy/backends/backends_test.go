package backends

import (
	"errors"
	"testing"

	"github.com/moor-dev/moor/netplane/proxy"
	"github.com/moor-dev/moor/netplane/proxy/proxytest"
)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		kind proxy.Kind
		name string
		err  error
	}{
		{"", "nftables", nil},
		{proxy.KindNFTables, "nftables", nil},
		{proxy.KindIPTables, "iptables", nil},
		{"ipvs", "", proxy.ErrInvalidConfig},
	} {
		b, err := New(proxy.Config{Backend: tc.kind})
		if !errors.Is(err, tc.err) {
			t.Errorf("%q: err %v, want %v", tc.kind, err, tc.err)
			continue
		}
		if err == nil && b.Name() != tc.name {
			t.Errorf("%q: backend %s, want %s", tc.kind, b.Name(), tc.name)
		}
	}
}

// BenchmarkSync runs both backends side by side: full syncs of 1k and 10k
// services × 10 endpoints, and a one-service change at 10k (same endpoint
// count, and count changing). A full iptables sync at 10k takes tens of
// seconds (iptables-restore's own cost per rule grows with the number of
// chains), and so does the setup of each iptables 10k variant: -short skips
// them. Run one alone with e.g. -bench 'Sync/iptables/full-10k'.
//
//	go test ./netplane/proxy/backends -run '^$' -bench . -benchtime 3x
func BenchmarkSync(b *testing.B) {
	for _, kind := range []proxy.Kind{proxy.KindNFTables, proxy.KindIPTables} {
		newBackend := func(cfg proxy.Config) (proxy.Backend, error) {
			cfg.Backend = kind
			return New(cfg)
		}
		skip10k := func(b *testing.B) {
			if kind == proxy.KindIPTables && testing.Short() {
				b.Skip("-short: iptables at 10k services takes tens of seconds per sync")
			}
		}
		b.Run(string(kind)+"/full-1k", func(b *testing.B) { proxytest.BenchFull(b, newBackend, 1000, 10) })
		b.Run(string(kind)+"/full-10k", func(b *testing.B) { skip10k(b); proxytest.BenchFull(b, newBackend, 10000, 10) })
		b.Run(string(kind)+"/change-10k", func(b *testing.B) {
			skip10k(b)
			proxytest.BenchChange(b, newBackend, 10000, 10, false)
		})
		b.Run(string(kind)+"/change-resize-10k", func(b *testing.B) {
			skip10k(b)
			proxytest.BenchChange(b, newBackend, 10000, 10, true)
		})
	}
}
