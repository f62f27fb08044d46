package manifest

import (
	"fmt"
	"net/netip"

	batchv1 "k8s.io/api/batch/v1"
)

// Defaults of Options, as in Kubernetes.
var (
	DefaultServiceCIDR   = netip.MustParsePrefix("10.96.0.0/12")
	DefaultNodePortRange = [2]int{30000, 32767}
)

// Options is the cluster configuration and state that validation needs: a
// Service's clusterIP and nodePorts must fit the cluster, and an existing
// Job's immutable fields must not change.
type Options struct {
	// ServiceCIDR is where spec.clusterIP must lie (default
	// DefaultServiceCIDR).
	ServiceCIDR netip.Prefix
	// NodePortRange is the inclusive range of spec.ports[].nodePort
	// (default DefaultNodePortRange).
	NodePortRange [2]int
	// ReservedClusterIPs are addresses of ServiceCIDR no Service may
	// claim, with what holds them ("the cluster DNS").
	ReservedClusterIPs map[netip.Addr]string
	// ExistingJobs are the Jobs that exist already, keyed
	// "namespace/name", as the server accepted them (the controller passes
	// planner.ExistingJobs of its persisted Job states). A Job of the commit
	// with the same key must keep spec.template, spec.completions,
	// spec.completionMode and spec.selector, as in Kubernetes: otherwise
	// the commit is rejected with "field is immutable" at that field.
	ExistingJobs map[string]batchv1.Job
	// AllowPlainSecrets accepts Secrets with data or stringData and passes
	// their values on to the nodes (api.SecretRef.Data). For development
	// only: the values sit in Git and on the reconciler. Without it such a
	// Secret is rejected with a message showing how to point at Vault.
	AllowPlainSecrets bool
}

// DefaultOptions returns Options with every default.
func DefaultOptions() Options {
	return Options{ServiceCIDR: DefaultServiceCIDR, NodePortRange: DefaultNodePortRange}
}

// Validate checks o and fills in defaults for zero fields.
func (o *Options) Validate() error {
	if !o.ServiceCIDR.IsValid() {
		o.ServiceCIDR = DefaultServiceCIDR
	}
	if o.NodePortRange == [2]int{} {
		o.NodePortRange = DefaultNodePortRange
	}
	if !o.ServiceCIDR.Addr().Is4() {
		return fmt.Errorf("manifest options: service CIDR %s must be IPv4; moor supports IPv4 only", o.ServiceCIDR)
	}
	if lo, hi := o.NodePortRange[0], o.NodePortRange[1]; lo < 1 || hi > 65535 || lo > hi {
		return fmt.Errorf("manifest options: node port range %d-%d must lie within 1-65535 with the first not above the last", lo, hi)
	}
	return nil
}

// LoadWithOptions is Load for a cluster configured with opts; zero fields
// of opts take their defaults.
func LoadWithOptions(files map[string][]byte, opts Options) (*Objects, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return load(files, &opts)
}
