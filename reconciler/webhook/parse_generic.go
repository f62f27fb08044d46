package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/containerd/errdefs"
)

// The generic receiver's headers. It is meant for CI jobs, scripts and
// hosts without a dedicated receiver:
//
//	X-Moor-Signature: sha256=<hex HMAC-SHA256 of the raw body>   (required)
//	X-Moor-Event:     push (default) or ping
//	X-Moor-Delivery:  an id; a repeated id is not processed twice (optional)
//
// The body is empty ("fetch now") or JSON:
//
//	{"ref": "refs/heads/main", "after": "<sha>", "repository": "...", "pusher": "..."}
//
// A push without "ref" means "fetch the tracked branch now"; a ref without
// the refs/ prefix is a branch name.
const (
	genericSignatureHeader = "X-Moor-Signature"
	genericEventHeader     = "X-Moor-Event"
	genericDeliveryHeader  = "X-Moor-Delivery"
)

type genericPush struct {
	Ref    string `json:"ref"`
	Before string `json:"before"`
	After  string `json:"after"`
	Repo   string `json:"repository"`
	Pusher string `json:"pusher"`
}

// parseGeneric parses a generic delivery. A push with no ref has no
// Changes; the handler reads it as a request to fetch the tracked branch.
func parseGeneric(h http.Header, body []byte) (Event, error) {
	ev := Event{Provider: Generic, Name: h.Get(genericEventHeader), Delivery: h.Get(genericDeliveryHeader)}
	switch ev.Name {
	case "", "push":
		ev.Name = "push"
	case "ping":
		ev.Kind = KindPing
		return ev, nil
	default:
		ev.Kind = KindOther
		return ev, nil
	}
	ev.Kind = KindPush
	if len(bytes.TrimSpace(body)) == 0 {
		return ev, nil
	}
	var p genericPush
	if err := json.Unmarshal(body, &p); err != nil {
		return ev, fmt.Errorf("%w: generic payload must be empty or a JSON object like {\"ref\":\"refs/heads/main\"}: %v", errdefs.ErrInvalidArgument, err)
	}
	ev.Repo, ev.Pusher = p.Repo, p.Pusher
	if p.Ref != "" {
		if !strings.HasPrefix(p.Ref, "refs/") {
			p.Ref = "refs/heads/" + p.Ref // a bare branch name
		}
		if !validRef(p.Ref) {
			return ev, fmt.Errorf("%w: generic payload's \"ref\" %q is not a branch name or full ref", errdefs.ErrInvalidArgument, p.Ref)
		}
		c := Change{Ref: p.Ref, Before: p.Before, After: p.After}
		ev.Changes = []Change{c}
		ev.Kind = kindOf(ev.Changes)
	}
	return ev, nil
}
