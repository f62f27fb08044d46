package planner

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moor-dev/moor/api"
)

// parseAllocations reads "podcidr NODE PREFIX", "clusterip NS/NAME ADDR"
// and "nodeport KEY PORT" lines.
func parseAllocations(t testing.TB, src string) Allocations {
	t.Helper()
	a := Allocations{PodCIDRs: map[string]netip.Prefix{}, ClusterIPs: map[string]netip.Addr{}, NodePorts: map[string]int32{}}
	for _, line := range strings.Split(src, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			t.Fatalf("allocations line %q: want \"KIND KEY VALUE\"", line)
		}
		var err error
		switch f[0] {
		case "podcidr":
			a.PodCIDRs[f[1]], err = netip.ParsePrefix(f[2])
		case "clusterip":
			a.ClusterIPs[f[1]], err = netip.ParseAddr(f[2])
		case "nodeport":
			var n int
			n, err = strconv.Atoi(f[2])
			a.NodePorts[f[1]] = int32(n)
		default:
			err = fmt.Errorf("unknown kind %q", f[0])
		}
		if err != nil {
			t.Fatalf("allocations line %q: %v", line, err)
		}
	}
	return a
}

func formatAllocations(a Allocations) string {
	var b strings.Builder
	for _, k := range sortedKeys(a.PodCIDRs) {
		fmt.Fprintf(&b, "podcidr %s %s\n", k, a.PodCIDRs[k])
	}
	for _, k := range sortedKeys(a.ClusterIPs) {
		fmt.Fprintf(&b, "clusterip %s %s\n", k, a.ClusterIPs[k])
	}
	for _, k := range sortedKeys(a.NodePorts) {
		fmt.Fprintf(&b, "nodeport %s %d\n", k, a.NodePorts[k])
	}
	return b.String()
}

// parseStatus builds the reports of "namespace/name podIP ready|notready"
// lines for pods out placed, from the node out placed them on.
func parseStatus(t testing.TB, src string, out *Output) map[string][]api.PodStatus {
	t.Helper()
	status := map[string][]api.PodStatus{}
	for _, line := range strings.Split(src, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 || (f[2] != "ready" && f[2] != "notready") {
			t.Fatalf("status line %q: want \"namespace/name podIP ready|notready\"", line)
		}
		node, ok := out.Placement[f[0]]
		if !ok {
			t.Fatalf("status line %q: pod is not placed", line)
		}
		var pod *api.Pod
		for i := range out.Nodes[node].Pods {
			if p := &out.Nodes[node].Pods[i]; p.Key() == f[0] {
				pod = p
			}
		}
		st := running(*pod, "c", f[2] == "ready", now.Add(-10*time.Minute))
		st.Status.PodIP = f[1]
		status[node] = append(status[node], st)
	}
	return status
}

// formatServiceViews prints one line per Service as the CLI would show it,
// then one line per endpoint.
func formatServiceViews(views []api.ServiceView) string {
	var b strings.Builder
	for _, v := range views {
		s := &v.Service
		var ports []string
		for _, p := range s.Spec.Ports {
			ports = append(ports, fmt.Sprintf("%s:%d->%s/%s:%d", p.Name, p.Port, p.TargetPort.String(), p.Protocol, p.NodePort))
		}
		fmt.Fprintf(&b, "%s/%s %s %s affinity=%s ports=%s", s.Namespace, s.Name, s.Spec.Type, s.Spec.ClusterIP, s.Spec.SessionAffinity, strings.Join(ports, ","))
		if lb := s.Annotations[api.AnnotationLoadBalancer]; lb != "" {
			fmt.Fprintf(&b, " lb=%s", lb)
		}
		for _, c := range s.Status.Conditions {
			fmt.Fprintf(&b, " %s=%s(%s)", c.Type, c.Status, c.Reason)
		}
		b.WriteString("\n")
		for _, e := range v.Endpoints {
			var ps []string
			for _, k := range sortedKeys(e.Ports) {
				ps = append(ps, fmt.Sprintf("%s=%d", k, e.Ports[k]))
			}
			fmt.Fprintf(&b, "  %s %s on %s ready=%t %s\n", e.Pod, e.IP, e.Node, e.Ready, strings.Join(ps, ","))
		}
	}
	return b.String()
}
