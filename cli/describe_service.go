package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/moor-dev/moor/api"
)

// maxDescribedEndpoints is how many endpoints kubectl lists per port
// before "+ N more...".
const maxDescribedEndpoints = 3

// describeService renders a Service as kubectl describe service does: per
// port its target, node port and ready endpoints; then moor's endpoint
// pods, ready or not.
func describeService(w io.Writer, v api.ServiceView, now time.Time) error {
	s := &v.Service
	d := newDescriber()
	d.field(0, "Name", s.Name)
	d.field(0, "Namespace", s.Namespace)
	d.list(0, "Labels", pairs(s.Labels, "="))
	d.list(0, "Annotations", pairs(s.Annotations, ": "))
	d.field(0, "Selector", metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: s.Spec.Selector}))
	typ := s.Spec.Type
	if typ == "" {
		typ = corev1.ServiceTypeClusterIP
	}
	d.field(0, "Type", string(typ))
	d.field(0, "IP", orNone(s.Spec.ClusterIP))
	d.field(0, "IPs", orNone(strings.Join(s.Spec.ClusterIPs, ",")))
	if in := s.Status.LoadBalancer.Ingress; len(in) > 0 {
		var ips []string
		for _, i := range in {
			ips = append(ips, i.IP+i.Hostname)
		}
		d.field(0, "LoadBalancer Ingress", strings.Join(ips, ", "))
	}
	for _, sp := range s.Spec.Ports {
		name := sp.Name
		if name == "" {
			name = "<unset>"
		}
		proto := sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		d.line(0, "Port:\t%s\t%d/%s", name, sp.Port, proto)
		d.field(0, "TargetPort", targetPort(sp)+"/"+string(proto))
		if sp.NodePort != 0 {
			d.line(0, "NodePort:\t%s\t%d/%s", name, sp.NodePort, proto)
		}
		d.field(0, "Endpoints", readyEndpoints(v.Endpoints, sp.Name))
	}
	affinity := s.Spec.SessionAffinity
	if affinity == "" {
		affinity = corev1.ServiceAffinityNone
	}
	d.field(0, "Session Affinity", string(affinity))
	if typ == corev1.ServiceTypeNodePort || typ == corev1.ServiceTypeLoadBalancer {
		policy := s.Spec.ExternalTrafficPolicy
		if policy == "" {
			policy = corev1.ServiceExternalTrafficPolicyCluster
		}
		d.field(0, "External Traffic Policy", string(policy))
	}
	d.field(0, "Commit", shortSHA(v.Commit))
	if len(s.Status.Conditions) > 0 {
		var rows [][]string
		for _, c := range s.Status.Conditions {
			rows = append(rows, []string{c.Type, string(c.Status), orNone(c.Reason), orNone(oneLine(c.Message))})
		}
		d.table(0, "Conditions", []string{"Type", "Status", "Reason", "Message"}, rows)
	}
	var rows [][]string
	for _, e := range v.Endpoints {
		ip := "<none>"
		if e.IP.IsValid() {
			ip = e.IP.String()
		}
		rows = append(rows, []string{e.Pod, ip, orNone(e.Node), boolWord(e.Ready)})
	}
	d.table(0, "Endpoint Pods", []string{"Pod", "IP", "Node", "Ready"}, rows)
	return d.writeTo(w)
}

// targetPort is the port's targetPort, its port when unset (Kubernetes'
// default).
func targetPort(sp corev1.ServicePort) string {
	t := sp.TargetPort
	switch {
	case t.Type == intstr.String && t.StrVal != "":
		return t.StrVal
	case t.Type == intstr.Int && t.IntVal != 0:
		return fmt.Sprint(t.IntVal)
	}
	return fmt.Sprint(sp.Port)
}

// readyEndpoints is kubectl's Endpoints line of one port: "ip:port" of
// the ready endpoints that have it, at most three then "+ N more...".
func readyEndpoints(eps []api.Endpoint, port string) string {
	var list []string
	n := 0
	for _, e := range eps {
		p, ok := e.Ports[port]
		if !e.Ready || !ok || !e.IP.IsValid() {
			continue
		}
		if n < maxDescribedEndpoints {
			list = append(list, fmt.Sprintf("%s:%d", e.IP, p))
		}
		n++
	}
	out := orNone(strings.Join(list, ","))
	if n > maxDescribedEndpoints {
		out += fmt.Sprintf(" + %d more...", n-maxDescribedEndpoints)
	}
	return out
}
