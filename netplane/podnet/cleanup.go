package podnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// CleanupConfig names what Cleanup removes.
type CleanupConfig struct {
	// Bridge is the node bridge; default "moor0".
	Bridge string
	// StateDir holds ipam.json, which lists the pods' namespaces and veths.
	StateDir string
	// HostNetNS is the node's network namespace: "" = the current one.
	HostNetNS string
	// Log defaults to discarding.
	Log *slog.Logger
}

// Validate reports the first mistake, naming the field.
func (c CleanupConfig) Validate() error {
	switch {
	case len(c.Bridge) > 15:
		return fmt.Errorf("podnet: Bridge %q: must be 1 to 15 characters", c.Bridge)
	case c.StateDir == "":
		return errors.New("podnet: StateDir is required (it lists the pod namespaces to remove)")
	case c.HostNetNS != "" && !filepath.IsAbs(c.HostNetNS):
		return fmt.Errorf("podnet: HostNetNS %q: must be an absolute path", c.HostNetNS)
	}
	return nil
}

// Cleanup removes everything podnet installs on a node, whichever process
// installed it: the veths and network namespaces of the pods listed in
// StateDir/ipam.json, the bridge (and any veth still attached to it), every
// route with RouteProtocol in the main table, the chains MOOR-PODNET-EGRESS
// and MOOR-PODNET-FORWARD with the jumps to them, and ipam.json. Pods still
// running lose their network. The sysctls EnsureNode turned on (IP
// forwarding, bridge netfilter) stay on: other software may need them.
//
// Every step runs even when an earlier one failed; the errors are joined.
// Cleanup is idempotent and succeeds when nothing is installed.
func Cleanup(ctx context.Context, cfg CleanupConfig) error {
	if cfg.Bridge == "" {
		cfg.Bridge = "moor0"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	recs, err := readRecords(cfg.StateDir)
	errs := []error{err}
	h, closeH, err := handleAt(cfg.HostNetNS)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	defer closeH()
	for _, id := range sortedKeys(recs) {
		if err := removePod(h, recs[id]); err != nil {
			errs = append(errs, fmt.Errorf("pod %s: %w", id, err))
		}
	}
	errs = append(errs, removeBridge(h, cfg.Bridge), removeRoutes(h),
		iptables{netns: cfg.HostNetNS}.remove(ctx))
	if err := os.Remove(filepath.Join(cfg.StateDir, stateFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove IPAM state: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	cfg.Log.Info("pod network removed", "bridge", cfg.Bridge, "pods", len(recs))
	return nil
}

// Cleanup removes everything the node's pod network installed (see the
// package-level Cleanup) and forgets every address. The Network stays
// usable: EnsureNode and Setup build it again.
func (n *Network) Cleanup(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	err := Cleanup(ctx, CleanupConfig{Bridge: n.cfg.Bridge, StateDir: n.cfg.StateDir, HostNetNS: n.cfg.HostNetNS, Log: n.log})
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	// Pods only this process knows (never saved) are removed too.
	if h, closeH, herr := n.nodeHandle(); herr == nil {
		for _, id := range sortedKeys(n.recs) {
			if err := removePod(h, n.recs[id]); err != nil {
				errs = append(errs, fmt.Errorf("pod %s: %w", id, err))
			}
		}
		closeH()
	}
	alloc, aerr := newAllocator(n.cfg.PodCIDR)
	if aerr != nil {
		return errors.Join(append(errs, aerr)...)
	}
	n.alloc, n.recs = alloc, map[string]podRecord{}
	return errors.Join(errs...)
}

// readRecords returns the pods listed in dir/ipam.json, whatever pod CIDR
// it was made for; a missing file lists none.
func readRecords(dir string) (map[string]podRecord, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read IPAM state: %w", err)
	}
	var st fileState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parse IPAM state %s (its pods' namespaces cannot be found; it is removed anyway): %w",
			filepath.Join(dir, stateFileName), err)
	}
	return st.Pods, nil
}

func sortedKeys(m map[string]podRecord) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// removePod deletes the pod's host veth (and so its peer) and unmounts
// and removes its namespace; missing ones are fine.
func removePod(h *netlink.Handle, rec podRecord) error {
	var nf netlink.LinkNotFoundError
	if link, err := h.LinkByName(rec.HostVeth); err == nil {
		if err := h.LinkDel(link); err != nil {
			return fmt.Errorf("delete veth %s: %w", rec.HostVeth, err)
		}
	} else if !errors.As(err, &nf) {
		return fmt.Errorf("find veth %s: %w", rec.HostVeth, err)
	}
	return deleteNetNS(rec.NetNS)
}

// removeBridge deletes the veths still attached to the bridge (pods the
// state file does not know), then the bridge.
func removeBridge(h *netlink.Handle, name string) error {
	var nf netlink.LinkNotFoundError
	br, err := h.LinkByName(name)
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find bridge %s: %w", name, err)
	}
	if br.Type() != "bridge" {
		return fmt.Errorf("%s is a %s, not a bridge podnet made: left alone", name, br.Type())
	}
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	var errs []error
	for _, l := range links {
		if _, veth := l.(*netlink.Veth); veth && l.Attrs().MasterIndex == br.Attrs().Index {
			if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("delete veth %s on bridge %s: %w", l.Attrs().Name, name, err))
			}
		}
	}
	if err := h.LinkDel(br); err != nil && !errors.Is(err, unix.ENODEV) {
		errs = append(errs, fmt.Errorf("delete bridge %s: %w", name, err))
	}
	return errors.Join(errs...)
}

// removeRoutes deletes every route with RouteProtocol in the main table.
func removeRoutes(h *netlink.Handle) error {
	filter := &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("list moor routes: %w", err)
	}
	var errs []error
	for _, r := range routes {
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route to %s: %w", r.Dst, err))
		}
	}
	return errors.Join(errs...)
}
