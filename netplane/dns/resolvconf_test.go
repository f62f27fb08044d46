package dns

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestResolvConf(t *testing.T) {
	tests := []struct {
		ns, server, domain string
		opts               []string
		want               string
	}{
		{"default", "10.244.1.1", "", nil,
			"search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.244.1.1\noptions ndots:5\n"},
		{"shop", "10.244.2.1", "example.internal", []string{"timeout:2", "attempts:3"},
			"search shop.svc.example.internal svc.example.internal example.internal\nnameserver 10.244.2.1\noptions ndots:5 timeout:2 attempts:3\n"},
	}
	for _, tt := range tests {
		if got := string(ResolvConf(tt.ns, tt.server, tt.domain, tt.opts...)); got != tt.want {
			t.Errorf("ResolvConf(%s) =\n%s\nwant\n%s", tt.ns, got, tt.want)
		}
	}
}

func TestParseResolvConf(t *testing.T) {
	in := `# generated
nameserver 192.0.2.53
nameserver   2001:db8::1 # v6
nameserver fe80::1%eth0
;nameserver 10.0.0.1
nameserver not-an-ip
nameserver
search example.com
options ndots:1
nameserver 127.0.0.53`
	want := []string{"192.0.2.53:53", "[2001:db8::1]:53", "[fe80::1%eth0]:53", "127.0.0.53:53"}
	if got := ParseResolvConf(strings.NewReader(in)); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func FuzzParseResolvConf(f *testing.F) {
	f.Add("nameserver 192.0.2.1\nsearch a b\n")
	f.Add("nameserver fe80::1%eth0 # c\n")
	f.Add(";nameserver\n\x00nameserver ::1")
	f.Fuzz(func(t *testing.T, in string) {
		for _, s := range ParseResolvConf(strings.NewReader(in)) {
			ap, err := netip.ParseAddrPort(s)
			if err != nil || ap.Port() != 53 {
				t.Fatalf("ParseResolvConf returned %q", s)
			}
		}
	})
}
