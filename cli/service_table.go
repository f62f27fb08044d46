package cli

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
)

// serviceTable prints kubectl's Service columns; wide adds SELECTOR and
// the commit.
func serviceTable(svcs []api.ServiceView, o tableOptions) table {
	h := []string{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"}
	if o.Wide {
		h = append(h, "SELECTOR", "COMMIT")
	}
	t := newTable(kindService, o, h...)
	for i := range svcs {
		s := &svcs[i].Service
		cells := []string{string(s.Spec.Type), orNone(s.Spec.ClusterIP), externalIP(s), servicePorts(s.Spec.Ports), age(s.CreationTimestamp.Time, o.Now)}
		if o.Wide {
			cells = append(cells, orNone(metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: s.Spec.Selector})), shortSHA(svcs[i].Commit))
		}
		t.addRow(kindService, o, s.Namespace, s.Name, cells...)
	}
	return t
}

// externalIP is kubectl's EXTERNAL-IP: a LoadBalancer without ingress is
// <pending>, as on minikube without a tunnel (moor serves it as NodePort).
func externalIP(s *corev1.Service) string {
	if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return "<none>"
	}
	var ips []string
	for _, in := range s.Status.LoadBalancer.Ingress {
		ips = append(ips, in.IP+in.Hostname)
	}
	if len(ips) == 0 {
		return "<pending>"
	}
	return strings.Join(ips, ",")
}

// servicePorts is kubectl's PORT(S): "80/TCP", "80:30080/TCP" with a node
// port, comma-separated.
func servicePorts(ports []corev1.ServicePort) string {
	parts := make([]string, 0, len(ports))
	for _, p := range ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		if p.NodePort > 0 {
			parts = append(parts, fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, proto))
		} else {
			parts = append(parts, fmt.Sprintf("%d/%s", p.Port, proto))
		}
	}
	return orNone(strings.Join(parts, ","))
}
