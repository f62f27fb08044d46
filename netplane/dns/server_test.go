package dns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// fakeUpstream is a miekg/dns server on loopback standing in for the
// host's resolver: example.com has one A record; big.example.com has too
// many to fit 512 bytes, so over UDP it answers truncated.
type fakeUpstream struct {
	addr string
	mu   sync.Mutex
	nets []string // transport of every query seen
}

func startUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{}
	pc, ln, err := listenPair(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = pc.LocalAddr().String()
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		tcp := isTCP(w)
		u.mu.Lock()
		u.nets = append(u.nets, map[bool]string{true: "tcp", false: "udp"}[tcp])
		u.mu.Unlock()
		m := new(mdns.Msg).SetReply(r)
		q := r.Question[0]
		switch strings.ToLower(q.Name) {
		case "example.com.":
			m.Answer = append(m.Answer, mustRR(t, "example.com. 60 IN A 192.0.2.10"))
		case "big.example.com.":
			if !tcp {
				m.Truncated = true
				break
			}
			for i := range 60 {
				m.Answer = append(m.Answer, mustRR(t, fmt.Sprintf("big.example.com. 60 IN A 192.0.2.%d", i+1)))
			}
		default:
			m.Rcode = mdns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	var wg sync.WaitGroup
	wg.Add(2)
	servers := []*mdns.Server{
		{PacketConn: pc, Handler: h, NotifyStartedFunc: wg.Done},
		{Listener: ln, Handler: h, NotifyStartedFunc: wg.Done},
	}
	for _, s := range servers {
		go s.ActivateAndServe()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, s := range servers {
			s.Shutdown()
		}
	})
	return u
}

func (u *fakeUpstream) seen() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.nets)
}

func mustRR(t *testing.T, s string) mdns.RR {
	rr, err := mdns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

var testRecords = Records{Services: []Service{
	{Namespace: "default", Name: "web", ClusterIP: netip.MustParseAddr("10.96.0.10"),
		Ports: []Port{{Name: "http", Protocol: "TCP", Port: 80}, {Name: "dns", Protocol: "UDP", Port: 53}, {Port: 9090}}},
	{Namespace: "default", Name: "db", // headless
		Ports:     []Port{{Name: "pg", Port: 5432}},
		Endpoints: []netip.Addr{netip.MustParseAddr("10.244.2.7"), netip.MustParseAddr("10.244.1.5")}},
	{Namespace: "shop", Name: "cart", ClusterIP: netip.MustParseAddr("10.96.3.3")},
}}

func startServer(t *testing.T, upstreams []string) *Server {
	t.Helper()
	s, err := New(Config{Listen: "127.0.0.1:0", Upstreams: upstreams, ForwardTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.Update(testRecords)
	return s
}

func query(t *testing.T, addr, netw, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	c := &mdns.Client{Net: netw, Timeout: 3 * time.Second}
	m := new(mdns.Msg).SetQuestion(name, qtype)
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", name, mdns.TypeToString[qtype], netw, err)
	}
	return r
}

// rrs renders records without TTL-independent noise, sorted.
func rrs(list []mdns.RR) []string {
	out := []string{}
	for _, rr := range list {
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	slices.Sort(out)
	return out
}

func TestClusterNames(t *testing.T) {
	s := startServer(t, nil)
	tests := []struct {
		name   string
		qtype  uint16
		rcode  int
		answer []string
		extra  []string
	}{
		{"web.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess,
			[]string{"web.default.svc.cluster.local. 5 IN A 10.96.0.10"}, nil},
		{"WEB.Default.svc.Cluster.Local.", mdns.TypeA, mdns.RcodeSuccess,
			[]string{"web.default.svc.cluster.local. 5 IN A 10.96.0.10"}, nil},
		{"db.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{
			"db.default.svc.cluster.local. 5 IN A 10.244.1.5",
			"db.default.svc.cluster.local. 5 IN A 10.244.2.7"}, nil},
		{"10-244-1-5.db.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess,
			[]string{"10-244-1-5.db.default.svc.cluster.local. 5 IN A 10.244.1.5"}, nil},
		{"10-244-9-9.db.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil, nil},
		{"_http._tcp.web.default.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess,
			[]string{"_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."},
			[]string{"web.default.svc.cluster.local. 5 IN A 10.96.0.10"}},
		{"_dns._udp.web.default.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess,
			[]string{"_dns._udp.web.default.svc.cluster.local. 5 IN SRV 0 100 53 web.default.svc.cluster.local."},
			[]string{"web.default.svc.cluster.local. 5 IN A 10.96.0.10"}},
		{"_pg._tcp.db.default.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess, []string{
			"_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 100 5432 10-244-1-5.db.default.svc.cluster.local.",
			"_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 100 5432 10-244-2-7.db.default.svc.cluster.local."}, []string{
			"10-244-1-5.db.default.svc.cluster.local. 5 IN A 10.244.1.5",
			"10-244-2-7.db.default.svc.cluster.local. 5 IN A 10.244.2.7"}},
		{"_http._udp.web.default.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeNameError, nil, nil},
		{"_tcp.web.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, nil, nil}, // empty non-terminal
		{"web.default.svc.cluster.local.", mdns.TypeAAAA, mdns.RcodeSuccess, nil, nil},   // NODATA
		{"nope.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil, nil},
		{"web.shop.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil, nil},
		{"default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, nil, nil},
		{"nosuchns.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil, nil},
		{"cluster.local.", mdns.TypeA, mdns.RcodeSuccess, nil, nil},
		// What a pod's search path produces for an outside name.
		{"example.com.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil, nil},
		{"example.com.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil, nil},
	}
	for _, netw := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(netw+"/"+tt.name+"/"+mdns.TypeToString[tt.qtype], func(t *testing.T) {
				r := query(t, s.Addr(), netw, tt.name, tt.qtype)
				if r.Rcode != tt.rcode || !r.Authoritative {
					t.Fatalf("rcode %s aa=%v, want %s aa=true", mdns.RcodeToString[r.Rcode], r.Authoritative, mdns.RcodeToString[tt.rcode])
				}
				if got := rrs(r.Answer); !slices.Equal(got, tt.answer) {
					t.Fatalf("answer\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.answer, "\n"))
				}
				if got := rrs(r.Extra); tt.extra != nil && !slices.Equal(got, tt.extra) {
					t.Fatalf("extra\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.extra, "\n"))
				}
				if len(r.Answer) == 0 && (len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != mdns.TypeSOA) {
					t.Fatalf("negative answer without SOA: %v", r.Ns)
				}
			})
		}
	}
}

func TestUpdateSwapsRecords(t *testing.T) {
	s := startServer(t, nil)
	s.Update(Records{Services: []Service{{Namespace: "default", Name: "web", ClusterIP: netip.MustParseAddr("10.96.0.99")}}})
	r := query(t, s.Addr(), "udp", "web.default.svc.cluster.local.", mdns.TypeA)
	if got := rrs(r.Answer); !slices.Equal(got, []string{"web.default.svc.cluster.local. 5 IN A 10.96.0.99"}) {
		t.Fatalf("after Update: %v", got)
	}
	if r := query(t, s.Addr(), "udp", "db.default.svc.cluster.local.", mdns.TypeA); r.Rcode != mdns.RcodeNameError {
		t.Fatalf("removed service: rcode %s", mdns.RcodeToString[r.Rcode])
	}
}

func TestForwarding(t *testing.T) {
	up := startUpstream(t)
	s := startServer(t, []string{up.addr})
	for _, netw := range []string{"udp", "tcp"} {
		r := query(t, s.Addr(), netw, "example.com.", mdns.TypeA)
		if got := rrs(r.Answer); r.Rcode != mdns.RcodeSuccess || !slices.Equal(got, []string{"example.com. 60 IN A 192.0.2.10"}) {
			t.Fatalf("%s: forwarded answer %s %v", netw, mdns.RcodeToString[r.Rcode], got)
		}
	}
	if r := query(t, s.Addr(), "udp", "missing.example.com.", mdns.TypeA); r.Rcode != mdns.RcodeNameError {
		t.Fatalf("upstream NXDOMAIN came back as %s", mdns.RcodeToString[r.Rcode])
	}

	// Truncated UDP answer upstream: the server retries over TCP and hands
	// a client with a large EDNS buffer the whole answer.
	before := len(up.seen())
	c := &mdns.Client{Net: "udp", Timeout: 3 * time.Second}
	m := new(mdns.Msg).SetQuestion("big.example.com.", mdns.TypeA)
	m.SetEdns0(4096, false)
	r, _, err := c.Exchange(m, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 60 || r.Truncated {
		t.Fatalf("big answer: %d records, truncated=%v", len(r.Answer), r.Truncated)
	}
	if got := up.seen()[before:]; !slices.Equal(got, []string{"udp", "tcp"}) {
		t.Fatalf("upstream transports %v, want [udp tcp]", got)
	}
	// A plain 512-byte UDP client gets a truncated answer and can retry by TCP.
	r = query(t, s.Addr(), "udp", "big.example.com.", mdns.TypeA)
	if !r.Truncated {
		t.Fatalf("512-byte client: want TC bit, got %d records", len(r.Answer))
	}
	if r := query(t, s.Addr(), "tcp", "big.example.com.", mdns.TypeA); len(r.Answer) != 60 {
		t.Fatalf("TCP client: %d records", len(r.Answer))
	}
}

func TestForwardingFailsOver(t *testing.T) {
	up := startUpstream(t)
	dead := deadAddr(t)
	s := startServer(t, []string{dead, up.addr})
	if r := query(t, s.Addr(), "tcp", "example.com.", mdns.TypeA); r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("with a dead first upstream: %s %v", mdns.RcodeToString[r.Rcode], r.Answer)
	}
	s2 := startServer(t, []string{dead})
	if r := query(t, s2.Addr(), "tcp", "example.com.", mdns.TypeA); r.Rcode != mdns.RcodeServerFailure {
		t.Fatalf("all upstreams dead: rcode %s, want SERVFAIL", mdns.RcodeToString[r.Rcode])
	}
}

// deadAddr is a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	pc, ln, err := listenPair(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	ln.Close()
	return addr
}

func TestStartStop(t *testing.T) {
	s, err := New(Config{Listen: "127.0.0.1:0", Upstreams: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if err := s.Start(ctx); err == nil {
		t.Fatal("second Start: want error")
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("TCP listener still open after the context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after cancel: %v", err)
	}
}

func TestRespondRejects(t *testing.T) {
	s, err := New(Config{Listen: "127.0.0.1:0", Upstreams: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.respond(&mdns.Msg{}, false); r.Rcode != mdns.RcodeFormatError {
		t.Errorf("no question: %s", mdns.RcodeToString[r.Rcode])
	}
	m := new(mdns.Msg).SetQuestion("web.default.svc.cluster.local.", mdns.TypeA)
	m.Opcode = mdns.OpcodeUpdate
	if r := s.respond(m, false); r.Rcode != mdns.RcodeNotImplemented {
		t.Errorf("update opcode: %s", mdns.RcodeToString[r.Rcode])
	}
}

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]Config{
		"no port":        {Listen: "127.0.0.1", Domain: "cluster.local"},
		"dotted domain":  {Listen: "127.0.0.1:53", Domain: "cluster.local."},
		"bad upstream":   {Listen: "127.0.0.1:53", Domain: "cluster.local", Upstreams: []string{"1.2.3.4"}},
		"invalid domain": {Listen: "127.0.0.1:53", Domain: "a..b"},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: want error", name)
		}
	}
	if _, err := New(Config{Listen: ":53", Upstreams: []string{"192.0.2.1", "[2001:db8::1]:5353"}}); err != nil {
		t.Errorf("bare upstream addresses get port 53: %v", err)
	}
}
