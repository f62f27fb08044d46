package cli

import (
	"net/netip"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/moor-dev/moor/api"
)

// webHash is the pod-template-hash of the web Deployment's current
// revision; oldHash that of the revision it replaces.
const (
	webHash = "5d8f9c7b6a"
	oldHash = "4c7e8a9b1f"
)

// describeFixtures are the get fixtures plus what describe shows in
// detail: a Deployment pod with probes, env from a Secret, a secret volume
// and a crash-looping sidecar; a pod waiting on a Secret; an unschedulable
// pod; a rolling Deployment; endpoints; node addresses.
func describeFixtures() *fakeReader {
	f := fixtures()
	tmpl := webTemplate(webHash)

	web := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-" + webHash + "-abcde", UID: "uid-web-abcde",
		Labels:      tmpl.Labels,
		Annotations: map[string]string{"moor.dev/commit": shaDeployed},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", Controller: ptr.To(true)},
			{APIVersion: "v1", Kind: "Other", Name: "not-the-controller"}}},
		Spec: *tmpl.Spec.DeepCopy()}
	web.Spec.NodeName = "node-1"
	web.Status = corev1.PodStatus{Phase: corev1.PodRunning, HostIP: "10.0.0.1", PodIP: "10.42.0.9", PodIPs: []corev1.PodIP{{IP: "10.42.0.9"}},
		StartTime: mtime(6 * time.Minute),
		Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
			{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}, {Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady"}},
		ContainerStatuses: []corev1.ContainerStatus{
			{Name: "web", Image: "registry.local/web:2", ContainerID: "containerd://default_web-abcde_uid-web-_web", Ready: true, Started: ptr.To(true),
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(ago(5 * time.Minute))}}},
			{Name: "sidecar", Image: "registry.local/sidecar:1", RestartCount: 4, Started: ptr.To(false),
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off restarting exited container sidecar"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error",
					StartedAt: metav1.NewTime(ago(50 * time.Second)), FinishedAt: metav1.NewTime(ago(45 * time.Second))}}},
		}}

	worker := pod("shop", "worker-0", "node-2", "worker")
	worker.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "api"}, Key: "token", Optional: ptr.To(true)}}}}
	worker.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "registry"}}
	worker.Status = corev1.PodStatus{Phase: corev1.PodPending, HostIP: "10.0.0.2", StartTime: mtime(2 * time.Minute),
		ContainerStatuses: []corev1.ContainerStatus{{Name: "worker", Image: "registry.local/worker:1",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError",
				Message: "secret shop/api: Vault path secret/data/shop/api has no key \"token\""}}}}}

	big := pod("shop", "big-0", "", "big")
	big.Spec.NodeSelector = map[string]string{"disk": "nvme"}
	big.Status = corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, Message: "no node matches nodeSelector disk=nvme"}}}

	pv := func(p corev1.Pod, commit string) api.PodView { return api.PodView{Pod: p, Commit: commit} }
	f.pods = append(f.pods, pv(web, shaDeployed), pv(worker, shaDeployed), pv(big, ""))

	d := &f.deployments[0].Deployment // default/web
	d.Labels = map[string]string{"app": "web", "tier": "frontend"}
	d.Annotations = map[string]string{"moor.dev/source": "apps/web.yaml"}
	d.Spec.MinReadySeconds = 5
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: ptr.To(intstr.FromInt32(1)), MaxUnavailable: ptr.To(intstr.FromInt32(0))}}
	d.Spec.Template = tmpl
	d.Status = appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 1, UnavailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "ReplicaSetUpdated"}}}
	f.deployments[0].Rollout = api.DeploymentRollout{State: api.RolloutProgressing, Waiting: 1, Revision: webHash,
		Message: `Waiting for deployment "web" rollout to finish: 1 of 2 updated replicas are available...`,
		Revisions: []api.RevisionView{
			{Hash: oldHash, Images: []string{"registry.local/web:1", "registry.local/sidecar:1"}, Replicas: 1, Ready: 1, Available: 1},
			{Hash: webHash, Images: []string{"registry.local/web:2", "registry.local/sidecar:1"}, Replicas: 2, Ready: 1, Current: true},
		}}
	dns := &f.deployments[1].Deployment // kube-system/dns: Recreate, unrolled
	dns.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType

	ep := func(pod, ip, node string, ready bool, ports map[string]int32) api.Endpoint {
		return api.Endpoint{Pod: pod, IP: netip.MustParseAddr(ip), Node: node, Ready: ready, Ports: ports}
	}
	f.services[0].Endpoints = []api.Endpoint{ // default/web: http and https
		ep("web-7d9f-abcde", "10.42.0.5", "node-1", true, map[string]int32{"http": 8080, "https": 8443}),
		ep("web-7d9f-fghij", "10.42.1.7", "node-2", false, map[string]int32{"http": 8080, "https": 8443}),
		ep("web-"+webHash+"-abcde", "10.42.0.9", "node-1", true, map[string]int32{"http": 8080}),
	}
	many := make([]api.Endpoint, 0, 5)
	for i, ip := range []string{"10.42.0.11", "10.42.0.12", "10.42.1.13", "10.42.1.14", "10.42.2.15"} {
		many = append(many, ep("lb-"+string(rune('a'+i)), ip, "node-1", true, map[string]int32{"": 8443}))
	}
	f.services[2].Endpoints = many // default/lb: more than kubectl lists

	for i := range f.nodes {
		switch f.nodes[i].Name {
		case "node-1":
			f.nodes[i].Address, f.nodes[i].PodCIDR = netip.MustParseAddr("10.0.0.1"), netip.MustParsePrefix("10.42.0.0/24")
		case "node-2":
			f.nodes[i].Address, f.nodes[i].PodCIDR = netip.MustParseAddr("10.0.0.2"), netip.MustParsePrefix("10.42.1.0/24")
		}
	}
	return f
}

// webTemplate is the web Deployment's pod template at hash: a web
// container with every probe kind, env from a Secret (never a value),
// a field reference and a secret volume, and a sidecar.
func webTemplate(hash string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "pod-template-hash": hash}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "web", Image: "registry.local/web:2",
				Command: []string{"/bin/web"}, Args: []string{"--listen=:8080", "--greeting=hello\nworld"},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http"), Path: "/"}},
					PeriodSeconds: 2},
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}},
					InitialDelaySeconds: 10, SuccessThreshold: 5},
				StartupProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/ready"}}},
					FailureThreshold: 30, PeriodSeconds: 1},
				EnvFrom: []corev1.EnvFromSource{{Prefix: "DB_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}},
				Env: []corev1.EnvVar{
					{Name: "MODE", Value: "production"},
					{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
						LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "tls", MountPath: "/etc/tls", ReadOnly: true}, {Name: "db", MountPath: "/etc/db", SubPath: "creds"}},
			}, {
				Name: "sidecar", Image: "registry.local/sidecar:1",
			}},
			Volumes: []corev1.Volume{
				{Name: "db", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}},
				{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "web-tls", Optional: ptr.To(true)}}},
			},
			NodeSelector: map[string]string{"zone": "a"},
		},
	}
}
