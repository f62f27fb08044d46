package iptables_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os/exec"
	"slices"
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
		Dump: func(t *testing.T, nodeNS string) string {
			return canonicalSave(proxytest.Run(t, "nsenter", "--net="+nodeNS, "iptables-save"))
		},
	})
}

// canonicalSave keeps the lines of iptables-save about this backend's
// chains, grouped by table and chain; the rules of the shared and built-in
// chains are sorted (partial syncs insert, full syncs append).
func canonicalSave(save string) string {
	type key struct{ table, chain string }
	rules := map[key][]string{}
	var table string
	for _, l := range strings.Split(save, "\n") {
		f := strings.Fields(l)
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, ":") && iptables.Owned(strings.TrimPrefix(f[0], ":")):
			rules[key{table, f[0][1:]}] = append(rules[key{table, f[0][1:]}], "")[:0]
		case strings.HasPrefix(l, "-A ") && (iptables.Owned(f[1]) || strings.Contains(l, "-j MOOR-") && !strings.Contains(l, "PODNET")):
			rules[key{table, f[1]}] = append(rules[key{table, f[1]}], l)
		}
	}
	keys := slices.SortedFunc(maps.Keys(rules), func(a, b key) int {
		return cmp.Or(strings.Compare(a.table, b.table), strings.Compare(a.chain, b.chain))
	})
	var b strings.Builder
	for _, k := range keys {
		rs := rules[k]
		if !strings.HasPrefix(k.chain, "MOOR-SVC-") && !strings.HasPrefix(k.chain, "MOOR-EXT-") && k.chain != iptables.ChainPostrouting {
			slices.Sort(rs)
		}
		fmt.Fprintf(&b, "%s %s\n\t%s\n", k.table, k.chain, strings.Join(rs, "\n\t"))
	}
	return b.String()
}

// TestKernelCleanupOwnChainsOnly checks that Cleanup removes only this
// backend's chains (podnet's MOOR-PODNET-* stay) and that cleaning up
// nothing creates nothing, not even an empty nat table.
func TestKernelCleanupOwnChainsOnly(t *testing.T) {
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		t.Skip("iptables-restore not installed")
	}
	topo := proxytest.Setup(t)
	in := func(args ...string) string {
		return proxytest.Run(t, "nsenter", append([]string{"--net=" + topo.Node}, args...)...)
	}
	ctx := context.Background()
	b, err := iptables.New(proxy.Config{NetNSPath: topo.Node})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Cleanup(ctx); err != nil {
		t.Fatalf("cleanup of nothing: %v", err)
	}
	if _, err := exec.LookPath("nft"); err == nil {
		if out := in("nft", "list", "tables"); out != "" {
			t.Errorf("cleanup of nothing created tables:\n%s", out)
		}
	}
	in("iptables", "-w", "-t", "nat", "-N", "MOOR-PODNET-EGRESS")
	in("iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-j", "MOOR-PODNET-EGRESS")
	if err := b.Sync(ctx, proxytest.Fixture()); err != nil {
		t.Fatal(err)
	}
	if err := b.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, l := range strings.Split(in("iptables-save"), "\n") {
		if strings.Contains(l, "MOOR-") {
			left = append(left, l)
		}
	}
	want := []string{":MOOR-PODNET-EGRESS - [0:0]", "-A POSTROUTING -j MOOR-PODNET-EGRESS"}
	if !slices.Equal(left, want) {
		t.Errorf("after cleanup: %q, want only podnet's %q", left, want)
	}
}
