package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/moor-dev/moor/api"
	"github.com/moor-dev/moor/reconciler/planner"
	"github.com/moor-dev/moor/reconciler/store"
)

// Join registers a node and signs its certificate. The node keeps its
// name across re-joins; its labels are updated.
func (c *Controller) Join(ctx context.Context, req api.JoinRequest) (api.JoinResponse, error) {
	if !api.SecretEqual(req.Secret, c.cfg.Signer.Token().Secret) {
		return api.JoinResponse{}, fmt.Errorf("join: the token's secret is wrong; use the token from the server's data dir: %w", errdefs.ErrPermissionDenied)
	}
	if msgs := validation.IsDNS1123Label(req.Node); len(msgs) > 0 {
		return api.JoinResponse{}, fmt.Errorf("join: node name %q: %s: %w", req.Node, strings.Join(msgs, "; "), errdefs.ErrInvalidArgument)
	}
	cert, err := c.cfg.Signer.SignNode([]byte(req.CSR), req.Node)
	if err != nil {
		return api.JoinResponse{}, fmt.Errorf("join: %w", errors.Join(errdefs.ErrInvalidArgument, err))
	}
	now := c.cfg.Now().UTC()
	rec, err := c.cfg.Store.GetNode(ctx, req.Node)
	if err != nil && !errdefs.IsNotFound(err) {
		return api.JoinResponse{}, err
	}
	if errdefs.IsNotFound(err) {
		rec = store.NodeRecord{Name: req.Node, JoinedAt: now}
	}
	rec.Labels, rec.LastSeen = req.Labels, now
	if req.Address.IsValid() {
		rec.Address = req.Address
	}
	if err := c.cfg.Store.PutNode(ctx, rec); err != nil {
		return api.JoinResponse{}, err
	}
	c.log.Info("node joined", "node", req.Node)
	if _, err := c.replan(ctx); err != nil {
		return api.JoinResponse{}, err
	}
	return api.JoinResponse{Certificate: string(cert), CA: string(c.cfg.Signer.CAPEM())}, nil
}

// ReportStatus stores a node's report and marks the node as seen. The
// transport has already checked that the report comes from that node.
func (c *Controller) ReportStatus(ctx context.Context, s api.NodeStatus) error {
	rec, err := c.cfg.Store.GetNode(ctx, s.Node)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("node %q has not joined: %w", s.Node, errdefs.ErrNotFound)
		}
		return err
	}
	wasReady := c.nodeReady(rec, c.cfg.Now())
	moved := s.NodeIP.IsValid() && s.NodeIP != rec.Address
	rec.LastSeen, rec.Commit, rec.DesiredDigest = c.cfg.Now().UTC(), s.Commit, s.DesiredDigest
	if moved {
		rec.Address = s.NodeIP
	}
	if err := c.cfg.Store.PutNode(ctx, rec); err != nil {
		return err
	}
	if err := c.cfg.Store.PutNodeStatus(ctx, s); err != nil {
		return err
	}
	if err := c.noteReport(ctx, s); err != nil {
		return err
	}
	sig := reportSignature(s.Pods)
	c.mu.Lock()
	podsChanged := c.reports[s.Node] != sig
	c.reports[s.Node] = sig
	c.mu.Unlock()
	secretsChanged := c.secretReportChanged(s) // secrets.go
	if !wasReady || moved || podsChanged || secretsChanged {
		_, err := c.replan(ctx)
		return err
	}
	return nil
}

// reportSignature sums up what plans take from a node's report: which
// pod incarnations run in which phase, with which address and readiness
// (Service endpoints, rollouts) and how many restarts (OnFailure Jobs
// count them against their backoff limit). A report that changes it is
// planned again.
func reportSignature(pods []api.PodStatus) string {
	lines := make([]string, 0, len(pods))
	for i := range pods {
		p := &pods[i]
		ready := p.Status.Phase == corev1.PodRunning
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady {
				ready = cond.Status == corev1.ConditionTrue
			}
		}
		var restarts int32
		for _, cs := range p.Status.ContainerStatuses {
			ready = ready && cs.Ready
			restarts += cs.RestartCount
		}
		lines = append(lines, fmt.Sprintf("%s/%s/%s/%s/%s/%t/%d", p.Namespace, p.Name, p.UID, p.Status.PodIP, p.Status.Phase, ready, restarts))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// view re-runs the planner with the latest reported status; placement is
// sticky, so it matches what was published.
func (c *Controller) view(ctx context.Context) (*planner.Output, error) {
	in, err := c.input(ctx)
	if err != nil {
		return nil, err
	}
	if in.Objects == nil {
		return &planner.Output{}, nil
	}
	return planner.Plan(in), nil
}

// Pods lists every planned pod with its reported status.
func (c *Controller) Pods(ctx context.Context) ([]api.PodView, error) {
	v, err := c.view(ctx)
	if err != nil {
		return nil, err
	}
	return v.Pods, nil
}

// Deployments lists every Deployment with its computed status.
func (c *Controller) Deployments(ctx context.Context) ([]api.DeploymentView, error) {
	v, err := c.view(ctx)
	if err != nil {
		return nil, err
	}
	return v.Deployments, nil
}

// Services lists every Service with its allocations and endpoints.
func (c *Controller) Services(ctx context.Context) ([]api.ServiceView, error) {
	v, err := c.view(ctx)
	if err != nil {
		return nil, err
	}
	if v.Services == nil {
		return []api.ServiceView{}, nil
	}
	return v.Services, nil
}

// Nodes lists the registered nodes.
func (c *Controller) Nodes(ctx context.Context) ([]api.NodeView, error) {
	recs, err := c.cfg.Store.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	now := c.cfg.Now()
	out := make([]api.NodeView, 0, len(recs))
	for _, r := range recs {
		v := api.NodeView{Name: r.Name, Labels: r.Labels, JoinedAt: r.JoinedAt, LastSeen: r.LastSeen,
			Commit: r.Commit, Ready: c.nodeReady(r, now)}
		v.Address = r.Address
		if last != nil {
			if d := last.Nodes[r.Name]; d != nil {
				v.Pods = len(d.Pods)
			}
			v.PodCIDR = last.Allocations.PodCIDRs[r.Name]
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Commits lists the commits seen, newest first.
func (c *Controller) Commits(ctx context.Context) ([]api.CommitView, error) {
	recs, err := c.cfg.Store.ListCommits(ctx, 100)
	if err != nil {
		return nil, err
	}
	deployed, err := c.cfg.Store.Deployed(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.CommitView, 0, len(recs))
	for _, r := range recs {
		progress, err := c.cfg.Store.ListNodeProgress(ctx, r.SHA)
		if err != nil {
			return nil, err
		}
		out = append(out, commitView(r, deployed, progress))
	}
	return out, nil
}
