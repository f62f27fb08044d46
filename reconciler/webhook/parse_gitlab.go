package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/containerd/errdefs"
)

// gitlabPush is the part of GitLab's push and tag push payloads moor reads.
type gitlabPush struct {
	ObjectKind string `json:"object_kind"`
	Ref        string `json:"ref"`
	Before     string `json:"before"`
	After      string `json:"after"`
	Username   string `json:"user_username"`
	Project    struct {
		PathWithNamespace string `json:"path_with_namespace"`
	} `json:"project"`
}

// parseGitLab parses a GitLab delivery (X-Gitlab-Event "Push Hook" or
// "Tag Push Hook"). The redelivery id is Idempotency-Key (kept across
// retries), else X-Gitlab-Event-UUID.
func parseGitLab(h http.Header, body []byte) (Event, error) {
	ev := Event{
		Provider: GitLab,
		Name:     h.Get("X-Gitlab-Event"),
		Delivery: firstNonEmpty(h.Get("Idempotency-Key"), h.Get("X-Gitlab-Event-UUID")),
	}
	switch ev.Name {
	case "":
		return ev, fmt.Errorf("%w: missing X-Gitlab-Event header", errdefs.ErrInvalidArgument)
	case "Push Hook", "Tag Push Hook", "System Hook":
	default:
		ev.Kind = KindOther
		return ev, nil
	}
	var p gitlabPush
	if err := json.Unmarshal(body, &p); err != nil {
		return ev, fmt.Errorf("%w: gitlab payload is not valid JSON: %v", errdefs.ErrInvalidArgument, err)
	}
	if p.ObjectKind != "push" && p.ObjectKind != "tag_push" {
		// A system hook for something other than a push.
		ev.Kind = KindOther
		return ev, nil
	}
	if !validRef(p.Ref) {
		return ev, fmt.Errorf("%w: gitlab %s payload has no valid \"ref\" (got %q)", errdefs.ErrInvalidArgument, p.ObjectKind, p.Ref)
	}
	ev.Repo, ev.Pusher = p.Project.PathWithNamespace, p.Username
	c := Change{Ref: p.Ref, Before: p.Before, After: p.After}
	// A deleted ref has after all zeros (and checkout_sha null).
	if isZero(p.After) {
		c.Deleted, c.After = true, ""
	}
	ev.Changes = []Change{c}
	ev.Kind = kindOf(ev.Changes)
	return ev, nil
}
