package nft_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

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
		Dump: dump,
	})
}

// dump reads the table moor back over netlink (this host's nft(8) cannot
// print it) in a canonical form: chains by name with their rules, maps by
// name with their elements sorted. The shared select-N chains (partial
// syncs never remove them) and the affinity map's dynamic entries are left
// out.
func dump(t *testing.T, nodeNS string) string {
	t.Helper()
	fd, err := unix.Open(nodeNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	cc, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		t.Fatal(err)
	}
	table := &nftables.Table{Name: nft.TableName, Family: nftables.TableFamilyIPv4}
	var b strings.Builder
	chains, err := cc.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(chains, func(a, b *nftables.Chain) int { return strings.Compare(a.Name, b.Name) })
	for _, c := range chains {
		if c.Table.Name != nft.TableName || strings.HasPrefix(c.Name, "select-") {
			continue
		}
		fmt.Fprintf(&b, "chain %s", c.Name)
		if c.Hooknum != nil {
			fmt.Fprintf(&b, " type %s hook %d priority %d", c.Type, *c.Hooknum, *c.Priority)
		}
		b.WriteString("\n")
		rules, err := cc.GetRules(table, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			b.WriteString("\t")
			for _, e := range r.Exprs {
				fmt.Fprintf(&b, "%T%+v ", e, e)
			}
			b.WriteString("\n")
		}
	}
	sets, err := cc.GetSets(table)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(sets, func(a, b *nftables.Set) int { return strings.Compare(a.Name, b.Name) })
	for _, s := range sets {
		fmt.Fprintf(&b, "map %s\n", s.Name)
		if s.Name == nft.MapAffinity {
			continue
		}
		elems, err := cc.GetSetElements(s)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, e := range elems {
			l := fmt.Sprintf("\t%x : %x", e.Key, e.Val)
			if e.VerdictData != nil {
				l += fmt.Sprintf(" %v %s", e.VerdictData.Kind, e.VerdictData.Chain)
			}
			lines = append(lines, l)
		}
		slices.Sort(lines)
		b.WriteString(strings.Join(lines, "\n") + "\n")
	}
	return b.String()
}
