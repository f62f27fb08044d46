package dns

import (
	"net/netip"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		in       string
		inDomain bool
		want     parsedName
	}{
		{"example.com.", false, parsedName{}},
		{"local.", false, parsedName{}},
		{"xcluster.local.", false, parsedName{}},
		{"cluster.local.", true, parsedName{kind: kindApex}},
		{"svc.cluster.local", true, parsedName{kind: kindApex}},
		{"Default.svc.cluster.local.", true, parsedName{kind: kindApex, ns: "default", namespaceOnly: true}},
		{"web.default.svc.cluster.local.", true, parsedName{kind: kindService, svc: "web", ns: "default"}},
		{"_http._tcp.web.default.svc.cluster.local.", true, parsedName{kind: kindSRV, svc: "web", ns: "default", port: "http", proto: "tcp"}},
		{"_tcp.web.default.svc.cluster.local.", true, parsedName{kind: kindProto, svc: "web", ns: "default", proto: "tcp"}},
		{"10-1-2-3.db.default.svc.cluster.local.", true, parsedName{kind: kindEndpoint, svc: "db", ns: "default", endpoint: netip.MustParseAddr("10.1.2.3")}},
		{"10-1-2-999.db.default.svc.cluster.local.", true, parsedName{kind: kindOther}},
		{"host.cluster.local.", true, parsedName{kind: kindOther}},
		{"a.b.c.d.e.f.svc.cluster.local.", true, parsedName{kind: kindOther}},
		{"_._tcp.web.default.svc.cluster.local.", true, parsedName{kind: kindOther}},
	}
	for _, tt := range tests {
		got, in := parseName(tt.in, "cluster.local")
		if in != tt.inDomain || got != tt.want {
			t.Errorf("parseName(%q) = %+v, %v; want %+v, %v", tt.in, got, in, tt.want, tt.inDomain)
		}
	}
}

// FuzzQueryName feeds arbitrary query names (outside input from pods)
// through the parser and the answer builder.
func FuzzQueryName(f *testing.F) {
	for _, s := range []string{"web.default.svc.cluster.local.", "_pg._tcp.db.default.svc.cluster.local.",
		"10-244-1-5.db.default.svc.cluster.local.", "cluster.local.", "..svc.cluster.local", "example.com."} {
		f.Add(s, uint16(mdns.TypeA))
	}
	tbl := newTable(testRecords)
	f.Fuzz(func(t *testing.T, name string, qtype uint16) {
		p, in := parseName(name, "cluster.local")
		if !in {
			if strings.HasSuffix(strings.TrimSuffix(strings.ToLower(name), "."), ".cluster.local") {
				t.Fatalf("%q treated as outside the domain", name)
			}
			return
		}
		rcode, ans, extra := tbl.answer("cluster.local", p, qtype)
		if rcode != mdns.RcodeSuccess && (len(ans) > 0 || len(extra) > 0) {
			t.Fatalf("%q: rcode %d with records", name, rcode)
		}
		m := new(mdns.Msg)
		m.Answer, m.Extra = ans, extra
		if _, err := m.Pack(); err != nil {
			t.Fatalf("%q: answer does not pack: %v", name, err)
		}
	})
}
