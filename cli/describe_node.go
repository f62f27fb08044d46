package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/moor-dev/moor/api"
)

// describeNode renders a node the way kubectl describe node lays one
// out, from what moor knows: labels, when it joined and was last seen, its
// Ready condition, address and pod CIDR, the commit it applied (against
// the deployed one) and the pods planned onto it.
func describeNode(w io.Writer, v api.NodeView, pods []api.PodView, deployed string, now time.Time) error {
	d := newDescriber()
	d.field(0, "Name", v.Name)
	d.list(0, "Labels", pairs(v.Labels, "="))
	d.field(0, "Joined", stampAgo(v.JoinedAt, now))
	d.field(0, "Last Seen", stampAgo(v.LastSeen, now))
	var conds [][]string
	for _, c := range nodeObject(v).(*NodeObject).Status.Conditions {
		conds = append(conds, []string{string(c.Type), string(c.Status), c.Reason, c.Message})
	}
	d.table(0, "Conditions", []string{"Type", "Status", "Reason", "Message"}, conds)
	d.line(0, "Addresses:")
	if v.Address.IsValid() {
		d.field(1, "InternalIP", v.Address.String())
	}
	d.field(1, "Hostname", v.Name)
	cidr := "<none>"
	if v.PodCIDR.IsValid() {
		cidr = v.PodCIDR.String()
	}
	d.field(0, "PodCIDR", cidr)
	d.field(0, "Commit", nodeCommit(v.Commit, deployed))
	d.field(0, "Pods", fmt.Sprintf("(%d in total)", len(pods)))
	if len(pods) > 0 {
		d.line(1, "Namespace\tName\tReady\tStatus\tRestarts\tAge")
		d.line(1, "---------\t----\t-----\t------\t--------\t---")
		for i := range pods {
			p := &pods[i].Pod
			s := summarizePod(p)
			start := p.CreationTimestamp.Time
			if p.Status.StartTime != nil {
				start = p.Status.StartTime.Time
			}
			d.line(1, "%s\t%s\t%d/%d\t%s\t%s\t%s", p.Namespace, p.Name, s.Ready, s.Total, s.Status, s.restartsColumn(now), age(start, now))
		}
	}
	return d.writeTo(w)
}

// nodeCommit is the commit a node applied and how it stands against the
// deployed one.
func nodeCommit(commit, deployed string) string {
	switch {
	case commit == "":
		return "<none> (no desired state applied yet)"
	case deployed == "":
		return shortSHA(commit)
	case commit == deployed:
		return shortSHA(commit) + " (deployed)"
	}
	return shortSHA(commit) + " (deployed is " + shortSHA(deployed) + ")"
}
