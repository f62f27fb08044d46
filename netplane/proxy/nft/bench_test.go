package nft_test

import (
	"testing"

	"github.com/moor-dev/moor/netplane/proxy"
	"github.com/moor-dev/moor/netplane/proxy/nft"
	"github.com/moor-dev/moor/netplane/proxy/proxytest"
)

func newBackend(cfg proxy.Config) (proxy.Backend, error) { return nft.New(cfg) }

func BenchmarkFull1k(b *testing.B)          { proxytest.BenchFull(b, newBackend, 1000, 10) }
func BenchmarkFull10k(b *testing.B)         { proxytest.BenchFull(b, newBackend, 10000, 10) }
func BenchmarkChange10k(b *testing.B)       { proxytest.BenchChange(b, newBackend, 10000, 10, false) }
func BenchmarkChangeResize10k(b *testing.B) { proxytest.BenchChange(b, newBackend, 10000, 10, true) }
