package proxytest

import (
	"net/netip"

	"github.com/moor-dev/moor/netplane/proxy"
)

// Fixture is the table the renderers' golden and packet-trace tests share:
// web (3 endpoints, NodePort 30080), one (single endpoint, TCP only), empty
// (no ready endpoint, NodePort 30090), self (hairpin: its endpoint is local),
// headless (no VIP) and sticky (ClientIP affinity, 600 s).
func Fixture() *proxy.Table {
	ep := func(ip string, ready, local bool) proxy.Endpoint {
		return proxy.Endpoint{IP: netip.MustParseAddr(ip), Port: 8080, Ready: ready, Local: local}
	}
	web := Svc("web", "10.96.0.10", 30080, PodIPs...)
	web.Ports[0].Endpoints = append(web.Ports[0].Endpoints, ep("10.244.1.9", false, false))
	one := proxy.Service{Namespace: "default", Name: "one", ClusterIP: netip.MustParseAddr("10.96.0.11"),
		Ports: []proxy.Port{{Protocol: proxy.TCP, Port: 443, Endpoints: []proxy.Endpoint{ep("10.244.1.5", true, false)}}}}
	empty := Svc("empty", "10.96.0.12", 30090)
	empty.Ports[0].Endpoints = []proxy.Endpoint{ep("10.244.1.7", false, false)}
	self := Svc("self", "10.96.0.13", 0, PodIPs[0])
	headless := Svc("headless", "", 0, PodIPs...)
	sticky := Svc("sticky", "10.96.0.14", 0, PodIPs...)
	sticky.SessionAffinity, sticky.AffinityTimeout = proxy.AffinityClientIP, 600
	t := &proxy.Table{Services: []proxy.Service{web, one, empty, self, headless, sticky}}
	t.Sort()
	return t
}
