package podnet

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func hr(dst, gw string) hostRoute {
	return hostRoute{Dst: netip.MustParsePrefix(dst), Gw: netip.MustParseAddr(gw)}
}

func TestPlanRoutes(t *testing.T) {
	self := netip.MustParsePrefix("10.244.1.0/24")
	selfIP := netip.MustParseAddr("192.168.0.1")
	peer := func(name, ip, cidr string) Peer {
		p := Peer{Name: name}
		if ip != "" {
			p.NodeIP = netip.MustParseAddr(ip)
		}
		if cidr != "" {
			p.PodCIDR = netip.MustParsePrefix(cidr)
		}
		return p
	}
	tests := []struct {
		name            string
		peers           []Peer
		existing        []hostRoute
		replace, remove []hostRoute
		wantErr         bool
	}{{
		name:    "fresh node: routes to others, self skipped",
		peers:   []Peer{peer("a", "192.168.0.1", "10.244.1.0/24"), peer("c", "192.168.0.3", "10.244.3.0/24"), peer("b", "192.168.0.2", "10.244.2.0/24")},
		replace: []hostRoute{hr("10.244.2.0/24", "192.168.0.2"), hr("10.244.3.0/24", "192.168.0.3")},
	}, {
		name:     "up to date: nothing",
		peers:    []Peer{peer("b", "192.168.0.2", "10.244.2.0/24")},
		existing: []hostRoute{hr("10.244.2.0/24", "192.168.0.2")},
	}, {
		name:     "node gone: stale removed",
		peers:    []Peer{peer("b", "192.168.0.2", "10.244.2.0/24")},
		existing: []hostRoute{hr("10.244.2.0/24", "192.168.0.2"), hr("10.244.9.0/24", "192.168.0.9")},
		remove:   []hostRoute{hr("10.244.9.0/24", "192.168.0.9")},
	}, {
		name:     "node moved: replaced in place",
		peers:    []Peer{peer("b", "192.168.0.22", "10.244.2.0/24")},
		existing: []hostRoute{hr("10.244.2.0/24", "192.168.0.2")},
		replace:  []hostRoute{hr("10.244.2.0/24", "192.168.0.22")},
	}, {
		name:  "incomplete peers skipped",
		peers: []Peer{peer("b", "", "10.244.2.0/24"), peer("c", "192.168.0.3", "")},
	}, {
		name:    "duplicate pod CIDR",
		peers:   []Peer{peer("b", "192.168.0.2", "10.244.2.0/24"), peer("c", "192.168.0.3", "10.244.2.0/24")},
		wantErr: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, rem, err := planRoutes(self, selfIP, tt.peers, tt.existing)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(rep, tt.replace) || !reflect.DeepEqual(rem, tt.remove) {
				t.Fatalf("replace %v remove %v; want %v / %v", rep, rem, tt.replace, tt.remove)
			}
		})
	}
}

func TestRenderRulesGolden(t *testing.T) {
	got := renderRules(netip.MustParsePrefix("10.244.1.0/24"), netip.MustParsePrefix("10.244.0.0/16"), "moor0")
	path := filepath.Join("testdata", "rules.golden")
	if *update {
		writeFile(t, path, string(got))
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("rendered rules differ from %s (run with -update if intended):\n%s", path, got)
	}
}

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		c := Config{
			PodCIDR:     netip.MustParsePrefix("10.244.1.0/24"),
			ClusterCIDR: netip.MustParsePrefix("10.244.0.0/16"),
			StateDir:    "/tmp/x",
			NodeIP:      netip.MustParseAddr("192.168.0.1"),
		}
		c.setDefaults()
		return c
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"pod CIDR outside cluster": func(c *Config) { c.PodCIDR = netip.MustParsePrefix("10.9.1.0/24") },
		"pod CIDR too small":       func(c *Config) { c.PodCIDR = netip.MustParsePrefix("10.244.1.0/31") },
		"cluster smaller than pod": func(c *Config) { c.ClusterCIDR = netip.MustParsePrefix("10.244.1.0/25") },
		"no state dir":             func(c *Config) { c.StateDir = "" },
		"no node IP":               func(c *Config) { c.NodeIP = netip.Addr{} },
		"long bridge":              func(c *Config) { c.Bridge = "averyveryverylongbridge" },
		"relative netns":           func(c *Config) { c.HostNetNS = "node-a" },
		"tiny MTU":                 func(c *Config) { c.MTU = 100 },
		"IPv6 pod CIDR":            func(c *Config) { c.PodCIDR = netip.MustParsePrefix("fd00::/64") },
	} {
		c := good()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: want error", name)
		}
	}
}
