package proxy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func svc(name, vip string, ports ...Port) Service {
	s := Service{Namespace: "ns", Name: name, Ports: ports}
	if vip != "" {
		s.ClusterIP = netip.MustParseAddr(vip)
	}
	return s
}

func ep(ip string) Endpoint { return Endpoint{IP: netip.MustParseAddr(ip), Port: 8080, Ready: true} }

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		t    Table
		want string // substring of the error; "" for valid
	}{
		{"valid", Table{Services: []Service{svc("a", "10.0.0.1", Port{Protocol: TCP, Port: 80, NodePort: 30000, Endpoints: []Endpoint{ep("10.1.0.1")}})}}, ""},
		{"headless is fine", Table{Services: []Service{svc("a", "", Port{Protocol: TCP, Port: 80})}}, ""},
		{"ipv6 vip", Table{Services: []Service{svc("a", "fd00::1", Port{Protocol: TCP, Port: 80})}}, "not IPv4"},
		{"sctp", Table{Services: []Service{svc("a", "10.0.0.1", Port{Protocol: "SCTP", Port: 80})}}, "use TCP or UDP"},
		{"port zero", Table{Services: []Service{svc("a", "10.0.0.1", Port{Protocol: TCP})}}, "port number 0"},
		{"duplicate port", Table{Services: []Service{svc("a", "10.0.0.1", Port{Protocol: TCP, Port: 80}, Port{Protocol: TCP, Port: 80})}}, "listed twice"},
		{"same port other protocol", Table{Services: []Service{svc("a", "10.0.0.1", Port{Protocol: TCP, Port: 53}, Port{Protocol: UDP, Port: 53})}}, ""},
		{"nodeport out of range", Table{Services: []Service{svc("a", "10.0.0.1", Port{Protocol: TCP, Port: 80, NodePort: 80})}}, "outside the NodePort range"},
		{"nodeport clash", Table{Services: []Service{
			svc("a", "10.0.0.1", Port{Protocol: TCP, Port: 80, NodePort: 30001}),
			svc("b", "10.0.0.2", Port{Protocol: TCP, Port: 80, NodePort: 30001})}}, "already used by ns/a"},
		{"duplicate service", Table{Services: []Service{svc("a", "10.0.0.1"), svc("a", "10.0.0.2")}}, "listed twice"},
		{"bad affinity", Table{Services: []Service{{Namespace: "ns", Name: "a", SessionAffinity: "Cookie"}}}, "sessionAffinity"},
		{"ipv6 endpoint", Table{Services: []Service{svc("a", "10.0.0.1", Port{Protocol: TCP, Port: 80, Endpoints: []Endpoint{{IP: netip.MustParseAddr("fd00::2"), Port: 1}}})}}, "not an IPv4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.t.Validate(DefaultNodePortMin, DefaultNodePortMax)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidTable) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrInvalidTable mentioning %q", err, tc.want)
			}
		})
	}
}

func TestSortAndHash(t *testing.T) {
	a := Table{Services: []Service{
		svc("b", "10.0.0.2", Port{Protocol: UDP, Port: 53, Endpoints: []Endpoint{ep("10.1.0.2"), ep("10.1.0.1")}}, Port{Protocol: TCP, Port: 53}),
		svc("a", "10.0.0.1"),
	}}
	a.Sort()
	if a.Services[0].Name != "a" || a.Services[1].Ports[0].Protocol != TCP || a.Services[1].Ports[1].Endpoints[0].IP.String() != "10.1.0.1" {
		t.Fatalf("not canonical: %+v", a)
	}
	h := a.Services[1].Hash()
	if h != a.Services[1].Hash() || len(h) != 16 {
		t.Fatalf("hash unstable or wrong length: %q", h)
	}
	a.Services[1].Ports[1].Endpoints[0].Ready = false
	if a.Services[1].Hash() == h {
		t.Error("readiness change did not change the hash")
	}
	a.Services[1].Ports[1].Endpoints[0].Ready = true
	a.Services[1].Ports[1].Endpoints[0].Local = true
	if a.Services[1].Hash() == h {
		t.Error("locality change did not change the hash")
	}
}

func TestConfig(t *testing.T) {
	c := Config{}.WithDefaults()
	if err := c.Validate(); err != nil || c.Backend != KindNFTables || c.NodePortMin != 30000 || c.NodePortMax != 32767 {
		t.Fatalf("defaults %+v: %v", c, err)
	}
	for _, bad := range []Config{
		{Backend: "ipvs", NodePortMin: 1, NodePortMax: 2},
		{Backend: KindIPTables, NodePortMin: 5, NodePortMax: 4},
		{Backend: KindNFTables, NodePortMin: 1, NodePortMax: 2, ClusterCIDR: netip.MustParsePrefix("fd00::/64")},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: %v, want ErrInvalidConfig", bad, err)
		}
	}
}
