package nodeagent

import (
	"context"
	"net/netip"

	"github.com/moor-dev/moor/api"
)

// Network is the node's pod network, service proxy and DNS server as the
// agent drives them. nodeagent/podnetwork implements it on the kernel
// (netplane/podnet, netplane/proxy, netplane/dns); unit tests use a fake.
// A nil Config.Network keeps pods in the host's network namespace.
type Network interface {
	// Sync applies a desired document's network: the node side (bridge,
	// DNS server) once the pod CIDR is known, host-gw routes to the peers,
	// the service table and the DNS records. The agent calls it for every
	// new document before it stops any container the document removes, so
	// a removed pod leaves the endpoints before it gets SIGTERM; and again
	// periodically, which repairs rules changed from outside.
	Sync(ctx context.Context, n *api.Network, svcs []api.Service) error
	// Attach gives the pod (keyed by UID) its network namespace and
	// address, or returns the ones it has. It fails until Sync has set up
	// the node.
	Attach(ctx context.Context, pod *api.Pod) (Attachment, error)
	// Detach releases the pod's namespace and address; an unknown pod is a
	// no-op.
	Detach(ctx context.Context, podUID string) error
	// Attached lists the UIDs of the pods holding an attachment.
	Attached(ctx context.Context) ([]string, error)
}

// Attachment is a pod's place on the pod network.
type Attachment struct {
	// NetNSPath is the pod's network namespace, shared by its containers.
	NetNSPath string
	// IP is the pod's address (status.podIP).
	IP netip.Addr
	// ResolvConf is the pod's /etc/resolv.conf.
	ResolvConf []byte
}
