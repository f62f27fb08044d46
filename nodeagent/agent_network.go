package nodeagent

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/moor-dev/moor/api"
)

// networkResync is how often the network of an unchanged document is
// synced again, which repairs routes and rules changed from outside.
const networkResync = 30 * time.Second

// syncNetwork applies the network and service table of the applied
// document when it changed or is due for a resync. A failure is logged
// (once per distinct error) and retried at the next reconcile; pods keep
// being reconciled meanwhile, since blocking them on the network would
// leave a node with a broken proxy unable to stop anything.
func (a *Agent) syncNetwork(ctx context.Context) {
	if a.net == nil {
		return
	}
	a.mu.Lock()
	d, digest := a.desired, a.st.Digest
	due := digest != a.netDigest || a.now().Sub(a.netSynced) >= networkResync
	a.mu.Unlock()
	if d == nil || !due {
		return
	}
	err := a.net.Sync(ctx, d.Network, d.Services)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil && err.Error() != a.netErr {
			a.log.Error("sync pod network and services; will retry", "digest", digest, "err", err)
		}
		a.netErr = err.Error()
		return
	}
	if a.netErr != "" || digest != a.netDigest {
		a.log.Info("pod network and services synced", "digest", digest, "services", len(d.Services))
	}
	a.netDigest, a.netSynced, a.netErr = digest, a.now(), ""
}

// attached lists the pods holding a network attachment (nil on error or in
// host-network mode).
func (a *Agent) attached(ctx context.Context) []string {
	if a.net == nil {
		return nil
	}
	uids, err := a.net.Attached(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Error("list pod network attachments", "err", err)
		}
		return nil
	}
	return uids
}

// unusedAttachmentsLocked returns the attached pods that are not desired,
// have no container left and no action running: their namespace and
// address can go.
func (a *Agent) unusedAttachmentsLocked(attached []string, pods []api.Pod, actual []ContainerInfo) []string {
	if len(attached) == 0 {
		return nil
	}
	busy := map[string]bool{}
	for i := range pods {
		busy[pods[i].UID] = true
	}
	for _, c := range actual {
		busy[c.Labels[LabelPodUID]] = true
	}
	var out []string
	for _, uid := range attached {
		if !busy[uid] && a.inflightPods[uid] == 0 {
			out = append(out, uid)
		}
	}
	return out
}

// detach tears down the attachments of pods that are gone and removes
// their files.
func (a *Agent) detach(ctx context.Context, uids []string) {
	for _, uid := range uids {
		if err := a.net.Detach(ctx, uid); err != nil {
			if ctx.Err() == nil {
				a.log.Error("tear down pod network; will retry", "pod_uid", uid, "err", err)
			}
			continue
		}
		// Secret volumes are tmpfs mounts: unmount them before removing.
		if v := a.secretVolumes(); v != nil {
			if _, err := v.collect([]string{uid}, func(string) bool { return false }); err != nil {
				a.log.Warn("remove secret volumes", "pod_uid", uid, "err", err)
			}
		}
		if err := os.RemoveAll(filepath.Join(a.cfg.DataDir, "pods", uid)); err != nil {
			a.log.Warn("remove pod files", "pod_uid", uid, "err", err)
		}
		a.log.Info("pod network torn down", "pod_uid", uid)
	}
}

// services is the service table of the applied document.
func (a *Agent) services() []api.Service {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.desired == nil {
		return nil
	}
	return a.desired.Services
}

// recordPodIP remembers a pod's address for status; it survives restarts
// in state.json.
func (a *Agent) recordPodIP(uid string, ip netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rec, ok := a.st.Pods[uid]; ok && rec.IP != ip {
		rec.IP = ip
		a.st.Pods[uid] = rec
	}
}
