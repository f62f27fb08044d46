package manifest

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxAffinityTimeout is Kubernetes' limit on
// sessionAffinityConfig.clientIP.timeoutSeconds: one day.
const maxAffinityTimeout = 86400

// RequestedClusterIP returns what a Service asks for: spec.clusterIP, or
// spec.clusterIPs[0] when only that is set; "" asks for an allocation and
// corev1.ClusterIPNone for a headless Service.
func RequestedClusterIP(spec *corev1.ServiceSpec) string {
	if spec.ClusterIP == "" && len(spec.ClusterIPs) > 0 {
		return spec.ClusterIPs[0]
	}
	return spec.ClusterIP
}

// HasNodePorts reports whether a Service of this type gets node ports.
func HasNodePorts(t corev1.ServiceType) bool {
	return t == corev1.ServiceTypeNodePort || t == corev1.ServiceTypeLoadBalancer
}

func validateService(svc *corev1.Service, opts *Options) field.ErrorList {
	errs := validateMeta(&svc.ObjectMeta, validation.IsDNS1035Label, true, field.NewPath("metadata"))
	spec := field.NewPath("spec")
	s := &svc.Spec
	switch s.Type {
	case "", corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
	case corev1.ServiceTypeExternalName:
		errs = append(errs, field.Invalid(spec.Child("type"), s.Type, "ExternalName Services are not supported by moor yet; use ClusterIP, NodePort or LoadBalancer"))
	default:
		errs = append(errs, field.NotSupported(spec.Child("type"), s.Type, []corev1.ServiceType{
			corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer}))
	}
	errs = append(errs, metavalidation.ValidateLabels(s.Selector, spec.Child("selector"))...)
	errs = append(errs, validateClusterIP(s, opts, spec)...)
	errs = append(errs, validateServicePorts(s, opts, spec)...)
	errs = append(errs, validateAffinity(s, spec)...)
	return append(errs, validateFamilies(s, spec)...)
}

func validateClusterIP(s *corev1.ServiceSpec, opts *Options, spec *field.Path) field.ErrorList {
	var errs field.ErrorList
	path := spec.Child("clusterIP")
	switch {
	case len(s.ClusterIPs) > 1:
		errs = append(errs, field.TooMany(spec.Child("clusterIPs"), len(s.ClusterIPs), 1))
	case len(s.ClusterIPs) == 1 && s.ClusterIP != "" && s.ClusterIPs[0] != s.ClusterIP:
		errs = append(errs, field.Invalid(spec.Child("clusterIPs").Index(0), s.ClusterIPs[0],
			fmt.Sprintf("must agree with spec.clusterIP (%s); set one of them or both to the same address", s.ClusterIP)))
	case s.ClusterIP == "" && len(s.ClusterIPs) == 1:
		path = spec.Child("clusterIPs").Index(0)
	}
	ip := RequestedClusterIP(s)
	switch ip {
	case "":
		return errs
	case corev1.ClusterIPNone:
		if HasNodePorts(s.Type) {
			errs = append(errs, field.Invalid(path, ip, "may not be None for type "+string(s.Type)+": a headless Service has no virtual IP to forward node ports to"))
		}
		return errs
	}
	addr, err := netip.ParseAddr(ip)
	switch {
	case err != nil || addr.Zone() != "":
		return append(errs, field.Invalid(path, ip, "must be an IPv4 address in the service CIDR, None for a headless Service, or empty to have one allocated"))
	case !addr.Is4():
		return append(errs, field.Invalid(path, ip, "moor supports IPv4 only"))
	case !opts.ServiceCIDR.Contains(addr):
		return append(errs, field.Invalid(path, ip, fmt.Sprintf("is not in the service CIDR %s; pick an address inside it or leave spec.clusterIP empty to have one allocated", opts.ServiceCIDR)))
	case addr == opts.ServiceCIDR.Masked().Addr() || addr == lastAddr(opts.ServiceCIDR):
		return append(errs, field.Invalid(path, ip, fmt.Sprintf("is the network or broadcast address of the service CIDR %s; pick another", opts.ServiceCIDR)))
	}
	if what, ok := opts.ReservedClusterIPs[addr]; ok {
		errs = append(errs, field.Invalid(path, ip, "is reserved for "+what+"; pick another address or leave spec.clusterIP empty"))
	}
	return errs
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	host := len(b)*8 - p.Bits()
	for i := len(b) - 1; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func validateServicePorts(s *corev1.ServiceSpec, opts *Options, spec *field.Path) field.ErrorList {
	var errs field.ErrorList
	path := spec.Child("ports")
	if len(s.Ports) == 0 && RequestedClusterIP(s) != corev1.ClusterIPNone {
		errs = append(errs, field.Required(path, "a Service needs at least one port, unless it is headless (clusterIP: None)"))
	}
	names := sets.New[string]()
	ports := map[string]bool{}     // "port/protocol"
	nodePorts := map[string]bool{} // "nodePort/protocol"
	for i := range s.Ports {
		p := &s.Ports[i]
		pp := path.Index(i)
		switch {
		case p.Name == "" && len(s.Ports) > 1:
			errs = append(errs, field.Required(pp.Child("name"), "every port needs a name when a Service has more than one"))
		case p.Name != "":
			for _, msg := range validation.IsDNS1123Label(p.Name) {
				errs = append(errs, field.Invalid(pp.Child("name"), p.Name, msg))
			}
			if names.Has(p.Name) {
				errs = append(errs, field.Duplicate(pp.Child("name"), p.Name))
			}
			names.Insert(p.Name)
		}
		for _, msg := range validation.IsValidPortNum(int(p.Port)) {
			errs = append(errs, field.Invalid(pp.Child("port"), p.Port, msg))
		}
		proto := p.Protocol
		switch proto {
		case "":
			proto = corev1.ProtocolTCP
		case corev1.ProtocolTCP, corev1.ProtocolUDP:
		case corev1.ProtocolSCTP:
			errs = append(errs, field.Invalid(pp.Child("protocol"), proto, "SCTP is not supported by moor yet; use TCP or UDP"))
		default:
			errs = append(errs, field.NotSupported(pp.Child("protocol"), proto, []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP}))
		}
		key := fmt.Sprintf("%d/%s", p.Port, proto)
		if ports[key] {
			errs = append(errs, field.Duplicate(pp, key))
		}
		ports[key] = true
		errs = append(errs, validateTargetPort(p.TargetPort, pp.Child("targetPort"))...)
		if p.NodePort == 0 {
			continue
		}
		np := pp.Child("nodePort")
		lo, hi := opts.NodePortRange[0], opts.NodePortRange[1]
		switch {
		case !HasNodePorts(s.Type):
			errs = append(errs, field.Forbidden(np, "may only be set when spec.type is NodePort or LoadBalancer"))
		case int(p.NodePort) < lo || int(p.NodePort) > hi:
			errs = append(errs, field.Invalid(np, p.NodePort, fmt.Sprintf("is not in the node port range %d-%d; pick a port inside it or leave nodePort unset to have one allocated", lo, hi)))
		case nodePorts[fmt.Sprintf("%d/%s", p.NodePort, proto)]:
			errs = append(errs, field.Duplicate(np, p.NodePort))
		}
		nodePorts[fmt.Sprintf("%d/%s", p.NodePort, proto)] = true
	}
	return errs
}

func validateTargetPort(t intstr.IntOrString, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case t.Type == intstr.Int && t.IntVal == 0:
		// Unset: the port itself.
	case t.Type == intstr.Int:
		for _, msg := range validation.IsValidPortNum(int(t.IntVal)) {
			errs = append(errs, field.Invalid(path, t.IntVal, msg))
		}
	default:
		for _, msg := range validation.IsValidPortName(t.StrVal) {
			errs = append(errs, field.Invalid(path, t.StrVal, msg+" (a named targetPort is the name of a container port)"))
		}
	}
	return errs
}

func validateAffinity(s *corev1.ServiceSpec, spec *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch s.SessionAffinity {
	case "", corev1.ServiceAffinityNone, corev1.ServiceAffinityClientIP:
	default:
		errs = append(errs, field.NotSupported(spec.Child("sessionAffinity"), s.SessionAffinity,
			[]corev1.ServiceAffinity{corev1.ServiceAffinityNone, corev1.ServiceAffinityClientIP}))
	}
	cfg := s.SessionAffinityConfig
	if cfg == nil || cfg.ClientIP == nil {
		return errs
	}
	path := spec.Child("sessionAffinityConfig", "clientIP")
	if s.SessionAffinity != corev1.ServiceAffinityClientIP {
		return append(errs, field.Forbidden(path, "may only be set when sessionAffinity is ClientIP"))
	}
	if t := cfg.ClientIP.TimeoutSeconds; t != nil && (*t <= 0 || *t > maxAffinityTimeout) {
		errs = append(errs, field.Invalid(path.Child("timeoutSeconds"), *t, fmt.Sprintf("must be between 1 and %d (one day)", maxAffinityTimeout)))
	}
	return errs
}

func validateFamilies(s *corev1.ServiceSpec, spec *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(s.IPFamilies) > 1 {
		errs = append(errs, field.TooMany(spec.Child("ipFamilies"), len(s.IPFamilies), 1))
	}
	for i, f := range s.IPFamilies {
		if f != corev1.IPv4Protocol {
			errs = append(errs, field.Invalid(spec.Child("ipFamilies").Index(i), f, "moor supports IPv4 only"))
		}
	}
	if p := s.IPFamilyPolicy; p != nil && *p == corev1.IPFamilyPolicyRequireDualStack {
		errs = append(errs, field.Invalid(spec.Child("ipFamilyPolicy"), *p, "moor supports IPv4 only; use SingleStack"))
	} else if p != nil && *p != corev1.IPFamilyPolicySingleStack && *p != corev1.IPFamilyPolicyPreferDualStack {
		errs = append(errs, field.NotSupported(spec.Child("ipFamilyPolicy"), *p, []corev1.IPFamilyPolicy{corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack}))
	}
	for _, tp := range []struct {
		name string
		v    string
	}{{"internalTrafficPolicy", ptrString(s.InternalTrafficPolicy)}, {"externalTrafficPolicy", string(s.ExternalTrafficPolicy)}} {
		if tp.v != "" && tp.v != "Cluster" {
			errs = append(errs, field.Invalid(spec.Child(tp.name), tp.v, "only Cluster is supported by moor yet: traffic goes to endpoints on every node"))
		}
	}
	return errs
}

func ptrString[T ~string](p *T) string {
	if p == nil {
		return ""
	}
	return string(*p)
}
