package podnet

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
)

func TestNewAllocatorRejects(t *testing.T) {
	for _, p := range []string{"10.0.0.0/31", "10.0.0.1/32", "fd00::/64"} {
		if _, err := newAllocator(netip.MustParsePrefix(p)); err == nil {
			t.Errorf("newAllocator(%s): want error", p)
		}
	}
	if _, err := newAllocator(netip.Prefix{}); err == nil {
		t.Error("newAllocator(invalid): want error")
	}
}

// step is one allocator operation and what it must produce.
type step struct {
	op, pod string // op: "alloc" or "free"
	want    string // address for alloc; "exhausted" for ErrExhausted
}

func TestAllocator(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		steps  []step
	}{{
		name:   "skips network and gateway, stable per pod",
		prefix: "10.244.1.0/24",
		steps: []step{
			{"alloc", "a", "10.244.1.2"},
			{"alloc", "b", "10.244.1.3"},
			{"alloc", "a", "10.244.1.2"},
		},
	}, {
		name:   "round robin does not reuse a freed address at once",
		prefix: "10.244.1.0/24",
		steps: []step{
			{"alloc", "a", "10.244.1.2"},
			{"free", "a", ""},
			{"alloc", "b", "10.244.1.3"},
			{"alloc", "a", "10.244.1.4"},
		},
	}, {
		name:   "/30 has one pod address, then exhaustion, then reuse after free",
		prefix: "10.0.0.4/30",
		steps: []step{
			{"alloc", "a", "10.0.0.6"},
			{"alloc", "b", "exhausted"},
			{"free", "a", ""},
			{"alloc", "b", "10.0.0.6"},
		},
	}, {
		name:   "wraps around skipping broadcast and reserved",
		prefix: "10.0.0.0/29", // pods: .2-.6
		steps: []step{
			{"alloc", "a", "10.0.0.2"},
			{"alloc", "b", "10.0.0.3"},
			{"alloc", "c", "10.0.0.4"},
			{"alloc", "d", "10.0.0.5"},
			{"alloc", "e", "10.0.0.6"},
			{"alloc", "f", "exhausted"},
			{"free", "b", ""},
			{"free", "zz", ""}, // unknown: no-op
			{"alloc", "f", "10.0.0.3"},
		},
	}, {
		name:   "unmasked prefix is masked",
		prefix: "10.0.0.9/29",
		steps:  []step{{"alloc", "a", "10.0.0.10"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := newAllocator(netip.MustParsePrefix(tt.prefix))
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.steps {
				switch s.op {
				case "free":
					a.release(s.pod)
					continue
				case "alloc":
				default:
					t.Fatalf("bad op %q", s.op)
				}
				ip, err := a.allocate(s.pod)
				if s.want == "exhausted" {
					if !errors.Is(err, ErrExhausted) {
						t.Fatalf("step %d: allocate(%s) = %v, %v; want ErrExhausted", i, s.pod, ip, err)
					}
					continue
				}
				if err != nil || ip.String() != s.want {
					t.Fatalf("step %d: allocate(%s) = %v, %v; want %s", i, s.pod, ip, err, s.want)
				}
			}
		})
	}
}

func TestAllocatorFillsWholeSlash24(t *testing.T) {
	a, _ := newAllocator(netip.MustParsePrefix("10.244.7.0/24"))
	seen := map[netip.Addr]bool{}
	for i := range 253 {
		ip, err := a.allocate(fmt.Sprint("pod", i))
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if seen[ip] || a.reserved(ip) {
			t.Fatalf("allocation %d: %s handed out twice or reserved", i, ip)
		}
		seen[ip] = true
	}
	if _, err := a.allocate("one-too-many"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("254th allocation: %v, want ErrExhausted", err)
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	cidr := netip.MustParsePrefix("10.244.3.0/24")
	a, recs, err := loadState(dir, cidr)
	if err != nil || len(recs) != 0 {
		t.Fatalf("empty dir: %v %v", recs, err)
	}
	for _, id := range []string{"a", "b", "c"} {
		ip, _ := a.allocate(id)
		recs[id] = podRecord{IP: ip, NetNS: "/run/netns/" + id, HostVeth: "mv" + id}
	}
	a.release("b")
	delete(recs, "b")
	if err := saveState(dir, a, recs); err != nil {
		t.Fatal(err)
	}
	a2, recs2, err := loadState(dir, cidr)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(recs, recs2) || !reflect.DeepEqual(a.pods(), a2.pods()) {
		t.Fatalf("reloaded %v / %v, want %v / %v", recs2, a2.pods(), recs, a.pods())
	}
	// The cursor survives: the next address is .5, not the freed .3.
	if ip, _ := a2.allocate("d"); ip.String() != "10.244.3.5" {
		t.Fatalf("after reload allocate = %s, want 10.244.3.5", ip)
	}
	if _, _, err := loadState(dir, netip.MustParsePrefix("10.244.4.0/24")); err == nil {
		t.Fatal("loading state for another pod CIDR: want error")
	}
}

func TestLoadStateRejectsBadFiles(t *testing.T) {
	cidr := netip.MustParsePrefix("10.244.3.0/24")
	for name, body := range map[string]string{
		"garbage":     "{",
		"version":     `{"version":9,"podCIDR":"10.244.3.0/24","pods":{}}`,
		"outside":     `{"version":1,"podCIDR":"10.244.3.0/24","pods":{"a":{"ip":"10.9.9.9"}}}`,
		"gateway":     `{"version":1,"podCIDR":"10.244.3.0/24","pods":{"a":{"ip":"10.244.3.1"}}}`,
		"duplicateIP": `{"version":1,"podCIDR":"10.244.3.0/24","pods":{"a":{"ip":"10.244.3.2"},"b":{"ip":"10.244.3.2"}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir+"/"+stateFileName, body)
			if _, _, err := loadState(dir, cidr); err == nil {
				t.Fatal("want error")
			}
		})
	}
}
