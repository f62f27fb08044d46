package webhook

import "strings"

// Provider names a Git host's webhook dialect; it is the last segment of
// the endpoint path (/hooks/github, ...).
type Provider string

// The supported providers.
const (
	GitHub    Provider = "github"
	GitLab    Provider = "gitlab"
	Gitea     Provider = "gitea"
	Forgejo   Provider = "forgejo"
	Bitbucket Provider = "bitbucket" // Cloud (repo:push) and Server/Data Center (repo:refs_changed)
	Generic   Provider = "generic"
)

// Providers lists every supported provider in a stable order.
var Providers = []Provider{GitHub, GitLab, Gitea, Forgejo, Bitbucket, Generic}

// Kind classifies a delivery.
type Kind string

// The kinds of delivery.
const (
	KindPush  Kind = "push"  // at least one branch changed
	KindTag   Kind = "tag"   // only tags changed
	KindPing  Kind = "ping"  // the host checks that the endpoint answers
	KindOther Kind = "other" // any other event; acknowledged and ignored
)

// Change is one ref updated by a push.
type Change struct {
	Ref     string `json:"ref"`              // full ref name, e.g. refs/heads/main
	Before  string `json:"before,omitempty"` // old commit, empty or zeros when created
	After   string `json:"after,omitempty"`  // new commit, empty when deleted
	Deleted bool   `json:"deleted,omitempty"`
}

// Event is what a parser extracts from one delivery. Parsers are pure: they
// read only the headers and body they are given.
type Event struct {
	Provider Provider `json:"provider"`
	Kind     Kind     `json:"kind"`
	// Name is the provider's own event name (X-GitHub-Event, X-Event-Key...).
	Name     string   `json:"name,omitempty"`
	Delivery string   `json:"delivery,omitempty"` // redelivery id; empty if the host sends none
	Repo     string   `json:"repo,omitempty"`
	Pusher   string   `json:"pusher,omitempty"`
	Changes  []Change `json:"changes,omitempty"`
}

// Branch returns the change to refs/heads/<branch>, if the event has one.
func (e Event) Branch(branch string) (Change, bool) {
	want := "refs/heads/" + branch
	for _, c := range e.Changes {
		if c.Ref == want {
			return c, true
		}
	}
	return Change{}, false
}

// isZero reports whether a commit id is absent or all zeros (Git's "no
// commit", used for created and deleted refs).
func isZero(sha string) bool {
	return strings.Trim(sha, "0") == ""
}

// kindOf returns KindTag when every change is a tag and KindPush otherwise.
func kindOf(changes []Change) Kind {
	for _, c := range changes {
		if !strings.HasPrefix(c.Ref, "refs/tags/") {
			return KindPush
		}
	}
	if len(changes) == 0 {
		return KindPush
	}
	return KindTag
}

// validRef reports whether ref is a full ref name with a non-empty last
// part, like refs/heads/main or refs/tags/v1.
func validRef(ref string) bool {
	rest, ok := strings.CutPrefix(ref, "refs/")
	if !ok {
		return false
	}
	i := strings.IndexByte(rest, '/')
	return i > 0 && i < len(rest)-1
}
