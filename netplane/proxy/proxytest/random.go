package proxytest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"

	"github.com/moor-dev/moor/netplane/proxy"
)

// Mutator makes a sequence of random, valid one-change edits of a service
// list: endpoints flip readiness, move, appear or become local, services
// come and go, gain or lose a NodePort or ClientIP affinity. The same seed
// gives the same sequence.
type Mutator struct {
	rng   *rand.Rand
	next  int               // serial of generated services
	ports map[string]uint16 // NodePort a service gets when toggled on
}

// NewMutator returns a Mutator seeded with seed.
func NewMutator(seed uint64) *Mutator {
	return &Mutator{rng: rand.New(rand.NewPCG(seed, 1)), ports: map[string]uint16{}}
}

// Mutate returns a deep copy of svcs with one random change and a
// description of it.
func (m *Mutator) Mutate(svcs []proxy.Service) ([]proxy.Service, string) {
	out := CopyServices(svcs)
	var withVIP []int
	for i := range out {
		if !out[i].Headless() && len(out[i].Ports) > 0 {
			withVIP = append(withVIP, i)
		}
	}
	pick := func() *proxy.Service { return &out[withVIP[m.rng.IntN(len(withVIP))]] }
	newIP := func() netip.Addr {
		return netip.AddrFrom4([4]byte{10, 244, byte(m.rng.IntN(2)), byte(2 + m.rng.IntN(200))})
	}
	for {
		switch m.rng.IntN(8) {
		case 0, 1: // readiness flip
			s := pick()
			p := &s.Ports[m.rng.IntN(len(s.Ports))]
			if len(p.Endpoints) == 0 {
				continue
			}
			e := &p.Endpoints[m.rng.IntN(len(p.Endpoints))]
			e.Ready = !e.Ready
			return out, fmt.Sprintf("%s %s ready=%v", s.Key(), e.IP, e.Ready)
		case 2: // endpoint moves (a rolling update)
			s := pick()
			p := &s.Ports[m.rng.IntN(len(s.Ports))]
			if len(p.Endpoints) == 0 {
				continue
			}
			e := &p.Endpoints[m.rng.IntN(len(p.Endpoints))]
			to := newIP()
			if slices.ContainsFunc(p.Endpoints, func(x proxy.Endpoint) bool { return x.IP == to }) {
				continue
			}
			from := e.IP
			e.IP = to
			return out, fmt.Sprintf("%s %s moved to %s", s.Key(), from, to)
		case 3: // endpoint added, maybe local
			s := pick()
			p := &s.Ports[m.rng.IntN(len(s.Ports))]
			to := newIP()
			if slices.ContainsFunc(p.Endpoints, func(x proxy.Endpoint) bool { return x.IP == to }) {
				continue
			}
			p.Endpoints = append(p.Endpoints, proxy.Endpoint{IP: to, Port: targetPort, Ready: true, Local: m.rng.IntN(2) == 0})
			return out, fmt.Sprintf("%s +%s", s.Key(), to)
		case 4: // service removed
			if len(withVIP) < 3 {
				continue
			}
			i := withVIP[m.rng.IntN(len(withVIP))]
			key := out[i].Key()
			return slices.Delete(out, i, i+1), "removed " + key
		case 5: // service added
			m.next++
			name := fmt.Sprintf("gen-%d", m.next)
			var eps []string
			for range m.rng.IntN(4) {
				eps = append(eps, newIP().String())
			}
			s := Svc(name, fmt.Sprintf("10.96.1.%d", m.next%250+1), 0, eps...)
			for j := range s.Ports {
				for k := range s.Ports[j].Endpoints {
					s.Ports[j].Endpoints[k].Local = m.rng.IntN(2) == 0
				}
			}
			return append(out, s), "added " + s.Key()
		case 6: // NodePort on or off
			s := pick()
			np, ok := m.ports[s.Key()]
			if !ok {
				np = uint16(31000 + len(m.ports))
				m.ports[s.Key()] = np
			}
			if s.Ports[0].NodePort != 0 {
				np = 0
			}
			if slices.ContainsFunc(out, func(o proxy.Service) bool {
				return np != 0 && slices.ContainsFunc(o.Ports, func(p proxy.Port) bool { return p.NodePort == np })
			}) {
				continue
			}
			for j := range s.Ports {
				s.Ports[j].NodePort = np
			}
			return out, fmt.Sprintf("%s nodePort=%d", s.Key(), np)
		case 7: // affinity on or off
			s := pick()
			if s.SessionAffinity == proxy.AffinityClientIP {
				s.SessionAffinity = proxy.AffinityNone
			} else {
				s.SessionAffinity = proxy.AffinityClientIP
			}
			return out, fmt.Sprintf("%s affinity=%q", s.Key(), s.SessionAffinity)
		}
	}
}

// CopyServices returns a deep copy of svcs.
func CopyServices(svcs []proxy.Service) []proxy.Service {
	out := make([]proxy.Service, len(svcs))
	for i, s := range svcs {
		s.Ports = slices.Clone(s.Ports)
		for j := range s.Ports {
			s.Ports[j].Endpoints = slices.Clone(s.Ports[j].Endpoints)
		}
		out[i] = s
	}
	return out
}
