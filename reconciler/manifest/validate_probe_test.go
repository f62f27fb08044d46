package manifest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

func TestValidateProbes(t *testing.T) {
	exec := corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}
	httpGet := func(port intstr.IntOrString) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: port}}
	}
	probe := func(h corev1.ProbeHandler, mod ...func(*corev1.Probe)) *corev1.Probe {
		p := &corev1.Probe{ProbeHandler: h}
		for _, m := range mod {
			m(p)
		}
		return p
	}
	tests := []struct {
		name string
		c    corev1.Container
		want []string // "path: message", in order
	}{{
		name: "no probes",
	}, {
		name: "every handler and field, valid",
		c: corev1.Container{
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: probe(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/ready?full=1", Port: intstr.FromString("http"), Host: "10.0.0.1", Scheme: corev1.URISchemeHTTPS,
				HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "1"}, {Name: "Host", Value: "example.com"}},
			}}, func(p *corev1.Probe) {
				p.InitialDelaySeconds, p.PeriodSeconds, p.TimeoutSeconds, p.SuccessThreshold, p.FailureThreshold = 5, 2, 3, 2, 4
			}),
			LivenessProbe: probe(corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080), Host: "localhost"}},
				func(p *corev1.Probe) { p.SuccessThreshold = 1 }),
			StartupProbe: probe(exec, func(p *corev1.Probe) { p.FailureThreshold = 30 }),
		},
	}, {
		name: "no handler",
		c:    corev1.Container{LivenessProbe: &corev1.Probe{PeriodSeconds: 5}},
		want: []string{"spec.containers[0].livenessProbe: Required value: set one handler: exec, httpGet or tcpSocket"},
	}, {
		name: "two handlers",
		c: corev1.Container{ReadinessProbe: probe(corev1.ProbeHandler{
			Exec: exec.Exec, TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)},
		})},
		want: []string{"spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type; this probe already has exec"},
	}, {
		name: "grpc is left to the allow-list",
		c: corev1.Container{
			StartupProbe:  probe(corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9000}}),
			LivenessProbe: probe(corev1.ProbeHandler{Exec: exec.Exec, GRPC: &corev1.GRPCAction{Port: 9000}}),
		},
	}, {
		name: "empty exec command",
		c:    corev1.Container{LivenessProbe: probe(corev1.ProbeHandler{Exec: &corev1.ExecAction{}})},
		want: []string{"spec.containers[0].livenessProbe.exec.command: Required value: give the command to run in the container, e.g. [cat, /tmp/healthy]"},
	}, {
		name: "negative numbers",
		c: corev1.Container{ReadinessProbe: probe(exec, func(p *corev1.Probe) {
			p.InitialDelaySeconds, p.PeriodSeconds, p.TimeoutSeconds, p.SuccessThreshold, p.FailureThreshold = -1, -2, -3, -4, -5
		})},
		want: []string{
			"spec.containers[0].readinessProbe.initialDelaySeconds: Invalid value: -1: must be greater than or equal to 0",
			"spec.containers[0].readinessProbe.periodSeconds: Invalid value: -2: must be greater than or equal to 0",
			"spec.containers[0].readinessProbe.timeoutSeconds: Invalid value: -3: must be greater than or equal to 0",
			"spec.containers[0].readinessProbe.successThreshold: Invalid value: -4: must be at least 1; leave it out for the default, 1",
			"spec.containers[0].readinessProbe.failureThreshold: Invalid value: -5: must be at least 1; leave it out for the default, 3",
		},
	}, {
		name: "successThreshold above 1 on liveness and startup",
		c: corev1.Container{
			ReadinessProbe: probe(exec, func(p *corev1.Probe) { p.SuccessThreshold = 3 }),
			LivenessProbe:  probe(exec, func(p *corev1.Probe) { p.SuccessThreshold = 2 }),
			StartupProbe:   probe(exec, func(p *corev1.Probe) { p.SuccessThreshold = 2 }),
		},
		want: []string{
			"spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1 for liveness and startup probes (one success shows the container is alive or started); leave it out",
			"spec.containers[0].startupProbe.successThreshold: Invalid value: 2: must be 1 for liveness and startup probes (one success shows the container is alive or started); leave it out",
		},
	}, {
		name: "named port missing",
		c: corev1.Container{
			Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 80}, {Name: "metrics", ContainerPort: 9090}, {ContainerPort: 81}},
			ReadinessProbe: probe(httpGet(intstr.FromString("admin"))),
		},
		want: []string{`spec.containers[0].readinessProbe.httpGet.port: Invalid value: "admin": names no port of this container (its ports are named "http", "metrics"); use one of them or the port number`},
	}, {
		name: "named port without any named ports",
		c:    corev1.Container{LivenessProbe: probe(corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}})},
		want: []string{`spec.containers[0].livenessProbe.tcpSocket.port: Invalid value: "http": names no port of this container: add it to the container's ports (name and containerPort) or give the port number`},
	}, {
		name: "bad ports",
		c: corev1.Container{
			ReadinessProbe: probe(httpGet(intstr.FromInt32(0))),
			LivenessProbe:  probe(httpGet(intstr.FromInt32(70000))),
			StartupProbe:   probe(httpGet(intstr.FromString("Not_A_Name"))),
		},
		want: []string{
			"spec.containers[0].readinessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive",
			"spec.containers[0].livenessProbe.httpGet.port: Invalid value: 70000: must be between 1 and 65535, inclusive",
			`spec.containers[0].startupProbe.httpGet.port: Invalid value: "Not_A_Name": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)`,
		},
	}, {
		name: "empty named port",
		c:    corev1.Container{ReadinessProbe: probe(httpGet(intstr.FromString("")))},
		want: []string{"spec.containers[0].readinessProbe.httpGet.port: Required value: give a port number or the name of one of the container's ports"},
	}, {
		name: "bad http fields",
		c: corev1.Container{ReadinessProbe: probe(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "http://other/healthz", Port: intstr.FromInt32(80), Host: "http://x:80", Scheme: "ftp",
			HTTPHeaders: []corev1.HTTPHeader{{Value: "v"}, {Name: "Bad Header", Value: "v"}},
		}})},
		want: []string{
			`spec.containers[0].readinessProbe.httpGet.host: Invalid value: "http://x:80": must be an IP address or a DNS name, without scheme or port; leave it out to probe the pod's IP`,
			`spec.containers[0].readinessProbe.httpGet.path: Invalid value: "http://other/healthz": must be a URL path such as /healthz (set host, port and scheme in their own fields)`,
			`spec.containers[0].readinessProbe.httpGet.scheme: Unsupported value: "ftp": supported values: "HTTP", "HTTPS"`,
			"spec.containers[0].readinessProbe.httpGet.httpHeaders[0].name: Required value: every header needs a name",
			`spec.containers[0].readinessProbe.httpGet.httpHeaders[1].name: Invalid value: "Bad Header": a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')`,
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := validateProbes(&tc.c, field.NewPath("spec", "containers").Index(0))
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProbeAllowList: every probe field moor implements loads as written;
// grpc and a probe's own grace period are rejected with their reasons.
func TestProbeAllowList(t *testing.T) {
	const pod = `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: c
    image: busybox
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet:
        path: /ready
        port: http
        host: 127.0.0.1
        scheme: HTTPS
        httpHeaders: [{name: X-Probe, value: "1"}]
      initialDelaySeconds: 1
      periodSeconds: 2
      timeoutSeconds: 3
      successThreshold: 2
      failureThreshold: 5
    livenessProbe:
      tcpSocket: {port: 8080, host: localhost}
    startupProbe:
      exec: {command: [test, -f, /tmp/started]}
      failureThreshold: 30
`
	objs, err := Load(map[string][]byte{"p.yaml": []byte(pod)})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	c := objs.Pods[0].Spec.Containers[0]
	got, err := yaml.Marshal(struct {
		R, L, S *corev1.Probe
	}{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe})
	if err != nil {
		t.Fatal(err)
	}
	want := `L:
  tcpSocket:
    host: localhost
    port: 8080
R:
  failureThreshold: 5
  httpGet:
    host: 127.0.0.1
    httpHeaders:
    - name: X-Probe
      value: "1"
    path: /ready
    port: http
    scheme: HTTPS
  initialDelaySeconds: 1
  periodSeconds: 2
  successThreshold: 2
  timeoutSeconds: 3
S:
  exec:
    command:
    - test
    - -f
    - /tmp/started
  failureThreshold: 30
`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("probes (-want +got):\n%s", diff)
	}

	bad := strings.Replace(pod, "      failureThreshold: 30\n",
		"      failureThreshold: 30\n      terminationGracePeriodSeconds: 5\n      grpc: {port: 9000}\n", 1)
	_, err = Load(map[string][]byte{"p.yaml": []byte(bad)})
	wantErr := "p.yaml: document 0: Pod default/p: spec.containers[0].startupProbe.grpc: gRPC probes are not supported by moor yet; use exec (e.g. grpc_health_probe in the image), httpGet or tcpSocket\n" +
		"p.yaml: document 0: Pod default/p: spec.containers[0].startupProbe.terminationGracePeriodSeconds: not supported by moor: a container killed by a failed probe gets the pod's spec.terminationGracePeriodSeconds; remove it here and set that instead"
	if err == nil || err.Error() != wantErr {
		t.Errorf("err = %v\nwant %s", err, wantErr)
	}
}
