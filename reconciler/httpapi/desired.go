package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
)

// desired is the long-poll: it answers 200 with the node's document as
// soon as its digest differs from the one the node has (since, or
// If-None-Match), or 304 when nothing changed within the wait.
func (h *Handler) desired(w http.ResponseWriter, r *http.Request, name string) error {
	q := r.URL.Query()
	wait, err := parseWait(q.Get("wait"), h.cfg.MaxWait)
	if err != nil {
		return err
	}
	since := q.Get("since")
	if since == "" {
		since = h.ifNoneMatch(r.Header.Get("If-None-Match"), name)
	}
	// The write must outlast the wait.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + bodyReadTimeout))
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	body, digest, changed, err := h.cfg.Hub.Wait(ctx, name, since)
	if err != nil {
		return err
	}
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-cache")
	if digest != "" {
		hdr.Set("ETag", `"`+digest+`"`)
	}
	if !changed {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(body)
	return err
}

// parseWait parses the wait parameter, capped at max; empty means no wait.
func parseWait(s string, max time.Duration) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%w: wait=%q: want a non-negative duration such as 30s", errdefs.ErrInvalidArgument, s)
	}
	return min(d, max), nil
}

// ifNoneMatch returns the digest named by an If-None-Match header: the
// first entity tag, weak or strong; "*" stands for the current document.
func (h *Handler) ifNoneMatch(header, node string) string {
	first, _, _ := strings.Cut(header, ",")
	first = strings.TrimSpace(first)
	if first == "*" {
		_, digest, _ := h.cfg.Hub.Get(node)
		return digest
	}
	first = strings.TrimPrefix(first, "W/")
	return strings.Trim(first, `"`)
}
