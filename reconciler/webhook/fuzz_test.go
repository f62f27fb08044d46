package webhook

import (
	"net/http"
	"testing"
)

// fuzzParser feeds arbitrary bodies and event names to one provider's
// parser and checks the invariants the handler relies on.
func fuzzParser(f *testing.F, p Provider, eventHeader string, extra ...string) {
	for _, c := range parseCases {
		if c.p == p {
			f.Add(c.header.Get(eventHeader), readTestdata(f, c.file))
		}
	}
	for _, e := range extra {
		f.Add(e, []byte(`{"ref":"refs/heads/main","changes":[{"ref":{"id":""}}],"push":{"changes":[{"new":null,"old":null}]}}`))
	}
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		h := http.Header{}
		h.Set(eventHeader, event)
		ev, err := specs[p].parse(h, body)
		if err != nil {
			return
		}
		if ev.Provider != p {
			t.Fatalf("provider = %q, want %q", ev.Provider, p)
		}
		switch ev.Kind {
		case KindPush, KindTag:
			if len(ev.Changes) == 0 && p != Generic {
				t.Fatalf("%s event without changes: %+v", ev.Kind, ev)
			}
		case KindPing, KindOther:
			if len(ev.Changes) != 0 {
				t.Fatalf("%s event with changes: %+v", ev.Kind, ev)
			}
		default:
			t.Fatalf("unknown kind %q", ev.Kind)
		}
		for _, c := range ev.Changes {
			if c.Ref == "" || c.Ref == "refs/heads/" || c.Ref == "refs/tags/" {
				t.Fatalf("change without a ref name: %+v", ev)
			}
			if c.Deleted && c.After != "" {
				t.Fatalf("deleted change with a new commit: %+v", c)
			}
		}
	})
}

func FuzzParseGitHub(f *testing.F) { fuzzParser(f, GitHub, "X-GitHub-Event", "push", "ping") }
func FuzzParseGitLab(f *testing.F) {
	fuzzParser(f, GitLab, "X-Gitlab-Event", "Push Hook", "System Hook")
}
func FuzzParseGitea(f *testing.F)   { fuzzParser(f, Gitea, "X-Gitea-Event", "push") }
func FuzzParseForgejo(f *testing.F) { fuzzParser(f, Forgejo, "X-Forgejo-Event", "push") }
func FuzzParseBitbucket(f *testing.F) {
	fuzzParser(f, Bitbucket, "X-Event-Key", "repo:push", "repo:refs_changed")
}
func FuzzParseGeneric(f *testing.F) { fuzzParser(f, Generic, "X-Moor-Event", "push", "") }
