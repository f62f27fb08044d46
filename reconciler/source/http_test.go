package source

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

const httpBackend = "/usr/lib/git-core/git-http-backend"

// hangingServer accepts requests and never answers until the client gives
// up.
func hangingServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv
}

// gitHTTPS serves u's bare repository over TLS through git-http-backend,
// requiring basic auth user/token.
func gitHTTPS(t *testing.T, u *upstream, user, token string) (url, caFile string) {
	t.Helper()
	if _, err := os.Stat(httpBackend); err != nil {
		t.Skipf("%s not installed (Debian package git)", httpBackend)
	}
	backend := &cgi.Handler{
		Path: httpBackend,
		Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Dir(u.bare), "GIT_HTTP_EXPORT_ALL=1"},
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gotUser, gotPass, ok := r.BasicAuth(); !ok || gotUser != user || gotPass != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL + "/" + filepath.Base(u.bare), caFile
}

func TestFetchHTTPSWithToken(t *testing.T) {
	u := newUpstream(t)
	c1 := u.commit("main", "first", map[string]string{"deploy/a.yaml": "a\n"})
	url, caFile := gitHTTPS(t, u, defaultTokenUser, "s3cret")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := u.newSource(func(c *Config) {
		c.URL, c.TokenFile, c.CAFile, c.Path = url, tokenFile, caFile, "deploy"
	})
	if _, _, err := s.Fetch(context.Background()); err == nil {
		t.Fatal("Fetch with a wrong token succeeded")
	}
	// The token file is re-read on every Fetch.
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustFetch(t, s, c1, true)
	mustFetch(t, s, c1, false)
	c2 := u.commit("main", "second", map[string]string{"deploy/b.yaml": "b\n"})
	mustFetch(t, s, c2, true)
	if n := s.fetches.Load(); n != 2 {
		t.Errorf("downloads = %d, want 2", n)
	}
	files, err := s.Files(context.Background(), c2)
	if err != nil || len(files) != 2 {
		t.Errorf("Files = %q, %v", files, err)
	}
}
