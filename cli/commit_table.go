package cli

import (
	"fmt"
	"time"

	"github.com/moor-dev/moor/api"
)

// commitTable lists commits; the errors of rejected ones follow the table
// so the user sees what to fix. CONVERGED is the nodes running all of
// their pods for the commit out of those with a document at it;
// PUSH→RUNNING the time from the webhook (or the fetch, when none came)
// until the last of them did. Wide shows full SHAs and messages, and each
// commit's timeline below the table.
func commitTable(commits []api.CommitView, o tableOptions) table {
	t := newTable(kindCommit, o, "COMMIT", "MESSAGE", "AUTHOR", "STATE", "CONVERGED", "PUSH→RUNNING", "DEPLOYED", "AGE")
	var timelines []string
	for _, c := range commits {
		sha, msg := shortSHA(c.SHA), firstLine(c.Message)
		if o.Wide {
			sha = orNone(c.SHA)
		} else {
			msg = truncate(msg, maxMessageLen)
		}
		deployed := ""
		if c.Deployed {
			deployed = "yes"
		}
		t.addRow(kindCommit, o, "", sha, orNone(msg), orNone(c.Author), c.State, converged(c), pushToRunning(c), deployed, age(c.SeenAt, o.Now))
		if c.State == api.CommitRejected && len(c.Errors) > 0 {
			t.Footer = append(t.Footer, "", fmt.Sprintf("Commit %s was rejected:", shortSHA(c.SHA)))
			for _, e := range c.Errors {
				t.Footer = append(t.Footer, "  "+e)
			}
		}
		if o.Wide {
			timelines = append(timelines, timeline(c)...)
		}
	}
	t.Footer = append(t.Footer, timelines...)
	return t
}

// converged is "n/m", or "-" when no node has a document at the commit.
func converged(c api.CommitView) string {
	if c.Total == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d", c.Converged, c.Total)
}

// pushToRunning is the push→running time, "-" until every node runs.
func pushToRunning(c api.CommitView) string {
	if c.RunningAt.IsZero() {
		return "-"
	}
	return shortDuration(c.PushToRunning)
}

// shortDuration prints the sub-minute durations of a deployment precisely
// enough to compare them ("850ms", "1.2s", "42s"); longer ones as AGE does.
func shortDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "<invalid>"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return humanDuration(d)
}

// timeline is a commit's steps as offsets from its push: the webhook, or
// the fetch when no webhook announced it. Commits with no recorded fetch
// (judged before moor kept timings) have none.
func timeline(c api.CommitView) []string {
	start, from := c.WebhookAt, "webhook"
	if start.IsZero() {
		start, from = c.FetchedAt, "fetch"
	}
	if start.IsZero() {
		return nil
	}
	off := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return "+" + shortDuration(t.Sub(start))
	}
	lines := []string{"", fmt.Sprintf("Timeline of %s, from its %s at %s:", shortSHA(c.SHA), from, start.UTC().Format("2006-01-02T15:04:05.000Z"))}
	if c.State == api.CommitRejected {
		return append(lines, fmt.Sprintf("  fetched %s, rejected %s", off(c.FetchedAt), off(c.RejectedAt)))
	}
	lines = append(lines, fmt.Sprintf("  fetched %s, planned %s, published %s, running on every node %s",
		off(c.FetchedAt), off(c.PlannedAt), off(c.PublishedAt), off(c.RunningAt)))
	for _, n := range c.Nodes {
		lines = append(lines, fmt.Sprintf("  %s: published %s, pulled %s, running %s", n.Node, off(n.PublishedAt), off(n.PulledAt), off(n.RunningAt)))
	}
	return lines
}
