package nft_test

import (
	"testing"

	"github.com/moor-dev/moor/netplane/proxy"
	"github.com/moor-dev/moor/netplane/proxy/nft"
	"github.com/moor-dev/moor/netplane/proxy/proxytest"
)

func TestKernelSuite(t *testing.T) {
	proxytest.RunSuite(t, proxytest.Harness{
		New: func(t *testing.T, cfg proxy.Config) proxy.Backend {
			b, err := nft.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		Tamper: func(t *testing.T, nodeNS string) {
			proxytest.Run(t, "nsenter", "--net="+nodeNS, "nft", "flush", "table", "ip", "moor")
		},
		Leftover: func(t *testing.T, nodeNS string) string {
			return proxytest.Run(t, "nsenter", "--net="+nodeNS, "nft", "list", "tables")
		},
	})
}
