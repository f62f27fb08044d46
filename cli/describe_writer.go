package cli

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// describer lays text out as kubectl describe does: "Field:\tvalue" lines
// indented two spaces per level, all through one tabwriter, so that
// consecutive fields align and a line without a tab (a section title such
// as "Containers:") starts a new alignment block. Trailing blanks are
// trimmed when the text is written out.
type describer struct {
	buf bytes.Buffer
	tw  *tabwriter.Writer
}

// kubectl's describe tabwriter settings (describe.tabbedString).
const (
	describeMinWidth = 0
	describeTabWidth = 8
	describePadding  = 2
)

func newDescriber() *describer {
	d := &describer{}
	d.tw = tabwriter.NewWriter(&d.buf, describeMinWidth, describeTabWidth, describePadding, ' ', 0)
	return d
}

// line writes one line at level; format holds the tabs between cells.
func (d *describer) line(level int, format string, a ...any) {
	// Writes go to a bytes.Buffer and cannot fail; Flush reports the rest.
	fmt.Fprintf(d.tw, strings.Repeat("  ", level)+format+"\n", a...)
}

// field writes "name:\tvalue" at level.
func (d *describer) field(level int, name, value string) {
	d.line(level, "%s:\t%s", name, value)
}

// list writes "title:\tfirst" and one "\tnext" line per further item, as
// kubectl prints labels; no items is "<none>".
func (d *describer) list(level int, title string, items []string) {
	if len(items) == 0 {
		d.field(level, title, "<none>")
		return
	}
	for i, it := range items {
		if i == 0 {
			d.field(level, title, it)
			continue
		}
		d.line(level, "\t%s", it)
	}
}

// table writes "title:" then a header, its underline and the rows one
// level deeper; no rows is "title:\t<none>".
func (d *describer) table(level int, title string, header []string, rows [][]string) {
	if len(rows) == 0 {
		d.field(level, title, "<none>")
		return
	}
	d.line(level, "%s:", title)
	under := make([]string, len(header))
	for i, h := range header {
		under[i] = strings.Repeat("-", len(h))
	}
	d.line(level+1, "%s", strings.Join(header, "\t"))
	d.line(level+1, "%s", strings.Join(under, "\t"))
	for _, r := range rows {
		d.line(level+1, "%s", strings.Join(r, "\t"))
	}
}

// writeTo flushes the layout to w without trailing blanks on any line.
func (d *describer) writeTo(w io.Writer) error {
	if err := d.tw.Flush(); err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	lines := bytes.SplitAfter(d.buf.Bytes(), []byte("\n"))
	var out bytes.Buffer
	for _, l := range lines {
		nl := bytes.HasSuffix(l, []byte("\n"))
		out.Write(bytes.TrimRight(l, " \n"))
		if nl {
			out.WriteByte('\n')
		}
	}
	_, err := w.Write(out.Bytes())
	return err
}

// pairs renders a map sorted by key as "k<sep>v" items.
func pairs(m map[string]string, sep string) []string {
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+sep+oneLine(m[k]))
	}
	return out
}

// oneLine keeps free text (messages, annotation values) on its line and
// out of the tabwriter's cells.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ").Replace(s)
}

// stamp is kubectl's timestamp (RFC 1123 with a numeric zone) in the
// location of now, so that tests with a UTC clock print UTC.
func stamp(t, now time.Time) string {
	if t.IsZero() {
		return "<unset>"
	}
	return t.In(now.Location()).Format(time.RFC1123Z)
}

// stampAgo is stamp plus how long ago t was: "... (5m ago)".
func stampAgo(t, now time.Time) string {
	if t.IsZero() {
		return "<never>"
	}
	return stamp(t, now) + " (" + humanDuration(now.Sub(t)) + " ago)"
}

// boolWord is kubectl's printBool: "True" or "False".
func boolWord(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// orUnset is kubectl's "<unset>" for an absent optional value.
func orUnset[T any](p *T, format func(T) string) string {
	if p == nil {
		return "<unset>"
	}
	return format(*p)
}
