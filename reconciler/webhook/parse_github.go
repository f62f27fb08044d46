package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/containerd/errdefs"
)

// githubPush is the part of GitHub's push payload moor reads. Gitea and
// Forgejo send the same shape.
type githubPush struct {
	Ref     string `json:"ref"`
	Before  string `json:"before"`
	After   string `json:"after"`
	Deleted bool   `json:"deleted"`
	Repo    struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	Pusher struct {
		Name     string `json:"name"`     // GitHub
		Login    string `json:"login"`    // Gitea, Forgejo
		Username string `json:"username"` // Gitea, Forgejo
	} `json:"pusher"`
}

// parseGitHub parses a GitHub delivery (X-GitHub-Event, X-GitHub-Delivery).
func parseGitHub(h http.Header, body []byte) (Event, error) {
	ev := Event{Provider: GitHub, Name: h.Get("X-GitHub-Event"), Delivery: h.Get("X-GitHub-Delivery")}
	switch ev.Name {
	case "":
		return ev, fmt.Errorf("%w: missing X-GitHub-Event header", errdefs.ErrInvalidArgument)
	case "ping":
		ev.Kind = KindPing
		return ev, nil
	case "push":
		return parseGitHubPush(ev, body)
	default:
		ev.Kind = KindOther
		return ev, nil
	}
}

// parseGitHubPush fills ev from a GitHub-shaped push body.
func parseGitHubPush(ev Event, body []byte) (Event, error) {
	var p githubPush
	if err := json.Unmarshal(body, &p); err != nil {
		return ev, fmt.Errorf("%w: %s push payload is not valid JSON: %v", errdefs.ErrInvalidArgument, ev.Provider, err)
	}
	if !validRef(p.Ref) {
		return ev, fmt.Errorf("%w: %s push payload has no valid \"ref\" (got %q)", errdefs.ErrInvalidArgument, ev.Provider, p.Ref)
	}
	ev.Repo = p.Repo.FullName
	ev.Pusher = firstNonEmpty(p.Pusher.Name, p.Pusher.Login, p.Pusher.Username)
	c := Change{Ref: p.Ref, Before: p.Before, After: p.After, Deleted: p.Deleted || isZero(p.After)}
	if c.Deleted {
		c.After = ""
	}
	ev.Changes = []Change{c}
	ev.Kind = kindOf(ev.Changes)
	return ev, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
