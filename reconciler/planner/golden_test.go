package planner

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the want/ sections of testdata/*.txtar")

// archive is a minimal txtar: a comment, then files introduced by
// "-- name --" lines. golang.org/x/tools/txtar is not a dependency.
type archive struct {
	comment string
	files   []archiveFile
}

type archiveFile struct {
	name string
	data string
}

func parseArchive(src string) archive {
	var a archive
	cur := -1
	for _, line := range strings.SplitAfter(src, "\n") {
		trimmed := strings.TrimRight(line, "\n")
		if name, ok := strings.CutPrefix(trimmed, "-- "); ok && strings.HasSuffix(name, " --") {
			a.files = append(a.files, archiveFile{name: strings.TrimSuffix(name, " --")})
			cur = len(a.files) - 1
			continue
		}
		if cur < 0 {
			a.comment += line
		} else {
			a.files[cur].data += line
		}
	}
	return a
}

func (a archive) format() string {
	var b strings.Builder
	b.WriteString(a.comment)
	for _, f := range a.files {
		fmt.Fprintf(&b, "-- %s --\n", f.name)
		b.WriteString(f.data)
		if f.data != "" && !strings.HasSuffix(f.data, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

func (a archive) file(name string) (string, bool) {
	for _, f := range a.files {
		if f.name == name {
			return f.data, true
		}
	}
	return "", false
}

// TestGolden plans each testdata/*.txtar and compares the result with its
// want/ sections. Inputs:
//
//	nodes           one node per line: "name ready|notready [k=v ...]"
//	manifests.yaml  Pods, Deployments and Namespaces
//	previous        optional, "namespace/name node" per line
//	allocations     optional, as want/allocations prints them
//	status          optional, "namespace/name podIP ready|notready" per
//	                line: the pods' nodes report them after a first plan,
//	                then the test plans again
//	commit          optional, defaults to "0000000"
//
// Outputs (rewritten by -update): want/placement, want/pending,
// want/allocations, want/warnings, want/services (the CLI's view),
// want/digests and want/<node>.json (the canonical document, indented).
func TestGolden(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.txtar"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			a := parseArchive(string(src))
			got := goldenOutputs(t, a)
			var inputs []archiveFile
			for _, f := range a.files {
				if !strings.HasPrefix(f.name, "want/") {
					inputs = append(inputs, f)
				}
			}
			updated := archive{comment: a.comment, files: append(inputs, got...)}
			if *update {
				if err := os.WriteFile(path, []byte(updated.format()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := a.format(); updated.format() != want {
				for _, f := range got {
					if w, _ := a.file(f.name); w != f.data {
						t.Errorf("%s differs:\n--- got ---\n%s--- want ---\n%s", f.name, f.data, w)
					}
				}
				t.Errorf("%s is out of date; run go test ./reconciler/planner -update and review the diff", path)
			}
		})
	}
}

func goldenOutputs(t *testing.T, a archive) []archiveFile {
	t.Helper()
	nodesSrc, _ := a.file("nodes")
	manifests, _ := a.file("manifests.yaml")
	prevSrc, _ := a.file("previous")
	commit, ok := a.file("commit")
	if !ok {
		commit = "0000000"
	}
	previous := map[string]string{}
	for _, line := range strings.Split(prevSrc, "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			previous[f[0]] = f[1]
		} else if len(f) != 0 {
			t.Fatalf("previous line %q: want \"namespace/name node\"", line)
		}
	}
	allocSrc, _ := a.file("allocations")
	statusSrc, hasStatus := a.file("status")
	in := Input{
		Commit:      strings.TrimSpace(commit),
		Objects:     parseObjects(t, manifests),
		Nodes:       parseNodes(t, nodesSrc),
		Previous:    previous,
		Allocations: parseAllocations(t, allocSrc),
		Now:         now,
	}
	out := Plan(in)
	if hasStatus {
		// Nodes report the pods of the first plan; plan again with them.
		in.Status = parseStatus(t, statusSrc, out)
		in.Previous, in.Allocations = out.Placement, out.Allocations
		out = Plan(in)
	}

	var placement, pending, digests strings.Builder
	for _, k := range sortedKeys(out.Placement) {
		fmt.Fprintf(&placement, "%s %s\n", k, out.Placement[k])
	}
	for _, p := range out.Pending {
		fmt.Fprintf(&pending, "%s: %s\n", p.Pod.Key(), p.Reason)
	}
	files := []archiveFile{{"want/placement", placement.String()}, {"want/pending", pending.String()},
		{"want/allocations", formatAllocations(out.Allocations)}, {"want/warnings", strings.Join(append(out.Warnings, ""), "\n")},
		{"want/services", formatServiceViews(out.Services)}}
	var docs []archiveFile
	for _, n := range sortedKeys(out.Nodes) {
		b, digest, err := out.Nodes[n].Encode()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&digests, "%s %s\n", n, digest)
		var ind bytes.Buffer
		if err := json.Indent(&ind, b, "", "  "); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, archiveFile{"want/" + n + ".json", ind.String() + "\n"})
	}
	files = append(files, archiveFile{"want/digests", digests.String()})
	return append(files, docs...)
}

func TestArchiveRoundTrip(t *testing.T) {
	src := "comment\n-- a --\nx\n-- b --\n-- c --\ny\nz\n"
	if got := parseArchive(src).format(); got != src {
		t.Fatalf("round trip:\n%q\nwant\n%q", got, src)
	}
}
