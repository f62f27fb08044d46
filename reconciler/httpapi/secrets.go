package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

// SecretAdmin answers the CLI about Secrets: where their values live and
// what the nodes read, never values. An Admin that also implements it
// serves api.PathSecrets; otherwise that endpoint answers 501.
type SecretAdmin interface {
	Secrets(ctx context.Context) ([]api.SecretView, error)
}

// secretRoutes are the admin endpoints of Secrets.
func (h *Handler) secretRoutes() []route {
	return []route{
		{"GET " + api.PathSecrets, h.admin(h.secretList())},
	}
}

// secretList lists the Secrets of the configured Admin, or answers 501
// when it does not implement SecretAdmin.
func (h *Handler) secretList() handlerFunc {
	s, ok := h.cfg.Admin.(SecretAdmin)
	if !ok {
		return func(http.ResponseWriter, *http.Request) error {
			return fmt.Errorf("%w: this server does not serve Secrets", errdefs.ErrNotImplemented)
		}
	}
	return list(s.Secrets)
}
