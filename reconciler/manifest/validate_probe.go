package manifest

import (
	"net/netip"
	"net/url"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// probeFields is the allow-list of containers[].readinessProbe,
// livenessProbe and startupProbe (listed in containerFields).
var probeFields = fields{
	"exec": fields{"command": value},
	"httpGet": fields{
		"path":        value,
		"port":        value,
		"host":        value,
		"scheme":      value,
		"httpHeaders": fields{"name": value, "value": value},
	},
	"tcpSocket":           fields{"port": value, "host": value},
	"initialDelaySeconds": value,
	"periodSeconds":       value,
	"timeoutSeconds":      value,
	"successThreshold":    value,
	"failureThreshold":    value,
	"grpc":                unsupported("gRPC probes are not supported by moor yet; use exec (e.g. grpc_health_probe in the image), httpGet or tcpSocket"),
	"terminationGracePeriodSeconds": unsupported("not supported by moor: a container killed by a failed probe gets the pod's " +
		"spec.terminationGracePeriodSeconds; remove it here and set that instead"),
}

// validateProbes checks a container's readiness, liveness and startup
// probes as Kubernetes does. moor does not default fields, so 0 (unset)
// stands for the Kubernetes default, which the node agent applies
// (periodSeconds 10, timeoutSeconds 1, successThreshold 1,
// failureThreshold 3).
func validateProbes(c *corev1.Container, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	probes := []struct {
		name    string
		p       *corev1.Probe
		oneShot bool // successThreshold must be 1
	}{
		{"readinessProbe", c.ReadinessProbe, false},
		{"livenessProbe", c.LivenessProbe, true},
		{"startupProbe", c.StartupProbe, true},
	}
	for _, pr := range probes {
		if pr.p != nil {
			errs = append(errs, validateProbe(c, pr.p, pr.oneShot, path.Child(pr.name))...)
		}
	}
	return errs
}

func validateProbe(c *corev1.Container, p *corev1.Probe, oneShot bool, path *field.Path) field.ErrorList {
	errs := validateProbeHandler(c, &p.ProbeHandler, path)
	for _, n := range []struct {
		name string
		v    int32
	}{
		{"initialDelaySeconds", p.InitialDelaySeconds},
		{"periodSeconds", p.PeriodSeconds},
		{"timeoutSeconds", p.TimeoutSeconds},
	} {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(n.v), path.Child(n.name))...)
	}
	if p.SuccessThreshold < 0 {
		errs = append(errs, field.Invalid(path.Child("successThreshold"), p.SuccessThreshold,
			"must be at least 1; leave it out for the default, 1"))
	}
	if oneShot && p.SuccessThreshold > 1 {
		errs = append(errs, field.Invalid(path.Child("successThreshold"), p.SuccessThreshold,
			"must be 1 for liveness and startup probes (one success shows the container is alive or started); leave it out"))
	}
	if p.FailureThreshold < 0 {
		errs = append(errs, field.Invalid(path.Child("failureThreshold"), p.FailureThreshold,
			"must be at least 1; leave it out for the default, 3"))
	}
	return errs
}

// validateProbeHandler checks that exactly one handler is set, and it.
func validateProbeHandler(c *corev1.Container, h *corev1.ProbeHandler, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	var set []string
	if h.Exec != nil {
		set = append(set, "exec")
		if len(h.Exec.Command) == 0 {
			errs = append(errs, field.Required(path.Child("exec", "command"), "give the command to run in the container, e.g. [cat, /tmp/healthy]"))
		}
	}
	if h.HTTPGet != nil {
		set = append(set, "httpGet")
		errs = append(errs, validateHTTPGet(c, h.HTTPGet, path.Child("httpGet"))...)
	}
	if h.TCPSocket != nil {
		set = append(set, "tcpSocket")
		p := path.Child("tcpSocket")
		errs = append(errs, validateProbePort(c, h.TCPSocket.Port, p.Child("port"))...)
		errs = append(errs, validateProbeHost(h.TCPSocket.Host, p.Child("host"))...)
	}
	switch {
	case len(set) == 0 && h.GRPC != nil:
		// grpc is rejected by the allow-list, which says what to use.
	case len(set) == 0:
		errs = append(errs, field.Required(path, "set one handler: exec, httpGet or tcpSocket"))
	case len(set) > 1:
		for _, name := range set[1:] {
			errs = append(errs, field.Forbidden(path.Child(name),
				"may not specify more than 1 handler type; this probe already has "+set[0]))
		}
	}
	return errs
}

func validateHTTPGet(c *corev1.Container, g *corev1.HTTPGetAction, path *field.Path) field.ErrorList {
	errs := validateProbePort(c, g.Port, path.Child("port"))
	errs = append(errs, validateProbeHost(g.Host, path.Child("host"))...)
	if g.Path != "" {
		if u, err := url.Parse(g.Path); err != nil || u.Scheme != "" || u.Host != "" {
			errs = append(errs, field.Invalid(path.Child("path"), g.Path,
				"must be a URL path such as /healthz (set host, port and scheme in their own fields)"))
		}
	}
	switch g.Scheme {
	case "", corev1.URISchemeHTTP, corev1.URISchemeHTTPS:
	default:
		errs = append(errs, field.NotSupported(path.Child("scheme"), g.Scheme,
			[]corev1.URIScheme{corev1.URISchemeHTTP, corev1.URISchemeHTTPS}))
	}
	for i, h := range g.HTTPHeaders {
		p := path.Child("httpHeaders").Index(i).Child("name")
		if h.Name == "" {
			errs = append(errs, field.Required(p, "every header needs a name"))
			continue
		}
		for _, msg := range validation.IsHTTPHeaderName(h.Name) {
			errs = append(errs, field.Invalid(p, h.Name, msg))
		}
	}
	return errs
}

// validateProbePort checks a port number, or a port name that must name
// one of the container's ports.
func validateProbePort(c *corev1.Container, port intstr.IntOrString, path *field.Path) field.ErrorList {
	if port.Type == intstr.Int {
		var errs field.ErrorList
		for _, msg := range validation.IsValidPortNum(port.IntValue()) {
			errs = append(errs, field.Invalid(path, port.IntValue(), msg))
		}
		return errs
	}
	if port.StrVal == "" {
		return field.ErrorList{field.Required(path, "give a port number or the name of one of the container's ports")}
	}
	if msgs := validation.IsValidPortName(port.StrVal); len(msgs) > 0 {
		var errs field.ErrorList
		for _, msg := range msgs {
			errs = append(errs, field.Invalid(path, port.StrVal, msg))
		}
		return errs
	}
	var names []string
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return nil
		}
		if p.Name != "" {
			names = append(names, p.Name)
		}
	}
	msg := "names no port of this container: add it to the container's ports (name and containerPort) or give the port number"
	if len(names) > 0 {
		msg = "names no port of this container (its ports are named " + joinQuoted(names) + "); use one of them or the port number"
	}
	return field.ErrorList{field.Invalid(path, port.StrVal, msg)}
}

// validateProbeHost checks an optional host: an IP address or a DNS name.
func validateProbeHost(host string, path *field.Path) field.ErrorList {
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if msgs := validation.IsDNS1123Subdomain(host); len(msgs) > 0 {
		return field.ErrorList{field.Invalid(path, host,
			"must be an IP address or a DNS name, without scheme or port; leave it out to probe the pod's IP")}
	}
	return nil
}

// joinQuoted renders names as "a", "b".
func joinQuoted(names []string) string {
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += `"` + n + `"`
	}
	return s
}
