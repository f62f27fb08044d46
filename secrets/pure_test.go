package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

func TestConfigValidate(t *testing.T) {
	approle := &AppRoleAuth{RoleIDFile: "/r", SecretIDFile: "/s"}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // substring of the error; "" means valid
	}{
		{"approle", Config{Address: "https://vault:8200", Auth: AuthConfig{AppRole: approle}}, ""},
		{"token file", Config{Address: "http://127.0.0.1:8200", Auth: AuthConfig{TokenFile: "/t"}}, ""},
		{"ca file", Config{Address: "https://vault", CACertFile: "/ca.pem", Auth: AuthConfig{TokenFile: "/t"}}, ""},
		{"no address", Config{Auth: AuthConfig{TokenFile: "/t"}}, "address is empty"},
		{"bad scheme", Config{Address: "vault:8200", Auth: AuthConfig{TokenFile: "/t"}}, "want http(s)://host"},
		{"tls on http", Config{Address: "http://vault", TLSSkipVerify: true, Auth: AuthConfig{TokenFile: "/t"}}, "plain http"},
		{"ca and skip", Config{Address: "https://vault", CACertFile: "/ca", TLSSkipVerify: true, Auth: AuthConfig{TokenFile: "/t"}}, "keep one"},
		{"no auth", Config{Address: "https://vault"}, "set AppRole"},
		{"two auths", Config{Address: "https://vault", Auth: AuthConfig{AppRole: approle, TokenFile: "/t"}}, "keep one"},
		{"approle files", Config{Address: "https://vault", Auth: AuthConfig{AppRole: &AppRoleAuth{RoleIDFile: "/r"}}}, "secret ID file"},
		{"approle mount", Config{Address: "https://vault", Auth: AuthConfig{AppRole: &AppRoleAuth{RoleIDFile: "/r", SecretIDFile: "/s", MountPath: "auth/approle"}}}, "without auth/"},
		{"negative", Config{Address: "https://vault", PollInterval: -time.Second, Auth: AuthConfig{TokenFile: "/t"}}, "poll interval -1s is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	d := Config{Auth: AuthConfig{AppRole: &AppRoleAuth{}}}.withDefaults()
	if d.PollInterval != DefaultPollInterval || d.RequestTimeout != DefaultRequestTimeout || d.Auth.AppRole.MountPath != "approle" {
		t.Errorf("withDefaults() = %+v", d)
	}
}

func TestKVMetadataPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"secret/data/shop/db", "secret/metadata/shop/db"},
		{"kv/prod/data/app", "kv/prod/metadata/app"},
		{"data/data/x", "data/metadata/x"},
		{"secret/shop/db", ""},
		{"secret/data/", ""},
		{"/secret/data/x", ""},
		{"secret/data/x/", ""},
	} {
		got, err := kvMetadataPath(tc.in)
		if tc.want == "" {
			if err == nil || !errors.Is(err, ErrInvalid) || !errdefs.IsInvalidArgument(err) {
				t.Errorf("kvMetadataPath(%q) = %q, %v; want ErrInvalid", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("kvMetadataPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseKVData(t *testing.T) {
	v, err := parseKVData("p", decode(t, `{"data":{"u":"x"},"metadata":{"version":3,"deletion_time":"","destroyed":false}}`))
	if err != nil || v.Version != 3 || v.Deleted || v.Data["u"] != "x" {
		t.Errorf("live version: %+v, %v", v, err)
	}
	v, err = parseKVData("p", decode(t, `{"data":null,"metadata":{"version":4,"deletion_time":"2024-01-01T00:00:00Z","destroyed":false}}`))
	if err != nil || !v.Deleted || v.Version != 4 {
		t.Errorf("deleted version: %+v, %v", v, err)
	}
	v, err = parseKVData("p", decode(t, `{"data":null,"metadata":{"version":5,"deletion_time":"","destroyed":true}}`))
	if err != nil || !v.Deleted {
		t.Errorf("destroyed version: %+v, %v", v, err)
	}
	if _, err := parseKVData("secret/x", decode(t, `{"u":"x"}`)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "KV version 2") {
		t.Errorf("KV v1 answer: %v, want ErrInvalid naming KV version 2", err)
	}
	if n, err := parseCurrentVersion("m", decode(t, `{"current_version":7}`)); err != nil || n != 7 {
		t.Errorf("parseCurrentVersion = %d, %v", n, err)
	}
}

func TestMapKeys(t *testing.T) {
	src := decode(t, `{"user":"alice","pass":"s3cret","port":5432,"tags":["a","b"],"on":true,"none":null}`)
	got, err := mapKeys("secret/data/db", "version 2", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"user": "alice", "pass": "s3cret", "port": "5432", "tags": `["a","b"]`, "on": "true", "none": ""}
	for k, w := range want {
		if string(got[k]) != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d keys, want %d", len(got), len(want))
	}

	got, err = mapKeys("secret/data/db", "version 2", src, map[string]string{"username": "user", "password": "pass"})
	if err != nil || len(got) != 2 || string(got["username"]) != "alice" || string(got["password"]) != "s3cret" {
		t.Errorf("mapped = %q, %v", got, err)
	}

	_, err = mapKeys("secret/data/db", "version 2", src, map[string]string{"username": "user", "token": "tok"})
	var e *Error
	if !errors.Is(err, ErrKeyMissing) || !errdefs.IsNotFound(err) || !errors.As(err, &e) || e.Key != "tok" || e.Path != "secret/data/db" {
		t.Fatalf("missing key: %v, want ErrKeyMissing for tok at secret/data/db", err)
	}
	for _, s := range []string{"secret/data/db", `"tok"`, `"token"`, "vault.moor.dev/key.token", `"pass"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("message %q lacks %s", err, s)
		}
	}
	for _, v := range []string{"alice", "s3cret"} {
		if strings.Contains(err.Error(), v) {
			t.Errorf("message %q quotes a value", err)
		}
	}

	if _, err := mapKeys("secret/data/db", "version 1", decode(t, `{"bad key":"x"}`), nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid Secret key: %v, want ErrInvalid", err)
	}
	if got, err := mapKeys("p", "v", decode(t, `{"bad key":"x"}`), map[string]string{"good": "bad key"}); err != nil || string(got["good"]) != "x" {
		t.Errorf("mapping an odd Vault key: %q, %v", got, err)
	}
}

func TestCheckSource(t *testing.T) {
	for _, tc := range []struct {
		src api.VaultSource
		ok  bool
	}{
		{api.VaultSource{Engine: "kv", Path: "secret/data/x"}, true},
		{api.VaultSource{Engine: "kv", Path: "secret/data/x", Version: 3, Keys: map[string]string{"a": "b"}}, true},
		{api.VaultSource{Engine: "kv", Path: "secret/x"}, false},
		{api.VaultSource{Engine: "kv", Path: "secret/data/x", Version: -1}, false},
		{api.VaultSource{Engine: "kv", Path: "secret/data/x", Keys: map[string]string{"a b": "c"}}, false},
		{api.VaultSource{Engine: "kv", Path: "secret/data/x", Keys: map[string]string{"a": ""}}, false},
		{api.VaultSource{Engine: "lease", Path: "database/creds/app"}, true},
		{api.VaultSource{Engine: "lease"}, false},
		{api.VaultSource{Engine: "pki", Path: "pki/issue/x"}, false},
	} {
		_, err := checkSource(&tc.src)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("checkSource(%+v) = %v, want ok=%v", tc.src, err, tc.ok)
		}
	}
}

func TestClassify(t *testing.T) {
	ctx := context.Background()
	yes := true
	for _, tc := range []struct {
		name   string
		o      op
		status int
		sealed *bool
		class  error
		errdef func(error) bool
		msg    string
	}{
		{"unreachable", opRead, 0, nil, ErrUnavailable, errdefs.IsUnavailable, "unreachable"},
		{"not found", opRead, http.StatusNotFound, nil, ErrNotFound, errdefs.IsNotFound, "no secret at secret/data/x"},
		{"denied", opRead, http.StatusForbidden, nil, ErrPermissionDenied, errdefs.IsPermissionDenied, `policy must allow it (capability "read")`},
		{"denied renew", opRenewLease, http.StatusForbidden, nil, ErrPermissionDenied, errdefs.IsPermissionDenied, `"update"`},
		{"bad login", opLogin, http.StatusBadRequest, nil, ErrPermissionDenied, errdefs.IsPermissionDenied, "role ID and secret ID"},
		{"sealed", opRead, http.StatusServiceUnavailable, &yes, ErrUnavailable, errdefs.IsUnavailable, "is sealed"},
		{"503", opRead, http.StatusServiceUnavailable, nil, ErrUnavailable, errdefs.IsUnavailable, "unavailable"},
		{"500", opRead, http.StatusInternalServerError, nil, ErrUnavailable, errdefs.IsUnavailable, "unavailable"},
		{"429", opRead, http.StatusTooManyRequests, nil, ErrUnavailable, errdefs.IsUnavailable, "unavailable"},
		{"400", opRead, http.StatusBadRequest, nil, ErrInvalid, errdefs.IsInvalidArgument, "refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := classify(ctx, "http://v:8200", tc.o, "secret/data/x", tc.status, []string{"vault says no"}, errors.New("cause"), tc.sealed)
			if !errors.Is(err, tc.class) || !tc.errdef(err) {
				t.Fatalf("classify = %v, want class %v", err, tc.class)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "secret/data/x") {
				t.Errorf("message %q lacks %q or the path", err, tc.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("message %q has several lines", err)
			}
		})
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := classify(cctx, "a", opRead, "p", 0, nil, errors.New("x"), nil); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Errorf("cancelled: %v, want context.Canceled unclassified", err)
	}
}

func TestRenewalPlans(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name      string
		got, want renewal
	}{
		{"lease renewable", leaseRenewal(t0, 30*time.Second, 30*time.Second, true), renewal{t0.Add(20 * time.Second), true}},
		{"lease not renewable", leaseRenewal(t0, 30*time.Second, 30*time.Second, false), renewal{t0.Add(20 * time.Second), false}},
		{"lease near max ttl", leaseRenewal(t0, 9*time.Second, 30*time.Second, true), renewal{t0.Add(6 * time.Second), false}},
		{"lease no ttl", leaseRenewal(t0, 0, 0, true), renewal{}},
		{"token default", tokenRenewal(t0, 30*time.Minute, 30*time.Minute, true, 0), renewal{t0.Add(20 * time.Minute), true}},
		{"token renew-before", tokenRenewal(t0, 30*time.Minute, 30*time.Minute, true, 5*time.Minute), renewal{t0.Add(25 * time.Minute), true}},
		{"token renew-before too long", tokenRenewal(t0, 30*time.Second, 30*time.Second, true, time.Minute), renewal{t0.Add(20 * time.Second), true}},
		{"token near max", tokenRenewal(t0, 3*time.Second, 30*time.Second, true, 0), renewal{t0.Add(2 * time.Second), false}},
		{"token forever", tokenRenewal(t0, 0, 0, false, 0), renewal{}},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, tc.got, tc.want)
		}
	}
	for n, want := range []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second} {
		if got := backoff(n, 2*time.Second); got != want {
			t.Errorf("backoff(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestSetAndStatusWithoutVault(t *testing.T) {
	m, err := New(Config{Address: "http://127.0.0.1:1", Auth: AuthConfig{TokenFile: "/nonexistent"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Set([]api.SecretRef{
		{Namespace: "ns", Name: "plain", Data: map[string][]byte{"a": []byte("b")}},
		{Namespace: "ns", Name: "bad", Vault: &api.VaultSource{Engine: "kv", Path: "secret/nodata"}},
		{Namespace: "ns", Name: "ok", Vault: &api.VaultSource{Path: "secret/data/x"}},
	})
	st := m.Status()
	if len(st) != 2 || st[0].Name != "bad" || !strings.Contains(st[0].Error, "KV v2 read path") || st[1].Name != "ok" || st[1].Error != "" {
		t.Fatalf("Status() = %+v", st)
	}
	v, err := m.Get(context.Background(), api.SecretRef{Namespace: "ns", Name: "plain", Data: map[string][]byte{"a": []byte("b")}}, 0)
	if err != nil || string(v.Data["a"]) != "b" {
		t.Errorf("plain Get = %+v, %v", v, err)
	}
	_, err = m.Get(context.Background(), api.SecretRef{Namespace: "ns", Name: "bad", Vault: &api.VaultSource{Path: "secret/nodata"}}, 0)
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid Get = %v, want ErrInvalid", err)
	}
	_, err = m.Get(context.Background(), api.SecretRef{Namespace: "ns", Name: "ok", Vault: &api.VaultSource{Path: "secret/data/x"}}, 0)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "token file") {
		t.Errorf("Get with an unreadable token file = %v, want ErrInvalid naming the token file", err)
	}
	m.Set(nil)
	if st := m.Status(); len(st) != 0 {
		t.Errorf("Status after Set(nil) = %+v", st)
	}
}

func TestHTTPErrorOneLine(t *testing.T) {
	e := &httpError{status: 403, errs: []string{"1 error occurred:\n\t* permission denied\n\n"}}
	if got := e.Error(); got != "HTTP 403: permission denied" {
		t.Errorf("got %q", got)
	}
	e = &httpError{status: 500, errs: []string{"2 errors occurred:\n\t* a\n\t* b\n\n", "c"}}
	if got := e.Error(); got != "HTTP 500: 2 errors occurred: * a * b; c" {
		t.Errorf("got %q", got)
	}
}

// FuzzKVAnswer feeds Vault KV answers (outside input) through parsing and
// key mapping: no panic, and a success holds only valid Secret keys.
func FuzzKVAnswer(f *testing.F) {
	f.Add(`{"data":{"u":"x","n":1},"metadata":{"version":3,"deletion_time":"","destroyed":false}}`, "u")
	f.Add(`{"data":null,"metadata":{"version":"4","deletion_time":"t"}}`, "")
	f.Add(`{"metadata":{"version":1.5},"data":{"a b":[1,{"c":null}]}}`, "a b")
	f.Fuzz(func(t *testing.T, answer, mapped string) {
		var d map[string]any
		dec := json.NewDecoder(strings.NewReader(answer))
		dec.UseNumber()
		if dec.Decode(&d) != nil {
			return
		}
		v, err := parseKVData("secret/data/x", d)
		if err != nil || v.Deleted {
			return
		}
		var keys map[string]string
		if mapped != "" {
			keys = map[string]string{"k": mapped}
		}
		out, err := mapKeys("secret/data/x", "version 1", v.Data, keys)
		if err != nil {
			return
		}
		for k := range out {
			if !secretKeyRE.MatchString(k) {
				t.Fatalf("invalid Secret key %q accepted", k)
			}
		}
	})
}
