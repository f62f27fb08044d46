package cli

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/moor-dev/moor/api"
)

// testNow is the fixed clock of every printer test.
var testNow = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

func ago(d time.Duration) time.Time { return testNow.Add(-d) }

func mtime(d time.Duration) *metav1.Time { t := metav1.NewTime(ago(d)); return &t }

const (
	shaHead     = "c0ffee1234567890c0ffee1234567890c0ffee12"
	shaDeployed = "abc1234def567890abc1234def567890abc1234d"
	shaOld      = "0123456789abcdef0123456789abcdef01234567"
)

// fakeReader serves fixed views; err, when set, fails every call.
type fakeReader struct {
	pods        []api.PodView
	deployments []api.DeploymentView
	nodes       []api.NodeView
	commits     []api.CommitView
	services    []api.ServiceView
	err         error
}

var _ viewReader = (*fakeReader)(nil)

func (f *fakeReader) Pods(context.Context) ([]api.PodView, error) { return f.pods, f.err }
func (f *fakeReader) Deployments(context.Context) ([]api.DeploymentView, error) {
	return f.deployments, f.err
}
func (f *fakeReader) Nodes(context.Context) ([]api.NodeView, error)     { return f.nodes, f.err }
func (f *fakeReader) Commits(context.Context) ([]api.CommitView, error) { return f.commits, f.err }
func (f *fakeReader) Services(context.Context) ([]api.ServiceView, error) {
	return f.services, f.err
}

// svc builds an allocated Service as the planner shows it.
func svc(ns, name string, typ corev1.ServiceType, clusterIP string, ports ...corev1.ServicePort) api.ServiceView {
	s := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Type: typ, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}, Selector: map[string]string{"app": name},
			SessionAffinity: corev1.ServiceAffinityNone, Ports: ports}}
	if typ == corev1.ServiceTypeLoadBalancer {
		s.Annotations = map[string]string{api.AnnotationLoadBalancer: api.LoadBalancerServedAsNodePort}
		s.Status.Conditions = []metav1.Condition{{Type: api.ConditionLoadBalancer, Status: metav1.ConditionFalse,
			Reason: "ServedAsNodePort", Message: "moor has no load balancer", LastTransitionTime: metav1.NewTime(testNow)}}
	}
	return api.ServiceView{Service: s, Commit: shaDeployed}
}

func sport(name string, port, nodePort int32, proto corev1.Protocol) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, NodePort: nodePort, Protocol: proto, TargetPort: intstr.FromInt32(port + 8000)}
}

func pod(ns, name, node string, containers ...string) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name),
		Labels: map[string]string{"app": name}}}
	p.Spec.NodeName = node
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "registry.local/" + c + ":1"})
	}
	return p
}

func running(name string, restarts int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, Ready: true, RestartCount: restarts,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(ago(5 * time.Minute))}}}
}

func fixtures() *fakeReader {
	web := pod("default", "web-7d9f-abcde", "node-1", "web")
	web.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.5", StartTime: mtime(5*time.Minute + 10*time.Second),
		Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{running("web", 0)}}

	crash := pod("default", "web-7d9f-fghij", "node-2", "web", "sidecar")
	crash.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.1.7", StartTime: mtime(3 * time.Hour),
		ContainerStatuses: []corev1.ContainerStatus{
			{Name: "web", RestartCount: 4,
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", FinishedAt: metav1.NewTime(ago(45 * time.Second))}}},
			running("sidecar", 1),
		}}

	job := pod("default", "migrate", "node-1", "migrate")
	job.Status = corev1.PodStatus{Phase: corev1.PodSucceeded, StartTime: mtime(26 * time.Hour),
		ContainerStatuses: []corev1.ContainerStatus{{Name: "migrate",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}}}}

	initp := pod("default", "api-0", "node-2", "api")
	initp.Spec.InitContainers = []corev1.Container{{Name: "schema"}, {Name: "seed"}}
	initp.Status = corev1.PodStatus{Phase: corev1.PodPending, StartTime: mtime(90 * time.Second),
		InitContainerStatuses: []corev1.ContainerStatus{
			{Name: "schema", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}},
			{Name: "seed", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
		}}

	creating := pod("default", "cache-0", "node-1", "redis", "exporter")
	creating.CreationTimestamp = metav1.NewTime(ago(12 * time.Second))
	creating.Status = corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{
		{Name: "redis", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
		{Name: "exporter", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
	}}

	planned := pod("default", "unreported", "node-3", "app") // no status yet

	term := pod("default", "old-web", "node-1", "web")
	term.DeletionTimestamp = mtime(time.Second)
	term.Status = corev1.PodStatus{Phase: corev1.PodRunning, StartTime: mtime(9 * 24 * time.Hour),
		ContainerStatuses: []corev1.ContainerStatus{running("web", 0)}}

	dns := pod("kube-system", "dns-0", "node-1", "coredns")
	dns.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.2", StartTime: mtime(3 * 24 * time.Hour),
		Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{running("coredns", 0)}}

	webDep := appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", CreationTimestamp: metav1.NewTime(ago(53 * time.Hour))},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "web", Image: "registry.local/web:1"}, {Name: "sidecar", Image: "registry.local/sidecar:1"}}}}},
		Status: appsv1.DeploymentStatus{Replicas: 2, ReadyReplicas: 1, UpdatedReplicas: 2, AvailableReplicas: 1}}
	dnsDep := appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "dns", CreationTimestamp: metav1.NewTime(ago(3 * 24 * time.Hour))},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "dns"}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "coredns", Image: "registry.local/coredns:1"}}}}},
		Status: appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}}

	pv := func(p corev1.Pod, commit string) api.PodView { return api.PodView{Pod: p, Commit: commit} }
	return &fakeReader{
		// Out of order on purpose: the printers sort.
		pods: []api.PodView{pv(web, shaDeployed), pv(dns, shaDeployed), pv(crash, shaDeployed), pv(job, shaOld),
			pv(initp, shaDeployed), pv(creating, shaDeployed), pv(planned, ""), pv(term, shaOld)},
		deployments: []api.DeploymentView{{Deployment: webDep, Commit: shaDeployed}, {Deployment: dnsDep, Commit: shaDeployed}},
		nodes: []api.NodeView{
			{Name: "node-2", Labels: map[string]string{"zone": "b", "disk": "ssd"}, JoinedAt: ago(10 * 24 * time.Hour), LastSeen: ago(3 * time.Second), Commit: shaDeployed, Pods: 2, Ready: true},
			{Name: "node-1", Labels: map[string]string{"zone": "a"}, JoinedAt: ago(10*24*time.Hour + 5*time.Hour), LastSeen: ago(2 * time.Second), Commit: shaDeployed, Pods: 5, Ready: true},
			{Name: "node-3", JoinedAt: ago(7 * time.Minute), LastSeen: ago(6*time.Minute + 30*time.Second), Commit: shaOld, Pods: 1},
			{Name: "node-4", JoinedAt: ago(20 * time.Second)},
		},
		services: []api.ServiceView{
			svc("default", "web", corev1.ServiceTypeNodePort, "10.96.0.1", sport("http", 80, 30080, corev1.ProtocolTCP), sport("https", 443, 30443, corev1.ProtocolTCP)),
			svc("kube-system", "dns", corev1.ServiceTypeClusterIP, "10.96.0.2", sport("dns", 53, 0, corev1.ProtocolUDP), sport("dns-tcp", 53, 0, corev1.ProtocolTCP)),
			svc("default", "lb", corev1.ServiceTypeLoadBalancer, "10.96.0.3", sport("", 443, 31443, corev1.ProtocolTCP)),
			svc("default", "peers", corev1.ServiceTypeClusterIP, "None"),
		},
		commits: []api.CommitView{
			{SHA: shaHead, Author: "Ada Lovelace <ada@example.com>", Message: "Scale web to three replicas and add a readiness probe to every container\n\nLonger body.",
				State: api.CommitRejected, SeenAt: ago(2 * time.Minute), WebhookAt: ago(2*time.Minute + 80*time.Millisecond),
				FetchedAt: ago(2 * time.Minute), RejectedAt: ago(2*time.Minute - 6*time.Millisecond),
				Errors: []string{"apps/web.yaml: Deployment default/web: spec.template.spec.containers[0].readinessProbe.httpGet.port: must be a port number or name", "apps/web.yaml: Deployment default/web: spec.replicas: must be at most 10"}},
			deployedCommit(),
			{SHA: shaOld, Author: "Grace Hopper <grace@example.com>", Message: "Initial import", State: api.CommitAccepted, SeenAt: ago(53 * time.Hour),
				FetchedAt: ago(53 * time.Hour), PlannedAt: ago(53*time.Hour - 20*time.Millisecond), PublishedAt: ago(53*time.Hour - 22*time.Millisecond),
				Converged: 1, Total: 2, Nodes: []api.CommitNodeView{
					{Node: "node-1", PublishedAt: ago(53*time.Hour - 20*time.Millisecond), PulledAt: ago(53*time.Hour - 400*time.Millisecond), RunningAt: ago(53*time.Hour - 14*time.Second)},
					{Node: "node-3", PublishedAt: ago(53*time.Hour - 20*time.Millisecond)},
				}},
		},
	}
}

// deployedCommit came by webhook and runs on both of its nodes.
func deployedCommit() api.CommitView {
	hook := ago(3*time.Hour + 35*time.Millisecond) // seen (fetched) exactly 3h ago
	at := func(d time.Duration) time.Time { return hook.Add(d) }
	return api.CommitView{SHA: shaDeployed, Author: "Grace Hopper <grace@example.com>", Message: "Add sidecar", State: api.CommitAccepted, Deployed: true,
		SeenAt: at(35 * time.Millisecond), WebhookAt: hook, FetchedAt: at(35 * time.Millisecond), PlannedAt: at(41 * time.Millisecond),
		PublishedAt: at(43 * time.Millisecond), RunningAt: at(1250 * time.Millisecond), Converged: 2, Total: 2, PushToRunning: 1250 * time.Millisecond,
		Nodes: []api.CommitNodeView{
			{Node: "node-1", PublishedAt: at(41 * time.Millisecond), PulledAt: at(310 * time.Millisecond), RunningAt: at(1250 * time.Millisecond)},
			{Node: "node-2", PublishedAt: at(41 * time.Millisecond), PulledAt: at(290 * time.Millisecond), RunningAt: at(980 * time.Millisecond)},
		}}
}
