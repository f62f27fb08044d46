package controller

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
)

// PodNode returns the node pod namespace/name is placed on, so that
// `moor logs` can ask that node's agent for the pod's logs
// (httpapi.PodLocator). Finished Job pods stay placed on the node they ran
// on. Errors: errdefs.ErrNotFound for a pod no plan has, and
// errdefs.ErrInvalidArgument, with the scheduler's reason, for a pod that
// waits for a node.
func (c *Controller) PodNode(ctx context.Context, namespace, name string) (string, error) {
	key := namespace + "/" + name
	placement, err := c.cfg.Store.Placement(ctx)
	if err != nil && !errdefs.IsNotFound(err) {
		return "", fmt.Errorf("find the node of pod %s: %w", key, err)
	}
	if node, ok := placement[key]; ok {
		return node, nil
	}
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	if last != nil {
		for _, p := range last.Pending {
			if p.Pod.Key() == key {
				return "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(
					"pod %q in namespace %q is not running on any node yet: %s", name, namespace, p.Reason))
			}
		}
	}
	return "", errdefs.ErrNotFound.WithMessage(fmt.Sprintf("pods %q not found in namespace %q", name, namespace))
}
