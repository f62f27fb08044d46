package cli

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
)

// Defaults the node agent applies to what manifests leave unset (moor's
// manifests are not defaulted, so describe shows what runs).
const (
	defaultProbePeriod           = 10 // seconds
	defaultProbeTimeout          = 1  // seconds
	defaultProbeSuccessThreshold = 1
	defaultProbeFailureThreshold = 3
	defaultGracePeriod           = 30 // seconds
)

// describePod renders a pod as kubectl describe pod does. Secret
// references print as "<set to the key 'k' in secret 's'>": views carry no
// values, and a value that came along a reference is never printed.
func describePod(w io.Writer, v api.PodView, now time.Time) error {
	p := &v.Pod
	d := newDescriber()
	d.field(0, "Name", p.Name)
	d.field(0, "Namespace", p.Namespace)
	node := "<none>"
	if p.Spec.NodeName != "" {
		node = p.Spec.NodeName
		if p.Status.HostIP != "" {
			node += "/" + p.Status.HostIP
		}
	}
	d.field(0, "Node", node)
	if st := p.Status.StartTime; st != nil {
		d.field(0, "Start Time", stamp(st.Time, now))
	}
	d.list(0, "Labels", pairs(p.Labels, "="))
	d.list(0, "Annotations", pairs(p.Annotations, ": "))
	if t := p.DeletionTimestamp; t != nil && p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
		d.field(0, "Status", "Terminating (lasts "+humanDuration(now.Sub(t.Time))+")")
		grace := int64(defaultGracePeriod)
		switch {
		case p.DeletionGracePeriodSeconds != nil:
			grace = *p.DeletionGracePeriodSeconds
		case p.Spec.TerminationGracePeriodSeconds != nil:
			grace = *p.Spec.TerminationGracePeriodSeconds
		}
		d.field(0, "Termination Grace Period", fmt.Sprintf("%ds", grace))
	} else {
		d.field(0, "Status", orNone(string(p.Status.Phase)))
	}
	if p.Status.Reason != "" {
		d.field(0, "Reason", p.Status.Reason)
	}
	if p.Status.Message != "" {
		d.field(0, "Message", oneLine(p.Status.Message))
	}
	d.field(0, "IP", orNone(p.Status.PodIP))
	ips := p.Status.PodIPs
	if len(ips) == 0 && p.Status.PodIP != "" {
		ips = []corev1.PodIP{{IP: p.Status.PodIP}}
	}
	if len(ips) == 0 {
		d.field(0, "IPs", "<none>")
	} else {
		d.line(0, "IPs:")
		for _, ip := range ips {
			d.field(1, "IP", ip.IP)
		}
	}
	if c := controllerOf(&p.ObjectMeta); c != "" {
		d.field(0, "Controlled By", c)
	}
	d.field(0, "Commit", shortSHA(v.Commit))
	resolve := podFieldResolver(p)
	if len(p.Spec.InitContainers) > 0 {
		describeContainers(d, "Init Containers", p.Spec.InitContainers, p.Status.InitContainerStatuses, false, resolve, now)
	}
	describeContainers(d, "Containers", p.Spec.Containers, p.Status.ContainerStatuses, false, resolve, now)
	if len(p.Status.Conditions) > 0 { // kubectl leaves the section out
		var conds [][]string
		for _, c := range p.Status.Conditions {
			conds = append(conds, []string{string(c.Type), string(c.Status)})
		}
		d.table(0, "Conditions", []string{"Type", "Status"}, conds)
	}
	describeVolumes(d, p.Spec.Volumes, false)
	if len(p.Spec.ImagePullSecrets) > 0 {
		var names []string
		for _, s := range p.Spec.ImagePullSecrets {
			names = append(names, s.Name)
		}
		d.field(0, "Image Pull Secrets", strings.Join(names, ", "))
	}
	d.list(0, "Node-Selectors", pairs(p.Spec.NodeSelector, "="))
	d.table(0, "Events", []string{"Type", "Reason", "From", "Message"}, podEvents(p))
	return d.writeTo(w)
}

// controllerOf is kubectl's "Controlled By": Kind/Name of the controller.
func controllerOf(m *metav1.ObjectMeta) string {
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
		return ref.Kind + "/" + ref.Name
	}
	return ""
}

// describePodTemplate renders a workload's pod template as kubectl's
// DescribePodTemplate does.
func describePodTemplate(d *describer, t *corev1.PodTemplateSpec, now time.Time) {
	d.line(0, "Pod Template:")
	d.list(1, "Labels", pairs(t.Labels, "="))
	if len(t.Annotations) > 0 {
		d.list(1, "Annotations", pairs(t.Annotations, ": "))
	}
	if len(t.Spec.InitContainers) > 0 {
		describeContainers(d, "Init Containers", t.Spec.InitContainers, nil, true, nil, now)
	}
	describeContainers(d, "Containers", t.Spec.Containers, nil, true, nil, now)
	describeVolumes(d, t.Spec.Volumes, true)
	if len(t.Spec.ImagePullSecrets) > 0 {
		var names []string
		for _, s := range t.Spec.ImagePullSecrets {
			names = append(names, s.Name)
		}
		d.field(1, "Image Pull Secrets", strings.Join(names, ", "))
	}
	d.list(1, "Node-Selectors", pairs(t.Spec.NodeSelector, "="))
}

// describeContainers writes a "Containers:" (or "Init Containers:")
// section. In a template (tmpl) the title is indented one level and the
// names one more space, as kubectl does. resolve gives the value of a
// fieldRef variable; nil leaves it empty.
func describeContainers(d *describer, title string, cs []corev1.Container, statuses []corev1.ContainerStatus, tmpl bool, resolve func(*corev1.ObjectFieldSelector) string, now time.Time) {
	level, nameIndent := 0, ""
	if tmpl {
		level, nameIndent = 1, " "
	}
	d.line(level, "%s:", title)
	for i := range cs {
		c := &cs[i]
		st, ok := containerStatusOf(statuses, c.Name)
		d.line(1, "%s%s:", nameIndent, c.Name)
		if ok && st.ContainerID != "" {
			d.field(2, "Container ID", st.ContainerID)
		}
		d.field(2, "Image", c.Image)
		if ok && st.ImageID != "" {
			d.field(2, "Image ID", st.ImageID)
		}
		ports := containerPorts(c.Ports)
		if strings.Contains(ports, ",") {
			d.field(2, "Ports", ports)
		} else {
			d.field(2, "Port", ports)
		}
		describeCommand(d, "Command", c.Command)
		describeCommand(d, "Args", c.Args)
		if ok {
			describeState(d, "State", st.State, now)
			if st.LastTerminationState.Terminated != nil {
				describeState(d, "Last State", st.LastTerminationState, now)
			}
			d.field(2, "Ready", boolWord(st.Ready))
			d.field(2, "Restart Count", fmt.Sprint(st.RestartCount))
		}
		if c.LivenessProbe != nil {
			d.field(2, "Liveness", describeProbe(c.LivenessProbe, false))
		}
		if c.ReadinessProbe != nil {
			d.field(2, "Readiness", describeProbe(c.ReadinessProbe, true))
		}
		if c.StartupProbe != nil {
			d.field(2, "Startup", describeProbe(c.StartupProbe, false))
		}
		describeEnvFrom(d, c.EnvFrom)
		describeEnv(d, c.Env, resolve)
		describeMounts(d, c.VolumeMounts)
	}
}

func containerStatusOf(statuses []corev1.ContainerStatus, name string) (*corev1.ContainerStatus, bool) {
	for i := range statuses {
		if statuses[i].Name == name {
			return &statuses[i], true
		}
	}
	return nil, false
}

// containerPorts is kubectl's "8080/TCP,9090/UDP", "<none>" without ports.
func containerPorts(ports []corev1.ContainerPort) string {
	var out []string
	for _, p := range ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		out = append(out, fmt.Sprintf("%d/%s", p.ContainerPort, proto))
	}
	return orNone(strings.Join(out, ","))
}

// describeCommand writes each argument on its own line, splitting
// multi-line arguments, as kubectl does.
func describeCommand(d *describer, title string, args []string) {
	if len(args) == 0 {
		return
	}
	d.line(2, "%s:", title)
	for _, a := range args {
		for _, l := range strings.Split(a, "\n") {
			d.line(3, "%s", strings.ReplaceAll(l, "\t", " "))
		}
	}
}

// describeState is kubectl's describeStatus, plus the message of a
// waiting container (moor has no events to carry it).
func describeState(d *describer, title string, s corev1.ContainerState, now time.Time) {
	switch {
	case s.Running != nil:
		d.field(2, title, "Running")
		if !s.Running.StartedAt.IsZero() {
			d.field(3, "Started", stamp(s.Running.StartedAt.Time, now))
		}
	case s.Terminated != nil:
		t := s.Terminated
		d.field(2, title, "Terminated")
		if t.Reason != "" {
			d.field(3, "Reason", t.Reason)
		}
		if t.Message != "" {
			d.field(3, "Message", oneLine(t.Message))
		}
		d.field(3, "Exit Code", fmt.Sprint(t.ExitCode))
		if t.Signal > 0 {
			d.field(3, "Signal", fmt.Sprint(t.Signal))
		}
		if !t.StartedAt.IsZero() {
			d.field(3, "Started", stamp(t.StartedAt.Time, now))
		}
		if !t.FinishedAt.IsZero() {
			d.field(3, "Finished", stamp(t.FinishedAt.Time, now))
		}
	default:
		d.field(2, title, "Waiting")
		if s.Waiting != nil && s.Waiting.Reason != "" {
			d.field(3, "Reason", s.Waiting.Reason)
		}
		if s.Waiting != nil && s.Waiting.Message != "" {
			d.field(3, "Message", oneLine(s.Waiting.Message))
		}
	}
}

// describeProbe is kubectl's DescribeProbe with the node agent's defaults
// for unset fields: "http-get http://:http/ delay=0s timeout=1s period=2s
// #success=1 #failure=3". Only readiness probes honour successThreshold.
func describeProbe(p *corev1.Probe, readiness bool) string {
	or := func(v, def int32) int32 {
		if v <= 0 {
			return def
		}
		return v
	}
	success := int32(1)
	if readiness {
		success = or(p.SuccessThreshold, defaultProbeSuccessThreshold)
	}
	attrs := fmt.Sprintf("delay=%ds timeout=%ds period=%ds #success=%d #failure=%d", max(p.InitialDelaySeconds, 0),
		or(p.TimeoutSeconds, defaultProbeTimeout), or(p.PeriodSeconds, defaultProbePeriod), success,
		or(p.FailureThreshold, defaultProbeFailureThreshold))
	switch {
	case p.Exec != nil:
		return fmt.Sprintf("exec %v %s", p.Exec.Command, attrs)
	case p.HTTPGet != nil:
		g := p.HTTPGet
		u := url.URL{Scheme: strings.ToLower(string(g.Scheme)), Host: g.Host, Path: g.Path}
		if u.Scheme == "" {
			u.Scheme = "http"
		}
		if port := g.Port.String(); port != "" && port != "0" {
			u.Host = net.JoinHostPort(g.Host, port)
		}
		return fmt.Sprintf("http-get %s %s", u.String(), attrs)
	case p.TCPSocket != nil:
		return fmt.Sprintf("tcp-socket %s:%s %s", p.TCPSocket.Host, p.TCPSocket.Port.String(), attrs)
	case p.GRPC != nil:
		target := fmt.Sprintf("<pod>:%d", p.GRPC.Port)
		if p.GRPC.Service != nil && *p.GRPC.Service != "" {
			target += " " + *p.GRPC.Service
		}
		return "grpc " + target + " " + attrs
	}
	return "unknown " + attrs
}

// describeEnvFrom is kubectl's "Environment Variables from:" section.
func describeEnvFrom(d *describer, from []corev1.EnvFromSource) {
	if len(from) == 0 {
		return
	}
	d.line(2, "Environment Variables from:")
	for _, e := range from {
		name, source, optional := "", "", false
		switch {
		case e.SecretRef != nil:
			name, source, optional = e.SecretRef.Name, "Secret", ptrTrue(e.SecretRef.Optional)
		case e.ConfigMapRef != nil:
			name, source, optional = e.ConfigMapRef.Name, "ConfigMap", ptrTrue(e.ConfigMapRef.Optional)
		}
		if e.Prefix != "" {
			source += " with prefix '" + e.Prefix + "'"
		}
		d.line(3, "%s\t%s\tOptional: %t", name, source, optional)
	}
}

// describeEnv is kubectl's "Environment:" section. A variable with a
// valueFrom prints the reference only, whatever its value field holds.
func describeEnv(d *describer, env []corev1.EnvVar, resolve func(*corev1.ObjectFieldSelector) string) {
	if len(env) == 0 {
		d.field(2, "Environment", "<none>")
		return
	}
	d.line(2, "Environment:")
	for _, e := range env {
		vf := e.ValueFrom
		switch {
		case vf == nil:
			for i, l := range strings.Split(e.Value, "\n") {
				l = strings.ReplaceAll(l, "\t", " ")
				if i == 0 {
					d.field(3, e.Name, l)
				} else {
					d.line(3, "\t%s", l)
				}
			}
		case vf.SecretKeyRef != nil:
			r := vf.SecretKeyRef
			d.line(3, "%s:\t<set to the key '%s' in secret '%s'>\tOptional: %t", e.Name, r.Key, r.Name, ptrTrue(r.Optional))
		case vf.ConfigMapKeyRef != nil:
			r := vf.ConfigMapKeyRef
			d.line(3, "%s:\t<set to the key '%s' of config map '%s'>\tOptional: %t", e.Name, r.Key, r.Name, ptrTrue(r.Optional))
		case vf.FieldRef != nil:
			value := ""
			if resolve != nil {
				value = resolve(vf.FieldRef)
			}
			version := vf.FieldRef.APIVersion
			if version == "" {
				version = "v1"
			}
			d.line(3, "%s:\t%s (%s:%s)", e.Name, value, version, vf.FieldRef.FieldPath)
		case vf.ResourceFieldRef != nil:
			d.line(3, "%s:\t<set to the resource '%s'>", e.Name, vf.ResourceFieldRef.Resource)
		default:
			d.line(3, "%s:\t<set from an unknown source>", e.Name)
		}
	}
}

// podFieldResolver resolves the fieldRef paths moor supports against p,
// as kubectl's EnvValueRetriever does.
func podFieldResolver(p *corev1.Pod) func(*corev1.ObjectFieldSelector) string {
	return func(f *corev1.ObjectFieldSelector) string {
		switch f.FieldPath {
		case "metadata.name":
			return p.Name
		case "metadata.namespace":
			return p.Namespace
		case "spec.nodeName":
			return p.Spec.NodeName
		case "status.podIP":
			return p.Status.PodIP
		case "status.hostIP":
			return p.Status.HostIP
		}
		return ""
	}
}

func ptrTrue(b *bool) bool { return b != nil && *b }

// describeMounts is kubectl's "Mounts:" section, sorted by mount path.
func describeMounts(d *describer, mounts []corev1.VolumeMount) {
	if len(mounts) == 0 {
		d.field(2, "Mounts", "<none>")
		return
	}
	d.line(2, "Mounts:")
	sorted := slices.Clone(mounts)
	slices.SortStableFunc(sorted, func(a, b corev1.VolumeMount) int { return strings.Compare(a.MountPath, b.MountPath) })
	for _, m := range sorted {
		flags := []string{"rw"}
		if m.ReadOnly {
			flags[0] = "ro"
		}
		if m.SubPath != "" {
			flags = append(flags, fmt.Sprintf("path=%q", m.SubPath))
		}
		d.line(3, "%s from %s (%s)", m.MountPath, m.Name, strings.Join(flags, ","))
	}
}

// describeVolumes is kubectl's "Volumes:" section. moor mounts secret
// volumes only; anything else would be a view newer than this CLI.
func describeVolumes(d *describer, vols []corev1.Volume, tmpl bool) {
	level, nameIndent := 0, ""
	if tmpl {
		level, nameIndent = 1, " "
	}
	if len(vols) == 0 {
		d.field(level, "Volumes", "<none>")
		return
	}
	d.line(level, "Volumes:")
	for _, v := range vols {
		d.line(1, "%s%s:", nameIndent, v.Name)
		s := v.Secret
		if s == nil {
			d.field(2, "Type", "<unknown>")
			continue
		}
		d.field(2, "Type", "Secret (a volume populated by a Secret)")
		d.field(2, "SecretName", s.SecretName)
		d.field(2, "Optional", fmt.Sprint(ptrTrue(s.Optional)))
	}
}

// podEvents stands in for kubectl's Events: moor keeps no event history,
// so it lists what the pod's last status says is wrong, scheduling first,
// then each container (init containers first).
func podEvents(p *corev1.Pod) [][]string {
	var rows [][]string
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			rows = append(rows, []string{"Warning", "FailedScheduling", "planner", orNone(oneLine(c.Message))})
		}
	}
	from := "node/" + p.Spec.NodeName
	byName := map[string]*corev1.Container{}
	for i := range p.Spec.Containers {
		byName[p.Spec.Containers[i].Name] = &p.Spec.Containers[i]
	}
	statuses := slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses)
	for i := range statuses {
		s := &statuses[i]
		switch {
		case s.State.Waiting != nil && !startingReason(s.State.Waiting.Reason):
			msg := "container " + s.Name + " is waiting"
			if t := s.LastTerminationState.Terminated; t != nil {
				msg += fmt.Sprintf("; it last exited with code %d", t.ExitCode)
			}
			if m := s.State.Waiting.Message; m != "" {
				msg = "container " + s.Name + ": " + oneLine(m)
			}
			rows = append(rows, []string{"Warning", s.State.Waiting.Reason, from, msg})
		case s.State.Terminated != nil && s.State.Terminated.ExitCode != 0:
			t := s.State.Terminated
			rows = append(rows, []string{"Warning", orNone(t.Reason), from, fmt.Sprintf("container %s exited with code %d", s.Name, t.ExitCode)})
		case s.State.Running != nil && s.Started != nil && !*s.Started:
			rows = append(rows, []string{"Normal", "Starting", from, "container " + s.Name + " runs; its startup probe has not passed yet"})
		case s.State.Running != nil && !s.Ready && byName[s.Name] != nil && byName[s.Name].ReadinessProbe != nil:
			rows = append(rows, []string{"Warning", "Unhealthy", from, "container " + s.Name + " runs but its readiness probe is not passing"})
		}
	}
	return rows
}

// startingReason is a waiting reason that is a normal step of a start,
// not worth an event.
func startingReason(reason string) bool {
	switch reason {
	case "", "ContainerCreating", "PodInitializing":
		return true
	}
	return false
}
