package planner

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/moor-dev/moor/api"
)

// serviceViews shows each Service as kubectl would after the API server
// defaulted and allocated it. table is sorted like svcs.
func serviceViews(svcs []*corev1.Service, table []api.Service, commit string, now time.Time) []api.ServiceView {
	views := make([]api.ServiceView, 0, len(svcs))
	for i, s := range svcs {
		views = append(views, api.ServiceView{Service: serviceObject(s, &table[i], now), Commit: commit, Endpoints: table[i].Endpoints})
	}
	return views
}

func serviceObject(in *corev1.Service, t *api.Service, now time.Time) corev1.Service {
	s := *in.DeepCopy()
	s.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}
	s.Namespace = t.Namespace
	spec := &s.Spec
	spec.Type = corev1.ServiceType(t.Type)
	spec.ClusterIP = corev1.ClusterIPNone
	if t.ClusterIP.IsValid() {
		spec.ClusterIP = t.ClusterIP.String()
	}
	spec.ClusterIPs = []string{spec.ClusterIP}
	single := corev1.IPFamilyPolicySingleStack
	spec.IPFamilies, spec.IPFamilyPolicy = []corev1.IPFamily{corev1.IPv4Protocol}, &single
	spec.SessionAffinity = corev1.ServiceAffinity(t.SessionAffinity)
	if t.SessionAffinity == api.AffinityClientIP {
		timeout := t.SessionAffinityTimeoutSeconds
		spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: &timeout}}
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		p.Protocol = corev1.Protocol(t.Ports[i].Protocol)
		p.NodePort = t.Ports[i].NodePort
		if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal == 0 {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	s.Status = corev1.ServiceStatus{}
	if spec.Type == corev1.ServiceTypeLoadBalancer {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[api.AnnotationLoadBalancer] = api.LoadBalancerServedAsNodePort
		s.Status.Conditions = []metav1.Condition{{
			Type:               api.ConditionLoadBalancer,
			Status:             metav1.ConditionFalse,
			Reason:             "ServedAsNodePort",
			Message:            "moor has no load balancer: the Service is reachable at its node ports on every node's address",
			LastTransitionTime: metav1.NewTime(now),
		}}
	}
	return s
}
