package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/moor-dev/moor/api"
)

// secretController is the fake controller with Secrets.
type secretController struct{ fakeController }

func (*secretController) Secrets(context.Context) ([]api.SecretView, error) {
	return []api.SecretView{{Namespace: "default", Name: "db", Type: "Opaque",
		Vault: &api.VaultSource{Engine: api.VaultEngineKV, Path: "secret/data/db"}}}, nil
}

var _ SecretAdmin = (*secretController)(nil)

func TestSecretEndpoint(t *testing.T) {
	serve := func(admin Admin) http.Handler {
		h, err := New(Config{Hub: NewHub(), Joiner: &fakeController{}, Status: &fakeController{}, Admin: admin})
		if err != nil {
			t.Fatal(err)
		}
		// Independent of whether New registers the route already.
		mux := http.NewServeMux()
		for _, r := range h.secretRoutes() {
			mux.Handle(r.pattern, h.serve(r.fn))
		}
		return mux
	}
	with, without := serve(&secretController{}), serve(&fakeController{})
	for _, tc := range []struct {
		name, org string
		handler   http.Handler
		status    int
		want      string
	}{
		{"list", api.GroupAdmins, with, 200, `[{"namespace":"default","name":"db","type":"Opaque","vault":{"engine":"kv","path":"secret/data/db"},"commit":""}]` + "\n"},
		{"needs admin", api.GroupNodes, with, 403, ""},
		{"not served", api.GroupAdmins, without, 501, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tc.handler.ServeHTTP(w, asSubject(httptest.NewRequest("GET", api.PathSecrets, nil), tc.org))
			if w.Code != tc.status || (tc.want != "" && w.Body.String() != tc.want) {
				t.Errorf("got %d %s; want %d %s", w.Code, w.Body.String(), tc.status, tc.want)
			}
		})
	}
}
