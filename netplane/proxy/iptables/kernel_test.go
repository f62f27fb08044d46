package iptables_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/moor-dev/moor/netplane/proxy"
	"github.com/moor-dev/moor/netplane/proxy/iptables"
	"github.com/moor-dev/moor/netplane/proxy/proxytest"
)

func TestKernelSuite(t *testing.T) {
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		t.Skip("iptables-restore not installed")
	}
	proxytest.RunSuite(t, proxytest.Harness{
		New: func(t *testing.T, cfg proxy.Config) proxy.Backend {
			b, err := iptables.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		Tamper: func(t *testing.T, nodeNS string) {
			proxytest.Run(t, "nsenter", "--net="+nodeNS, "iptables", "-w", "-t", "nat", "-F")
		},
		Leftover: func(t *testing.T, nodeNS string) string {
			var left []string
			for _, line := range strings.Split(proxytest.Run(t, "nsenter", "--net="+nodeNS, "iptables-save"), "\n") {
				if strings.Contains(line, "MOOR-") {
					left = append(left, line)
				}
			}
			return strings.Join(left, "\n")
		},
	})
}
