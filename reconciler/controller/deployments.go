package controller

import (
	"bytes"
	"context"
	"maps"

	"github.com/moor-dev/moor/reconciler/planner"
)

// Deployment rollouts: the planner takes one step of each rollout per
// plan from the readiness nodes report, and remembers each Deployment's
// revisions (planner.DeploymentState). The controller persists them after
// every plan, before any document of that plan is published, and hands
// them to the next plan, so a restarted server goes on with the rollout
// instead of replacing every pod at once.
//
// A rollout proceeds without a new commit because every report that
// changes a pod's readiness or phase, or drops a pod, changes its
// signature (reportSignature) and so replans (ReportStatus); a node
// turning ready or not replans (tickNodes); and the planner's RequeueAfter
// wakes the requeue loop when a pod has been ready for minReadySeconds or
// a Recreate rollout checks again for old pods.

// deploymentStates reads the persisted rollout states; nil when none.
func (c *Controller) deploymentStates(ctx context.Context) (map[string]planner.DeploymentState, error) {
	raw, err := c.cfg.Store.GetDeploymentStates(ctx)
	if err != nil {
		return nil, err
	}
	return decodeStates[planner.DeploymentState](raw, "deployment")
}

// putDeploymentStates persists the states a plan returned, as a whole
// map, unless they are what was last written. The caller holds planMu.
func (c *Controller) putDeploymentStates(ctx context.Context, states map[string]planner.DeploymentState) error {
	enc, err := encodeStates(states)
	if err != nil {
		return err
	}
	if sameEncoding(c.rollouts, enc) {
		return nil
	}
	if err := c.cfg.Store.PutDeploymentStates(ctx, enc); err != nil {
		c.rollouts = nil // unknown what is stored now
		return err
	}
	c.rollouts = enc
	return nil
}

// sameEncoding reports whether enc is last, the encoded states last
// written; a nil last is unknown and never the same.
func sameEncoding(last, enc map[string][]byte) bool {
	return last != nil && maps.EqualFunc(enc, last, bytes.Equal)
}
