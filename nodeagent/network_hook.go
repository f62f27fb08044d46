package nodeagent

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/moor-dev/moor/api"
)

// podAttacher is the part of Network the network hook needs.
type podAttacher interface {
	Attach(ctx context.Context, pod *api.Pod) (Attachment, error)
}

// networkHook puts each container into its pod's network namespace: it
// attaches the pod (once per pod: Attach returns the existing attachment
// for later containers and restarts), writes the pod's resolv.conf and
// hosts under podDir/<uid>/ and mounts them, and sets the host name to the
// pod name. The agent records the address for status (recordIP) and
// detaches pods whose containers are all gone (Agent.collectNetworks).
type networkHook struct {
	net      podAttacher
	podDir   string
	recordIP func(uid string, ip netip.Addr)
}

var _ prestartHook = (*networkHook)(nil)

func (h *networkHook) Name() string { return "network" }

func (h *networkHook) Prestart(ctx context.Context, req *prestartRequest, _ *prestartResponse) error {
	p := req.Pod
	att, err := h.net.Attach(ctx, p)
	if err != nil {
		return &waitingError{Reason: reasonContainerCreating, Err: fmt.Errorf("set up the pod network: %w", err)}
	}
	h.recordIP(p.UID, att.IP)
	dir := filepath.Join(h.podDir, p.UID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &waitingError{Reason: reasonCreateContainerError, Err: fmt.Errorf("pod files: %w", err)}
	}
	files := []struct {
		name, dest string
		content    []byte
	}{
		{"resolv.conf", "/etc/resolv.conf", att.ResolvConf},
		{"hosts", "/etc/hosts", hostsFile(p, att.IP)},
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := writeIfChanged(path, f.content); err != nil {
			return &waitingError{Reason: reasonCreateContainerError, Err: fmt.Errorf("pod files: %w", err)}
		}
		req.Spec.Mounts = append(req.Spec.Mounts, Mount{Source: path, Destination: f.dest, ReadOnly: true})
	}
	req.Spec.NetNSPath = att.NetNSPath
	req.Spec.Hostname = podHostname(p)
	return nil
}

// hostsFile is the pod's /etc/hosts: loopback and its own name.
func hostsFile(p *api.Pod, ip netip.Addr) []byte {
	s := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if ip.IsValid() {
		s += ip.String() + "\t" + podHostname(p) + "\n"
	}
	return []byte(s)
}

// podHostname is the pod name cut to a DNS label, as Kubernetes does.
func podHostname(p *api.Pod) string {
	h := p.Name
	if p.Spec.Hostname != "" {
		h = p.Spec.Hostname
	}
	if len(h) > 63 {
		h = h[:63]
	}
	return h
}

// writeIfChanged writes b to path unless it already holds b. Files are
// bind-mounted into running containers, so they are rewritten in place
// (a rename would leave the containers on the old file).
func writeIfChanged(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(b) {
		return nil
	}
	return os.WriteFile(path, b, 0o644)
}
