package podnetwork

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/netplane/dns"
	"github.com/moor-dev/moor/netplane/proxy"
)

var (
	ip  = netip.MustParseAddr
	vip = ip("10.96.0.5")
)

func TestProxyTable(t *testing.T) {
	tests := []struct {
		name string
		in   api.Service
		want proxy.Service
	}{{
		name: "cluster IP with resolved target ports",
		in: api.Service{Namespace: "ns", Name: "web", Type: api.ServiceTypeClusterIP, ClusterIP: vip,
			SessionAffinity: api.AffinityNone,
			Ports:           []api.ServicePort{{Name: "http", Protocol: "TCP", Port: 80}, {Name: "dns", Protocol: "UDP", Port: 53}},
			Endpoints: []api.Endpoint{
				{Pod: "a", IP: ip("10.244.1.2"), Ready: true, Ports: map[string]int32{"http": 8080, "dns": 5353}},
				{Pod: "b", IP: ip("10.244.2.2"), Ready: false, Ports: map[string]int32{"http": 8081}},
			}},
		want: proxy.Service{Namespace: "ns", Name: "web", ClusterIP: vip, Ports: []proxy.Port{
			{Name: "http", Protocol: proxy.TCP, Port: 80, Endpoints: []proxy.Endpoint{
				{IP: ip("10.244.1.2"), Port: 8080, Ready: true, Local: true}, {IP: ip("10.244.2.2"), Port: 8081, Ready: true}}},
			{Name: "dns", Protocol: proxy.UDP, Port: 53, Endpoints: []proxy.Endpoint{{IP: ip("10.244.1.2"), Port: 5353, Ready: true, Local: true}}},
		}},
	}, {
		name: "node port with client IP affinity; SCTP dropped",
		in: api.Service{Namespace: "ns", Name: "np", Type: api.ServiceTypeNodePort, ClusterIP: vip,
			SessionAffinity: api.AffinityClientIP, SessionAffinityTimeoutSeconds: 60,
			Ports: []api.ServicePort{{Protocol: "TCP", Port: 80, NodePort: 30080}, {Name: "s", Protocol: "SCTP", Port: 9}}},
		want: proxy.Service{Namespace: "ns", Name: "np", ClusterIP: vip, SessionAffinity: proxy.AffinityClientIP, AffinityTimeout: 60,
			Ports: []proxy.Port{{Protocol: proxy.TCP, Port: 80, NodePort: 30080}}},
	}, {
		name: "node port of a ClusterIP service ignored",
		in: api.Service{Namespace: "ns", Name: "c", Type: api.ServiceTypeClusterIP, ClusterIP: vip,
			Ports: []api.ServicePort{{Protocol: "TCP", Port: 80, NodePort: 30080}}},
		want: proxy.Service{Namespace: "ns", Name: "c", ClusterIP: vip, Ports: []proxy.Port{{Protocol: proxy.TCP, Port: 80}}},
	}, {
		name: "headless kept without VIP",
		in:   api.Service{Namespace: "ns", Name: "h", Type: api.ServiceTypeClusterIP},
		want: proxy.Service{Namespace: "ns", Name: "h"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ProxyTable([]api.Service{tc.in}, netip.MustParsePrefix("10.244.1.0/24"))
			if len(got.Services) != 1 || !reflect.DeepEqual(got.Services[0], tc.want) {
				t.Errorf("got %+v\nwant %+v", got.Services, tc.want)
			}
			if err := got.Validate(proxy.DefaultNodePortMin, proxy.DefaultNodePortMax); err != nil {
				t.Errorf("translated table is invalid: %v", err)
			}
		})
	}
}

func TestDNSRecords(t *testing.T) {
	in := []api.Service{
		{Namespace: "ns", Name: "web", ClusterIP: vip, Ports: []api.ServicePort{{Name: "http", Protocol: "TCP", Port: 80}}},
		{Namespace: "ns", Name: "db", Ports: []api.ServicePort{{Protocol: "TCP", Port: 5432}}, Endpoints: []api.Endpoint{
			{Pod: "db-0", IP: ip("10.244.1.7"), Ready: true},
			{Pod: "db-1", IP: ip("10.244.2.7"), Ready: false},
		}},
	}
	want := dns.Records{Services: []dns.Service{
		{Namespace: "ns", Name: "web", ClusterIP: vip, Ports: []dns.Port{{Name: "http", Protocol: "TCP", Port: 80}}},
		{Namespace: "ns", Name: "db", Ports: []dns.Port{{Protocol: "TCP", Port: 5432}}, Endpoints: []netip.Addr{ip("10.244.1.7")}},
	}}
	if got := DNSRecords(in); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	newProxy := func(proxy.Config) (proxy.Backend, error) { return nil, nil }
	if _, err := New(Config{StateDir: "/x", NewProxy: newProxy}); err == nil {
		t.Error("New without NodeIP succeeded")
	}
	if _, err := New(Config{NodeIP: ip("10.0.0.1"), NewProxy: newProxy}); err == nil {
		t.Error("New without StateDir succeeded")
	}
	n, err := New(Config{NodeIP: ip("10.0.0.1"), StateDir: "/x", NewProxy: newProxy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Attach(t.Context(), &api.Pod{UID: "u"}); !errors.Is(err, ErrNotReady) {
		t.Errorf("Attach before the first Sync: %v, want ErrNotReady", err)
	}
}
