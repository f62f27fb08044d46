package cli

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

// The dashboard's page models: pure functions of (views, now) that turn
// api views into the strings the templates lay out. Templates decide
// nothing but markup; html/template escapes every string.

// when is a point in time as pages show it: relative, with the absolute
// UTC time as a tooltip. Zero times have neither.
type when struct {
	Ago string // "5m10s ago"
	At  string // RFC 3339, UTC
}

func whenOf(t, now time.Time) when {
	if t.IsZero() {
		return when{}
	}
	return when{Ago: humanDuration(now.Sub(t)) + " ago", At: t.UTC().Format(time.RFC3339)}
}

// CSS classes of states.
const (
	classOK   = "ok"
	classWarn = "warn"
	classBad  = "bad"
)

// commitCard is a commit as the overview and the commits page show it.
type commitCard struct {
	SHA, Short, Subject, Message, Author string
	State, StateClass                    string
	Deployed                             bool
	Seen                                 when
	Converged                            string // "2/2", "-" when no node has it
	IsConverged                          bool
	PushToRunning                        string // "-" until every node runs it
	Errors                               []string
	Timeline                             []string
}

func commitCardOf(c api.CommitView, now time.Time) commitCard {
	cc := commitCard{SHA: c.SHA, Short: shortSHA(c.SHA), Subject: orNone(firstLine(c.Message)), Message: strings.TrimSpace(c.Message),
		Author: orNone(c.Author), State: c.State, Deployed: c.Deployed, Seen: whenOf(c.SeenAt, now),
		Converged: converged(c), IsConverged: c.Total > 0 && c.Converged == c.Total, PushToRunning: pushToRunning(c), Errors: c.Errors}
	switch {
	case c.State == api.CommitRejected:
		cc.StateClass = classBad
	case cc.IsConverged:
		cc.StateClass = classOK
	default:
		cc.StateClass = classWarn
	}
	for _, l := range timeline(c) {
		if l != "" {
			cc.Timeline = append(cc.Timeline, l)
		}
	}
	return cc
}

// sortedCommits orders commits newest first (by when they were seen).
func sortedCommits(commits []api.CommitView) []api.CommitView {
	cs := slices.Clone(commits)
	slices.SortStableFunc(cs, func(a, b api.CommitView) int { return b.SeenAt.Compare(a.SeenAt) })
	return cs
}

// overviewData is the overview: the deployed commit, the nodes and the
// commit each has reached, and the pods on each node.
type overviewData struct {
	Deployed *commitCard
	// Latest is the newest commit when it is not the deployed one, e.g.
	// rejected; nil otherwise.
	Latest *commitCard
	Nodes  []nodeRow
	Behind int // nodes that have not reached the deployed commit
	Groups []nodeGroup
	Pods   int
}

// nodeRow is one node of the nodes × commit table.
type nodeRow struct {
	Name, Anchor string
	Ready        bool
	LastSeen     when
	Commit       string // full SHA, "" when none
	CommitShort  string
	Behind       bool
	Pods         int
	Address      string
	Labels       string
}

// nodeGroup is one node's pods in the "what runs where" grid.
type nodeGroup struct {
	Node, Anchor string // Node is "" for pods not placed on any node
	Known, Ready bool   // the node is registered / Ready
	Pods         []podRow
}

// podRow is one pod in the grid.
type podRow struct {
	Namespace, Name, Href string
	Status, StatusClass   string
	Ready                 string // "1/2"
	Restarts              string
	IP                    string
	CommitShort           string
	Behind                bool
}

func overviewPage(commits []api.CommitView, nodes []api.NodeView, pods []api.PodView, now time.Time) overviewData {
	var d overviewData
	deployed := ""
	cs := sortedCommits(commits)
	for _, c := range cs {
		if c.Deployed {
			cc := commitCardOf(c, now)
			d.Deployed, deployed = &cc, c.SHA
			break
		}
	}
	if len(cs) > 0 && cs[0].SHA != deployed {
		cc := commitCardOf(cs[0], now)
		d.Latest = &cc
	}

	ns := slices.Clone(nodes)
	slices.SortFunc(ns, func(a, b api.NodeView) int { return strings.Compare(a.Name, b.Name) })
	groups := map[string]*nodeGroup{}
	for _, n := range ns {
		addr := ""
		if n.Address.IsValid() {
			addr = n.Address.String()
		}
		behind := deployed != "" && n.Commit != deployed
		if behind {
			d.Behind++
		}
		d.Nodes = append(d.Nodes, nodeRow{Name: n.Name, Anchor: nodeAnchor(n.Name), Ready: n.Ready, LastSeen: whenOf(n.LastSeen, now),
			Commit: n.Commit, CommitShort: shortSHA(n.Commit), Behind: behind, Pods: n.Pods, Address: addr, Labels: formatLabels(n.Labels)})
		groups[n.Name] = &nodeGroup{Node: n.Name, Anchor: nodeAnchor(n.Name), Known: true, Ready: n.Ready}
	}
	ps := slices.Clone(pods)
	slices.SortFunc(ps, func(a, b api.PodView) int {
		return cmp.Or(strings.Compare(a.Pod.Namespace, b.Pod.Namespace), strings.Compare(a.Pod.Name, b.Pod.Name))
	})
	for _, p := range ps {
		node := p.Pod.Spec.NodeName
		g, ok := groups[node]
		if !ok { // a node that is not registered (any more), or none
			g = &nodeGroup{Node: node, Anchor: nodeAnchor(node)}
			groups[node] = g
		}
		g.Pods = append(g.Pods, podRowOf(p, deployed, now))
		d.Pods++
	}
	// Registered nodes, then unregistered ones, by name; pods on no node last.
	for _, g := range groups {
		d.Groups = append(d.Groups, *g)
	}
	rank := func(g nodeGroup) int {
		switch {
		case g.Known:
			return 0
		case g.Node != "":
			return 1
		}
		return 2
	}
	slices.SortFunc(d.Groups, func(a, b nodeGroup) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a.Node, b.Node))
	})
	return d
}

func nodeAnchor(node string) string {
	if node == "" {
		return "node--none"
	}
	return "node-" + node
}

func podHref(namespace, name string) string {
	return "/pods/" + url.PathEscape(namespace) + "/" + url.PathEscape(name)
}

func podRowOf(p api.PodView, deployed string, now time.Time) podRow {
	s := summarizePod(&p.Pod)
	commit := ""
	if p.Commit != "" {
		commit = shortSHA(p.Commit)
	}
	return podRow{Namespace: p.Pod.Namespace, Name: p.Pod.Name, Href: podHref(p.Pod.Namespace, p.Pod.Name),
		Status: s.Status, StatusClass: podStatusClass(s), Ready: fmt.Sprintf("%d/%d", s.Ready, s.Total),
		Restarts: s.restartsColumn(now), IP: p.Pod.Status.PodIP, CommitShort: commit,
		Behind: deployed != "" && p.Commit != "" && p.Commit != deployed}
}

// podFailureReasons are pod statuses shown as failures.
var podFailureReasons = map[string]bool{
	"CrashLoopBackOff": true, "ImagePullBackOff": true, "ErrImagePull": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
	"Error": true, "Failed": true, "OOMKilled": true, "Unknown": true, "Evicted": true, "ContainerCannotRun": true,
}

// podStatusClass colours a pod's STATUS: ok when it runs ready or
// completed, bad when a failure reason shows, warn otherwise.
func podStatusClass(s podSummary) string {
	st := strings.TrimPrefix(s.Status, "Init:")
	switch {
	case podFailureReasons[st] || strings.HasPrefix(st, "ExitCode:") || strings.HasPrefix(st, "Signal:"):
		return classBad
	case s.Status == "Completed" || s.Status == string(corev1.PodSucceeded):
		return classOK
	case s.Status == string(corev1.PodRunning) && s.Ready == s.Total:
		return classOK
	}
	return classWarn
}
