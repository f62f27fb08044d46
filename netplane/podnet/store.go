package podnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
)

// stateFileName is the IPAM state inside Config.StateDir.
const stateFileName = "ipam.json"

// stateVersion is the layout version of ipam.json.
const stateVersion = 1

// fileState is ipam.json: the pod CIDR it was made for, the round-robin
// cursor and every pod holding an address.
type fileState struct {
	Version int                  `json:"version"`
	PodCIDR netip.Prefix         `json:"podCIDR"`
	Last    netip.Addr           `json:"last,omitzero"`
	Pods    map[string]podRecord `json:"pods"`
}

// podRecord is what Setup created for one pod; it is written before the
// kernel objects are created, so a crash leaves a record Teardown can clean.
type podRecord struct {
	IP       netip.Addr `json:"ip"`
	NetNS    string     `json:"netns"`
	HostVeth string     `json:"hostVeth"`
}

// loadState reads dir/ipam.json into an allocator for podCIDR plus the pod
// records. A missing file is an empty state.
func loadState(dir string, podCIDR netip.Prefix) (*allocator, map[string]podRecord, error) {
	alloc, err := newAllocator(podCIDR)
	if err != nil {
		return nil, nil, err
	}
	recs := map[string]podRecord{}
	path := filepath.Join(dir, stateFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return alloc, recs, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read IPAM state: %w", err)
	}
	var st fileState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, nil, fmt.Errorf("parse IPAM state %s: %w (move the file away to start over; running pods lose their addresses)", path, err)
	}
	if st.Version != stateVersion {
		return nil, nil, fmt.Errorf("IPAM state %s has version %d, this agent understands %d", path, st.Version, stateVersion)
	}
	if st.PodCIDR.Masked() != podCIDR.Masked() {
		return nil, nil, fmt.Errorf("IPAM state %s is for pod CIDR %s but this node now has %s: tear down the node's pods and remove the file",
			path, st.PodCIDR, podCIDR)
	}
	for id, r := range st.Pods {
		if !podCIDR.Contains(r.IP) || alloc.reserved(r.IP) {
			return nil, nil, fmt.Errorf("IPAM state %s: pod %q holds %s, which is not a pod address of %s", path, id, r.IP, podCIDR)
		}
		if other, dup := alloc.byIP[r.IP]; dup {
			return nil, nil, fmt.Errorf("IPAM state %s: pods %q and %q both hold %s", path, other, id, r.IP)
		}
		alloc.assign(id, r.IP)
		recs[id] = r
	}
	if podCIDR.Contains(st.Last) {
		alloc.last = st.Last
	}
	return alloc, recs, nil
}

// saveState writes dir/ipam.json atomically (temp file, fsync, rename).
func saveState(dir string, alloc *allocator, recs map[string]podRecord) error {
	st := fileState{Version: stateVersion, PodCIDR: alloc.prefix, Last: alloc.last, Pods: recs}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode IPAM state: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create IPAM state dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, stateFileName+".tmp-*")
	if err != nil {
		return fmt.Errorf("write IPAM state: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write IPAM state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write IPAM state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write IPAM state: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, stateFileName)); err != nil {
		return fmt.Errorf("write IPAM state: %w", err)
	}
	return nil
}
