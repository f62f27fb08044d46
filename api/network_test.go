package api

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestEncodeSortsServicesAndPeers(t *testing.T) {
	ep := func(pod string) Endpoint {
		return Endpoint{Pod: pod, IP: netip.MustParseAddr("10.244.0.2"), Node: "n1", Ready: true, Ports: map[string]int32{"http": 8080}}
	}
	svcs := []Service{
		{Namespace: "b", Name: "web", Type: ServiceTypeNodePort, ClusterIP: netip.MustParseAddr("10.96.0.2"),
			Ports:     []ServicePort{{Name: "z", Protocol: "TCP", Port: 80, NodePort: 30080}, {Name: "a", Protocol: "UDP", Port: 53}},
			Endpoints: []Endpoint{ep("y"), ep("x")}},
		{Namespace: "a", Name: "headless", Type: ServiceTypeClusterIP},
	}
	net := &Network{PodCIDR: netip.MustParsePrefix("10.244.0.0/24"), Peers: []Peer{{Name: "n3"}, {Name: "n2"}}}
	a := &NodeDesired{Node: "n1", Services: svcs, Network: net}
	b := &NodeDesired{Node: "n1", Services: []Service{svcs[1], svcs[0]},
		Network: &Network{PodCIDR: net.PodCIDR, Peers: []Peer{net.Peers[1], net.Peers[0]}}}
	b.Services[1].Endpoints = []Endpoint{ep("x"), ep("y")}
	ab, ad, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	bb, bd, _ := b.Encode()
	if !bytes.Equal(ab, bb) || ad != bd {
		t.Fatalf("same content encodes differently:\n%s\n%s", ab, bb)
	}
	if svcs[0].Endpoints[0].Pod != "y" || net.Peers[0].Name != "n3" {
		t.Fatal("Encode reordered its input")
	}
	got, err := DecodeNodeDesired(ab, ad)
	if err != nil {
		t.Fatal(err)
	}
	s := got.Services[1]
	if got.Services[0].Name != "headless" || got.Services[0].ClusterIP.IsValid() || s.Ports[0].Name != "z" ||
		s.Endpoints[0].Pod != "x" || got.Network.Peers[0].Name != "n2" || s.ClusterIP.String() != "10.96.0.2" {
		t.Fatalf("decoded %+v", got)
	}
	if bytes.Contains(ab, []byte(`"clusterIP":""`)) {
		t.Errorf("a headless service encodes an empty clusterIP: %s", ab)
	}
}
