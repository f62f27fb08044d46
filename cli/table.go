package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/moor-dev/moor/api"
)

// kubectl's tabwriter settings (printers.GetNewTabWriter).
const (
	tabMinWidth = 6
	tabWidth    = 4
	tabPadding  = 3
)

// shortSHALen is how much of a commit SHA the tables show.
const shortSHALen = 7

// maxMessageLen bounds the MESSAGE column of the commits table.
const maxMessageLen = 50

// tableOptions shape every table.
type tableOptions struct {
	Wide          bool
	AllNamespaces bool // add a NAMESPACE column to namespaced types
	Prefix        bool // print names as "pod/NAME" (several types at once)
	Now           time.Time
}

// table is a rendered-but-unformatted table plus text shown below it.
type table struct {
	Headers []string
	Rows    [][]string
	Footer  []string
}

// writeTable formats t with kubectl's column spacing.
func writeTable(w io.Writer, t table) error {
	tw := tabwriter.NewWriter(w, tabMinWidth, tabWidth, tabPadding, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.Headers, "\t"))
	for _, r := range t.Rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	for _, l := range t.Footer {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return fmt.Errorf("write table: %w", err)
		}
	}
	return nil
}

// newTable starts a table for k with the NAMESPACE column when needed.
func newTable(k kind, o tableOptions, headers ...string) table {
	if o.AllNamespaces && kinds[k].Namespaced {
		headers = append([]string{"NAMESPACE"}, headers...)
	}
	return table{Headers: headers}
}

// addRow appends a row, prefixing namespace and the displayed name.
func (t *table) addRow(k kind, o tableOptions, namespace, name string, cells ...string) {
	if o.Prefix {
		name = kinds[k].Prefix + "/" + name
	}
	row := []string{name}
	if o.AllNamespaces && kinds[k].Namespaced {
		row = []string{namespace, name}
	}
	t.Rows = append(t.Rows, append(row, cells...))
}

func podTable(pods []api.PodView, o tableOptions) table {
	h := []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}
	if o.Wide {
		h = append(h, "IP", "NODE")
	}
	t := newTable(kindPod, o, append(h, "COMMIT")...)
	for i := range pods {
		p := &pods[i].Pod
		s := summarizePod(p)
		start := p.CreationTimestamp.Time
		if p.Status.StartTime != nil {
			start = p.Status.StartTime.Time
		}
		cells := []string{fmt.Sprintf("%d/%d", s.Ready, s.Total), s.Status, s.restartsColumn(o.Now), age(start, o.Now)}
		if o.Wide {
			cells = append(cells, orNone(p.Status.PodIP), orNone(p.Spec.NodeName))
		}
		cells = append(cells, shortSHA(pods[i].Commit))
		t.addRow(kindPod, o, p.Namespace, p.Name, cells...)
	}
	return t
}

func deploymentTable(deps []api.DeploymentView, o tableOptions) table {
	h := []string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"}
	if o.Wide {
		h = append(h, "CONTAINERS", "IMAGES", "SELECTOR", "COMMIT")
	}
	t := newTable(kindDeployment, o, h...)
	for i := range deps {
		d := &deps[i].Deployment
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		cells := []string{
			fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, replicas),
			fmt.Sprint(d.Status.UpdatedReplicas),
			fmt.Sprint(d.Status.AvailableReplicas),
			age(d.CreationTimestamp.Time, o.Now),
		}
		if o.Wide {
			names, images := containerColumns(d)
			cells = append(cells, names, images, metav1.FormatLabelSelector(d.Spec.Selector), shortSHA(deps[i].Commit))
		}
		t.addRow(kindDeployment, o, d.Namespace, d.Name, cells...)
	}
	return t
}

func containerColumns(d *appsv1.Deployment) (names, images string) {
	var n, im []string
	for _, c := range d.Spec.Template.Spec.Containers {
		n, im = append(n, c.Name), append(im, c.Image)
	}
	return orNone(strings.Join(n, ",")), orNone(strings.Join(im, ","))
}

func nodeTable(nodes []api.NodeView, o tableOptions) table {
	h := []string{"NAME", "STATUS", "PODS", "COMMIT", "LAST-SEEN", "AGE"}
	if o.Wide {
		h = append(h, "LABELS")
	}
	t := newTable(kindNode, o, h...)
	for _, n := range nodes {
		status := "NotReady"
		if n.Ready {
			status = "Ready"
		}
		lastSeen := "<never>"
		if !n.LastSeen.IsZero() {
			lastSeen = humanDuration(o.Now.Sub(n.LastSeen))
		}
		cells := []string{status, fmt.Sprint(n.Pods), shortSHA(n.Commit), lastSeen, age(n.JoinedAt, o.Now)}
		if o.Wide {
			cells = append(cells, formatLabels(n.Labels))
		}
		t.addRow(kindNode, o, "", n.Name, cells...)
	}
	return t
}

func shortSHA(s string) string {
	if s == "" {
		return "<none>"
	}
	if len(s) > shortSHALen {
		return s[:shortSHALen]
	}
	return s
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(l)
}

// truncate shortens s to at most n runes, marking the cut with "...".
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-3]) + "..."
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// formatLabels prints "k=v,k2=v2" sorted by key, or "<none>".
func formatLabels(l map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, k+"="+l[k])
	}
	return orNone(strings.Join(parts, ","))
}
