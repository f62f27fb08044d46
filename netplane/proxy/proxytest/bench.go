package proxytest

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"testing"

	"github.com/moor-dev/moor/netplane/proxy"
)

func addrFrom(base netip.Addr, off uint32) netip.Addr {
	b := base.As4()
	v := binary.BigEndian.Uint32(b[:]) + off
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// GenTable makes n services with one TCP port and eps ready endpoints each,
// all addresses distinct: the kube-proxy-shaped load of the benchmarks.
func GenTable(n, eps int) *proxy.Table {
	vipBase, epBase := netip.MustParseAddr("10.96.0.1"), netip.MustParseAddr("10.128.0.1")
	t := &proxy.Table{Services: make([]proxy.Service, n)}
	for i := range n {
		p := proxy.Port{Name: "http", Protocol: proxy.TCP, Port: 80}
		for j := range eps {
			p.Endpoints = append(p.Endpoints, proxy.Endpoint{IP: addrFrom(epBase, uint32(i*eps+j)), Port: 8080, Ready: true})
		}
		t.Services[i] = proxy.Service{
			Namespace: "bench", Name: fmt.Sprintf("svc-%05d", i),
			ClusterIP: addrFrom(vipBase, uint32(i)), Ports: []proxy.Port{p},
		}
	}
	return t
}

// BenchFull measures full syncs of n services × eps endpoints: a fresh
// backend each iteration, so the table is replaced whole.
func BenchFull(b *testing.B, newBackend func(proxy.Config) (proxy.Backend, error), n, eps int) {
	topo := Setup(b)
	cfg := proxy.Config{NetNSPath: topo.Node, ClusterCIDR: netip.MustParsePrefix(ClusterCIDR)}
	t := GenTable(n, eps)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		be, err := newBackend(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := be.Sync(ctx, t); err != nil {
			b.Fatal(err)
		}
		closeBackend(be)
	}
}

func closeBackend(be proxy.Backend) {
	if c, ok := be.(io.Closer); ok {
		_ = c.Close()
	}
}

// BenchChange measures the sync after one service changes in a table of n
// services × eps endpoints. With resize the change flips one endpoint's
// readiness (the endpoint count changes); otherwise one endpoint is
// replaced by another address (a rolling update: same count).
func BenchChange(b *testing.B, newBackend func(proxy.Config) (proxy.Backend, error), n, eps int, resize bool) {
	topo := Setup(b)
	cfg := proxy.Config{NetNSPath: topo.Node, ClusterCIDR: netip.MustParsePrefix(ClusterCIDR)}
	t := GenTable(n, eps)
	ctx := context.Background()
	be, err := newBackend(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := be.Sync(ctx, t); err != nil {
		b.Fatal(err)
	}
	defer closeBackend(be)
	ep := &t.Services[n/2].Ports[0].Endpoints[0]
	orig, other := ep.IP, netip.MustParseAddr("10.200.0.1")
	i := 0
	b.ResetTimer()
	for b.Loop() {
		i++
		if resize {
			ep.Ready = i%2 == 0
		} else if i%2 == 1 {
			ep.IP = other
		} else {
			ep.IP = orig
		}
		if err := be.Sync(ctx, t); err != nil {
			b.Fatal(err)
		}
	}
}
