package webhook

import (
	"fmt"
	"net/http"

	"github.com/containerd/errdefs"
)

// parseGitea parses a Gitea delivery (X-Gitea-Event, X-Gitea-Delivery).
// The push body has GitHub's shape.
func parseGitea(h http.Header, body []byte) (Event, error) {
	return parseGiteaLike(Gitea, h.Get("X-Gitea-Event"), h.Get("X-Gitea-Delivery"), body)
}

// parseForgejo parses a Forgejo delivery. Forgejo sends X-Forgejo-Event
// and X-Forgejo-Delivery, and the X-Gitea-* names as well.
func parseForgejo(h http.Header, body []byte) (Event, error) {
	name := firstNonEmpty(h.Get("X-Forgejo-Event"), h.Get("X-Gitea-Event"))
	id := firstNonEmpty(h.Get("X-Forgejo-Delivery"), h.Get("X-Gitea-Delivery"))
	return parseGiteaLike(Forgejo, name, id, body)
}

func parseGiteaLike(p Provider, name, delivery string, body []byte) (Event, error) {
	ev := Event{Provider: p, Name: name, Delivery: delivery}
	switch name {
	case "":
		return ev, fmt.Errorf("%w: missing X-%s-Event header", errdefs.ErrInvalidArgument, giteaTitle(p))
	case "push":
		return parseGitHubPush(ev, body)
	default:
		// create, delete, release, pull_request... Gitea's "Test delivery"
		// sends a push, so there is no ping.
		ev.Kind = KindOther
		return ev, nil
	}
}

func giteaTitle(p Provider) string {
	if p == Forgejo {
		return "Forgejo"
	}
	return "Gitea"
}
