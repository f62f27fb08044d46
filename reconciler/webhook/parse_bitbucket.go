package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/containerd/errdefs"
)

// bitbucketCloudPush is the part of Bitbucket Cloud's repo:push payload
// moor reads. A change's "new" is null when the ref was deleted and "old"
// is null when it was created.
type bitbucketCloudPush struct {
	Actor struct {
		Nickname    string `json:"nickname"`
		DisplayName string `json:"display_name"`
	} `json:"actor"`
	Repo struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	Push struct {
		Changes []struct {
			New *bitbucketCloudRef `json:"new"`
			Old *bitbucketCloudRef `json:"old"`
		} `json:"changes"`
	} `json:"push"`
}

type bitbucketCloudRef struct {
	Type   string `json:"type"` // branch, tag, annotated_tag
	Name   string `json:"name"`
	Target struct {
		Hash string `json:"hash"`
	} `json:"target"`
}

func (r *bitbucketCloudRef) fullRef() string {
	if r.Type == "branch" || r.Type == "named_branch" {
		return "refs/heads/" + r.Name
	}
	return "refs/tags/" + r.Name
}

// bitbucketServerPush is the part of Bitbucket Server / Data Center's
// repo:refs_changed payload moor reads.
type bitbucketServerPush struct {
	Actor struct {
		Name string `json:"name"`
	} `json:"actor"`
	Repo struct {
		Slug    string `json:"slug"`
		Project struct {
			Key string `json:"key"`
		} `json:"project"`
	} `json:"repository"`
	Changes []struct {
		Ref struct {
			ID string `json:"id"`
		} `json:"ref"`
		RefID    string `json:"refId"`
		FromHash string `json:"fromHash"`
		ToHash   string `json:"toHash"`
		Type     string `json:"type"` // ADD, UPDATE, DELETE
	} `json:"changes"`
}

// parseBitbucket parses a Bitbucket delivery. X-Event-Key tells the dialect:
// repo:push is Bitbucket Cloud, repo:refs_changed is Bitbucket Server /
// Data Center, diagnostics:ping is Server's "Test connection". The
// redelivery id is X-Request-UUID (Cloud) or X-Request-Id (Server);
// X-Hook-UUID names the webhook, not the delivery, so it is not used.
func parseBitbucket(h http.Header, body []byte) (Event, error) {
	ev := Event{
		Provider: Bitbucket,
		Name:     h.Get("X-Event-Key"),
		Delivery: firstNonEmpty(h.Get("X-Request-UUID"), h.Get("X-Request-Id")),
	}
	switch ev.Name {
	case "":
		return ev, fmt.Errorf("%w: missing X-Event-Key header", errdefs.ErrInvalidArgument)
	case "diagnostics:ping":
		ev.Kind = KindPing
		return ev, nil
	case "repo:push":
		return parseBitbucketCloud(ev, body)
	case "repo:refs_changed":
		return parseBitbucketServer(ev, body)
	default:
		ev.Kind = KindOther
		return ev, nil
	}
}

func parseBitbucketCloud(ev Event, body []byte) (Event, error) {
	var p bitbucketCloudPush
	if err := json.Unmarshal(body, &p); err != nil {
		return ev, fmt.Errorf("%w: bitbucket repo:push payload is not valid JSON: %v", errdefs.ErrInvalidArgument, err)
	}
	ev.Repo, ev.Pusher = p.Repo.FullName, firstNonEmpty(p.Actor.Nickname, p.Actor.DisplayName)
	for i, ch := range p.Push.Changes {
		var c Change
		switch {
		case ch.New != nil:
			c = Change{Ref: ch.New.fullRef(), After: ch.New.Target.Hash}
			if ch.Old != nil {
				c.Before = ch.Old.Target.Hash
			}
		case ch.Old != nil:
			c = Change{Ref: ch.Old.fullRef(), Before: ch.Old.Target.Hash, Deleted: true}
		default:
			return ev, fmt.Errorf("%w: bitbucket repo:push change %d has neither \"new\" nor \"old\"", errdefs.ErrInvalidArgument, i)
		}
		if !validRef(c.Ref) {
			return ev, fmt.Errorf("%w: bitbucket repo:push change %d has no ref name", errdefs.ErrInvalidArgument, i)
		}
		ev.Changes = append(ev.Changes, c)
	}
	if len(ev.Changes) == 0 {
		return ev, fmt.Errorf("%w: bitbucket repo:push payload has no push.changes", errdefs.ErrInvalidArgument)
	}
	ev.Kind = kindOf(ev.Changes)
	return ev, nil
}

func parseBitbucketServer(ev Event, body []byte) (Event, error) {
	var p bitbucketServerPush
	if err := json.Unmarshal(body, &p); err != nil {
		return ev, fmt.Errorf("%w: bitbucket repo:refs_changed payload is not valid JSON: %v", errdefs.ErrInvalidArgument, err)
	}
	if p.Repo.Project.Key != "" || p.Repo.Slug != "" {
		ev.Repo = p.Repo.Project.Key + "/" + p.Repo.Slug
	}
	ev.Pusher = p.Actor.Name
	for i, ch := range p.Changes {
		ref := firstNonEmpty(ch.Ref.ID, ch.RefID)
		if !validRef(ref) {
			return ev, fmt.Errorf("%w: bitbucket repo:refs_changed change %d has no valid ref.id (got %q)", errdefs.ErrInvalidArgument, i, ref)
		}
		c := Change{Ref: ref, Before: ch.FromHash, After: ch.ToHash}
		if ch.Type == "DELETE" || isZero(ch.ToHash) {
			c.Deleted, c.After = true, ""
		}
		ev.Changes = append(ev.Changes, c)
	}
	if len(ev.Changes) == 0 {
		return ev, fmt.Errorf("%w: bitbucket repo:refs_changed payload has no changes", errdefs.ErrInvalidArgument)
	}
	ev.Kind = kindOf(ev.Changes)
	return ev, nil
}
