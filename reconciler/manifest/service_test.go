package manifest

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const svcYAML = `apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  type: NodePort
  clusterIP: %s
  ports:
  - {port: 80, nodePort: %s}
`

func TestLoadWithOptions(t *testing.T) {
	opts := Options{
		ServiceCIDR:        netip.MustParsePrefix("10.100.0.0/24"),
		NodePortRange:      [2]int{31000, 31010},
		ReservedClusterIPs: map[netip.Addr]string{netip.MustParseAddr("10.100.0.10"): "the cluster DNS"},
	}
	for _, tt := range []struct {
		name, ip, port string
		want           string
	}{
		{"inside", "10.100.0.5", "31000", ""},
		{"ip outside", "10.96.0.5", "31000", `s.yaml: document 0: Service default/s: spec.clusterIP: Invalid value: "10.96.0.5": is not in the service CIDR 10.100.0.0/24; pick an address inside it or leave spec.clusterIP empty to have one allocated`},
		{"broadcast", "10.100.0.255", "31000", `s.yaml: document 0: Service default/s: spec.clusterIP: Invalid value: "10.100.0.255": is the network or broadcast address of the service CIDR 10.100.0.0/24; pick another`},
		{"reserved", "10.100.0.10", "31000", `s.yaml: document 0: Service default/s: spec.clusterIP: Invalid value: "10.100.0.10": is reserved for the cluster DNS; pick another address or leave spec.clusterIP empty`},
		{"ipv6", "fd00::1", "31000", `s.yaml: document 0: Service default/s: spec.clusterIP: Invalid value: "fd00::1": moor supports IPv4 only`},
		{"port outside", "10.100.0.5", "30000", `s.yaml: document 0: Service default/s: spec.ports[0].nodePort: Invalid value: 30000: is not in the node port range 31000-31010; pick a port inside it or leave nodePort unset to have one allocated`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(strings.Replace(svcYAML, "%s", tt.ip, 1), "%s", tt.port, 1)
			objs, err := LoadWithOptions(map[string][]byte{"s.yaml": []byte(src)}, opts)
			got := ""
			if err != nil {
				checkErrorClass(t, err)
				got = err.Error()
			} else if len(objs.Services) != 1 {
				t.Fatalf("got %d services", len(objs.Services))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := LoadWithOptions(nil, Options{NodePortRange: [2]int{5, 1}}); err == nil {
		t.Error("an inverted node port range was accepted")
	}
	if _, err := LoadWithOptions(nil, Options{ServiceCIDR: netip.MustParsePrefix("fd00::/108")}); err == nil {
		t.Error("an IPv6 service CIDR was accepted")
	}
}

// TestEmptyUnsupportedFields: empty values of unimplemented fields are
// accepted and leave no trace; non-empty ones and unknown fields are not.
func TestEmptyUnsupportedFields(t *testing.T) {
	ok := podYAML + "  - name: d\n    image: busybox\n    lifecycle: {}\n    resources: {limits: {}}\n    volumeDevices: []\nstatus: {conditions: []}\n"
	objs, err := Load(map[string][]byte{"p.yaml": []byte(ok)})
	if err != nil {
		t.Fatal(err)
	}
	if c := objs.Pods[0].Spec.Containers[1]; c.Lifecycle != nil || c.VolumeDevices != nil {
		t.Errorf("empty fields left a trace: %+v", c)
	}
	bad := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: busybox\n" +
		"    livenesProbe: {}\n    lifecycle: {preStop: {exec: {command: [\"true\"]}}}\n"
	_, err = Load(map[string][]byte{"p.yaml": []byte(bad)})
	want := "p.yaml: document 0: Pod default/p: spec.containers[0].lifecycle: " + notSupported + "\n" +
		"p.yaml: document 0: Pod default/p: spec.containers[0].livenesProbe: unknown field: Kubernetes has no such field here; check its spelling and indentation"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}
