package proxy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// render is the stand-in for a backend's renderer: a value that changes
// with everything that affects rules.
func render(s *Service) string { return s.Key() + "@" + s.Hash() }

// syncCache runs one backend-style round: Diff, render changes, Commit.
func syncCache(t *testing.T, c *Cache[string], tb *Table) []string {
	t.Helper()
	d, err := c.Diff(tb, DefaultNodePortMin, DefaultNodePortMax)
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	var got []string
	for i := range d.Changes {
		ch := &d.Changes[i]
		switch {
		case ch.New == nil:
			got = append(got, "-"+ch.Key)
		case ch.HasOld:
			got = append(got, "~"+ch.Key)
		default:
			got = append(got, "+"+ch.Key)
		}
		if ch.New != nil {
			ch.Val = render(ch.New)
		}
	}
	vals := d.Values()
	c.Commit(d)
	for i := range tb.Services {
		if want := render(&tb.Services[i]); vals[i] != want {
			t.Fatalf("Values()[%d] = %s, want %s", i, vals[i], want)
		}
	}
	return got
}

func TestCacheDiff(t *testing.T) {
	port := func(np uint16, eps ...Endpoint) Port {
		return Port{Name: "http", Protocol: TCP, Port: 80, NodePort: np, Endpoints: eps}
	}
	tb := &Table{Services: []Service{
		svc("b", "10.0.0.2", port(30001, ep("10.1.0.2"), ep("10.1.0.1"))),
		svc("a", "10.0.0.1", port(0, ep("10.1.0.3"))),
		svc("h", "", port(0)),
	}}
	var c Cache[string]
	if got := syncCache(t, &c, tb); strings.Join(got, " ") != "+ns/a +ns/b +ns/h" {
		t.Fatalf("first diff %v", got)
	}
	if tb.Services[1].Ports[0].Endpoints[0].IP.String() != "10.1.0.1" {
		t.Fatalf("changed service not sorted: %+v", tb.Services[1])
	}
	steps := []struct {
		name string
		edit func(tb *Table)
		want string
	}{
		{"unchanged", func(*Table) {}, ""},
		{"endpoint order only", func(tb *Table) {
			e := tb.Services[1].Ports[0].Endpoints
			e[0], e[1] = e[1], e[0]
		}, ""},
		{"service order only", func(tb *Table) { slices.Reverse(tb.Services) }, ""},
		{"endpoint edited in place", func(tb *Table) { tb.Services[0].Ports[0].Endpoints[0].Ready = false }, "~ns/a"},
		{"readiness back", func(tb *Table) { tb.Services[0].Ports[0].Endpoints[0].Ready = true }, "~ns/a"},
		{"removed", func(tb *Table) { tb.Services = tb.Services[1:] }, "-ns/a"},
		{"added", func(tb *Table) { tb.Services = append(tb.Services, svc("c", "10.0.0.3", port(0))) }, "+ns/c"},
		{"added before and removed after", func(tb *Table) {
			tb.Services = append(tb.Services[:2], svc("0", "10.0.0.9", port(0)))
		}, "+ns/0 -ns/h"},
		{"nodeport moves between services", func(tb *Table) {
			for i := range tb.Services {
				switch tb.Services[i].Name {
				case "b":
					tb.Services[i].Ports[0].NodePort = 0
				case "c":
					tb.Services[i].Ports[0].NodePort = 30001
				}
			}
		}, "~ns/b ~ns/c"},
	}
	for _, st := range steps {
		st.edit(tb)
		if got := strings.Join(syncCache(t, &c, tb), " "); got != st.want {
			t.Fatalf("%s: changes %q, want %q", st.name, got, st.want)
		}
		if c.Len() != len(tb.Services) {
			t.Fatalf("%s: cache holds %d services, table %d", st.name, c.Len(), len(tb.Services))
		}
	}
}

func TestCacheRejects(t *testing.T) {
	np := func(name string, nodePort uint16) Service {
		return svc(name, "10.0.0.1", Port{Protocol: TCP, Port: 80, NodePort: nodePort})
	}
	var c Cache[string]
	base := &Table{Services: []Service{np("a", 30001), np("b", 30002)}}
	syncCache(t, &c, base)
	for _, tc := range []struct {
		name string
		t    *Table
		want string
	}{
		{"takes an unchanged service's nodeport", &Table{Services: []Service{np("a", 30001), np("b", 30002), np("c", 30001)}}, "already used by ns/a"},
		{"two changed services claim one nodeport", &Table{Services: []Service{np("a", 30003), np("b", 30003)}}, "already used by ns/a"},
		{"duplicate", &Table{Services: []Service{np("a", 30001), np("a", 30001), np("b", 30002)}}, "listed twice"},
		{"invalid changed service", &Table{Services: []Service{np("a", 30001), np("b", 80)}}, "outside the NodePort range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Diff(tc.t, DefaultNodePortMin, DefaultNodePortMax)
			if !errors.Is(err, ErrInvalidTable) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrInvalidTable mentioning %q", err, tc.want)
			}
			if verr := tc.t.Validate(DefaultNodePortMin, DefaultNodePortMax); verr == nil {
				t.Fatalf("Validate accepts what Diff refused")
			}
		})
	}
	// A refused table leaves the cache as it was.
	if got := syncCache(t, &c, base); len(got) != 0 {
		t.Fatalf("cache changed by refused tables: %v", got)
	}
}

// TestCacheAgreesWithValidate applies random edits and checks that Diff
// accepts exactly what Validate accepts and reports exactly the services
// whose rules change.
func TestCacheAgreesWithValidate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	mk := func(i int) Service {
		s := svc(fmt.Sprintf("s%02d", i), fmt.Sprintf("10.0.0.%d", i+1))
		for p := range rng.IntN(3) {
			port := Port{Protocol: []Protocol{TCP, UDP}[rng.IntN(2)], Port: uint16(80 + p)}
			if rng.IntN(4) == 0 {
				port.NodePort = uint16(30000 + rng.IntN(8))
			}
			for e := range rng.IntN(4) {
				port.Endpoints = append(port.Endpoints, Endpoint{
					IP: netip.AddrFrom4([4]byte{10, 1, byte(i), byte(e + 1)}), Port: 8080, Ready: rng.IntN(5) > 0})
			}
			s.Ports = append(s.Ports, port)
		}
		return s
	}
	var c Cache[string]
	applied := map[string]string{}
	tb := &Table{}
	for round := range 300 {
		next := &Table{}
		for _, s := range tb.Services {
			if rng.IntN(10) > 0 {
				next.Services = append(next.Services, copyService(&s))
			}
		}
		for range rng.IntN(4) {
			next.Services = append(next.Services, mk(rng.IntN(30)))
		}
		rng.Shuffle(len(next.Services), func(i, j int) { next.Services[i], next.Services[j] = next.Services[j], next.Services[i] })
		verr := next.Validate(DefaultNodePortMin, DefaultNodePortMax)
		d, err := c.Diff(next, DefaultNodePortMin, DefaultNodePortMax)
		if (err == nil) != (verr == nil) {
			t.Fatalf("round %d: Diff error %v, Validate error %v", round, err, verr)
		}
		if err != nil {
			continue
		}
		want := map[string]string{}
		for i := range next.Services {
			want[next.Services[i].Key()] = render(&next.Services[i])
		}
		changed := map[string]bool{}
		for i := range d.Changes {
			ch := &d.Changes[i]
			changed[ch.Key] = true
			if ch.New != nil {
				ch.Val = render(ch.New)
			}
			if ch.HasOld != (applied[ch.Key] != "") || ch.HasOld && ch.Old != applied[ch.Key] {
				t.Fatalf("round %d: %s: old %q/%v, applied %q", round, ch.Key, ch.Old, ch.HasOld, applied[ch.Key])
			}
		}
		for k, v := range want {
			if (applied[k] != v) != changed[k] {
				t.Fatalf("round %d: %s changed=%v but rendered %q → %q", round, k, changed[k], applied[k], v)
			}
		}
		for k := range applied {
			if _, ok := want[k]; !ok && !changed[k] {
				t.Fatalf("round %d: removal of %s not reported", round, k)
			}
		}
		c.Commit(d)
		applied, tb = want, next
	}
}

func BenchmarkCacheDiffOneChange(b *testing.B) {
	tb := &Table{Services: make([]Service, 10000)}
	for i := range tb.Services {
		p := Port{Name: "http", Protocol: TCP, Port: 80}
		for j := range 10 {
			p.Endpoints = append(p.Endpoints, Endpoint{IP: netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), byte(j)}), Port: 8080, Ready: true})
		}
		tb.Services[i] = Service{Namespace: "bench", Name: fmt.Sprintf("svc-%05d", i),
			ClusterIP: netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)}), Ports: []Port{p}}
	}
	var c Cache[int]
	d, _ := c.Diff(tb, DefaultNodePortMin, DefaultNodePortMax)
	c.Commit(d)
	ep := &tb.Services[5000].Ports[0].Endpoints[0]
	for b.Loop() {
		ep.Ready = !ep.Ready
		d, err := c.Diff(tb, DefaultNodePortMin, DefaultNodePortMax)
		if err != nil || len(d.Changes) != 1 {
			b.Fatal(err, len(d.Changes))
		}
		c.Commit(d)
	}
}
