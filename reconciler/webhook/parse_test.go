package webhook

import (
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/containerd/errdefs"
)

func TestSignKnownAnswer(t *testing.T) {
	// From GitHub's "Validating webhook deliveries" documentation.
	const secret, body = "It's a Secret to Everybody", "Hello, World!"
	const want = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := Sign(secret, []byte(body)); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	h := http.Header{}
	h.Set("X-Hub-Signature-256", "sha256="+want)
	if err := specs[GitHub].verify(h, []byte(body), secret); err != nil {
		t.Fatalf("verify known answer: %v", err)
	}
	if err := specs[GitHub].verify(h, []byte(body+" "), secret); !errdefs.IsUnauthorized(err) {
		t.Fatalf("verify tampered body: err = %v, want unauthorized", err)
	}
}

func TestVerifiers(t *testing.T) {
	const secret = "s3cret"
	body := []byte(`{"ref":"refs/heads/main"}`)
	good := Sign(secret, body)
	tests := []struct {
		name   string
		p      Provider
		header map[string]string
		ok     bool
	}{
		{"github ok", GitHub, map[string]string{"X-Hub-Signature-256": "sha256=" + good}, true},
		{"github sha1 header only", GitHub, map[string]string{"X-Hub-Signature": "sha1=" + good[:40]}, false},
		{"github no prefix", GitHub, map[string]string{"X-Hub-Signature-256": good}, false},
		{"github not hex", GitHub, map[string]string{"X-Hub-Signature-256": "sha256=zz"}, false},
		{"github short", GitHub, map[string]string{"X-Hub-Signature-256": "sha256=" + good[:10]}, false},
		{"github missing", GitHub, nil, false},
		{"gitlab ok", GitLab, map[string]string{"X-Gitlab-Token": secret}, true},
		{"gitlab wrong", GitLab, map[string]string{"X-Gitlab-Token": secret + "x"}, false},
		{"gitlab missing", GitLab, nil, false},
		{"gitea ok", Gitea, map[string]string{"X-Gitea-Signature": good}, true},
		{"gitea prefixed", Gitea, map[string]string{"X-Gitea-Signature": "sha256=" + good}, false},
		{"gitea wrong", Gitea, map[string]string{"X-Gitea-Signature": Sign("other", body)}, false},
		{"forgejo ok", Forgejo, map[string]string{"X-Forgejo-Signature": good}, true},
		{"forgejo via gitea header", Forgejo, map[string]string{"X-Gitea-Signature": good}, true},
		{"forgejo missing", Forgejo, nil, false},
		{"bitbucket ok", Bitbucket, map[string]string{"X-Hub-Signature": "sha256=" + good}, true},
		{"bitbucket wrong", Bitbucket, map[string]string{"X-Hub-Signature": "sha256=" + Sign("x", body)}, false},
		{"generic ok", Generic, map[string]string{"X-Moor-Signature": "sha256=" + good}, true},
		{"generic missing", Generic, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			err := specs[tt.p].verify(h, body, secret)
			if tt.ok && err != nil {
				t.Fatalf("verify: %v", err)
			}
			if !tt.ok && !errdefs.IsUnauthorized(err) {
				t.Fatalf("verify: err = %v, want unauthorized", err)
			}
		})
	}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// parseCases are deliveries in each provider's real format and the events
// they must parse to. The fuzz targets use them as seeds.
var parseCases = []struct {
	name   string
	p      Provider
	header http.Header
	file   string
	want   Event
}{
	{"github push", GitHub, hdr("X-GitHub-Event", "push", "X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"), "github-push.json",
		Event{Provider: GitHub, Kind: KindPush, Name: "push", Delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958", Repo: "acme/deploy", Pusher: "alice",
			Changes: []Change{{Ref: "refs/heads/main", Before: "6113728f27ae82c7b1a177c8d03f9e96e0adf246", After: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"}}}},
	{"github tag", GitHub, hdr("X-GitHub-Event", "push", "X-GitHub-Delivery", "d1"), "github-push-tag.json",
		Event{Provider: GitHub, Kind: KindTag, Name: "push", Delivery: "d1", Repo: "acme/deploy", Pusher: "alice",
			Changes: []Change{{Ref: "refs/tags/v1.2.0", Before: "0000000000000000000000000000000000000000", After: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"}}}},
	{"github branch deleted", GitHub, hdr("X-GitHub-Event", "push"), "github-delete.json",
		Event{Provider: GitHub, Kind: KindPush, Name: "push", Repo: "acme/deploy", Pusher: "alice",
			Changes: []Change{{Ref: "refs/heads/main", Before: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", Deleted: true}}}},
	{"github ping", GitHub, hdr("X-GitHub-Event", "ping", "X-GitHub-Delivery", "d2"), "github-ping.json",
		Event{Provider: GitHub, Kind: KindPing, Name: "ping", Delivery: "d2"}},
	{"github other event", GitHub, hdr("X-GitHub-Event", "issues"), "github-ping.json",
		Event{Provider: GitHub, Kind: KindOther, Name: "issues"}},
	{"gitlab push", GitLab, hdr("X-Gitlab-Event", "Push Hook", "Idempotency-Key", "908a6d9e-45fd-46c8-97e6-c4f350f219dd", "X-Gitlab-Event-UUID", "e1"), "gitlab-push.json",
		Event{Provider: GitLab, Kind: KindPush, Name: "Push Hook", Delivery: "908a6d9e-45fd-46c8-97e6-c4f350f219dd", Repo: "ops/deploy", Pusher: "jsmith",
			Changes: []Change{{Ref: "refs/heads/main", Before: "95790bf891e76fee5e1747ab589903a6a1f80f22", After: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}}}},
	{"gitlab tag push", GitLab, hdr("X-Gitlab-Event", "Tag Push Hook", "X-Gitlab-Event-UUID", "e2"), "gitlab-tag-push.json",
		Event{Provider: GitLab, Kind: KindTag, Name: "Tag Push Hook", Delivery: "e2", Repo: "ops/deploy", Pusher: "jsmith",
			Changes: []Change{{Ref: "refs/tags/v1.0.0", Before: "0000000000000000000000000000000000000000", After: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"}}}},
	{"gitlab merge request", GitLab, hdr("X-Gitlab-Event", "Merge Request Hook"), "gitlab-push.json",
		Event{Provider: GitLab, Kind: KindOther, Name: "Merge Request Hook"}},
	{"gitea push", Gitea, hdr("X-Gitea-Event", "push", "X-Gitea-Delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473"), "gitea-push.json",
		Event{Provider: Gitea, Kind: KindPush, Name: "push", Delivery: "f6266f16-1bf3-46a5-9ea4-602e06ead473", Repo: "ops/deploy", Pusher: "bob",
			Changes: []Change{{Ref: "refs/heads/main", Before: "28e1879d029cb852e4844d9c718537df08844e03", After: "bffeb74224043ba2feb48d137756c8a9331c449a"}}}},
	{"gitea create", Gitea, hdr("X-Gitea-Event", "create"), "gitea-push.json",
		Event{Provider: Gitea, Kind: KindOther, Name: "create"}},
	{"forgejo push", Forgejo, hdr("X-Forgejo-Event", "push", "X-Forgejo-Delivery", "9b7e0b8c", "X-Gitea-Delivery", "9b7e0b8c"), "forgejo-push.json",
		Event{Provider: Forgejo, Kind: KindPush, Name: "push", Delivery: "9b7e0b8c", Repo: "ops/deploy", Pusher: "carol",
			Changes: []Change{{Ref: "refs/heads/staging", Before: "28e1879d029cb852e4844d9c718537df08844e03", After: "bffeb74224043ba2feb48d137756c8a9331c449a"}}}},
	{"bitbucket cloud push", Bitbucket, hdr("X-Event-Key", "repo:push", "X-Request-UUID", "b1", "X-Hook-UUID", "hook"), "bitbucket-cloud-push.json",
		Event{Provider: Bitbucket, Kind: KindPush, Name: "repo:push", Delivery: "b1", Repo: "acme/deploy", Pusher: "dana",
			Changes: []Change{
				{Ref: "refs/heads/main", Before: "4cdb2a4ba0e1e3d33b9cb6e7d6ac0e2b1e2c5a1f", After: "10f2c18af0c2daf86d429c22f6a8c34d8a6ab911"},
				{Ref: "refs/tags/v2.0.0", After: "10f2c18af0c2daf86d429c22f6a8c34d8a6ab911"},
			}}},
	{"bitbucket server refs changed", Bitbucket, hdr("X-Event-Key", "repo:refs_changed", "X-Request-Id", "b2"), "bitbucket-server-refs-changed.json",
		Event{Provider: Bitbucket, Kind: KindPush, Name: "repo:refs_changed", Delivery: "b2", Repo: "OPS/deploy", Pusher: "erin",
			Changes: []Change{
				{Ref: "refs/heads/feature/probe", Before: "0000000000000000000000000000000000000000", After: "4a24622fd85f304770079a8b4dbf9566ea1928c5"},
				{Ref: "refs/heads/main", Before: "ecddabb624f6f5ba43816f5926e580a5f680a932", After: "178864a7d521b6f5e720b386b2c2b0ef8563e0dc"},
			}}},
	{"bitbucket server ping", Bitbucket, hdr("X-Event-Key", "diagnostics:ping", "X-Request-Id", "b3"), "bitbucket-server-ping.json",
		Event{Provider: Bitbucket, Kind: KindPing, Name: "diagnostics:ping", Delivery: "b3"}},
	{"bitbucket pull request", Bitbucket, hdr("X-Event-Key", "pullrequest:created"), "bitbucket-server-ping.json",
		Event{Provider: Bitbucket, Kind: KindOther, Name: "pullrequest:created"}},
	{"generic push", Generic, hdr("X-Moor-Delivery", "g1"), "generic-push.json",
		Event{Provider: Generic, Kind: KindPush, Name: "push", Delivery: "g1", Repo: "acme/deploy", Pusher: "ci",
			Changes: []Change{{Ref: "refs/heads/main", After: "5f1c8a3e9b2d4c6a7e8f0a1b2c3d4e5f6a7b8c9d"}}}},
}

func TestParse(t *testing.T) {
	for _, tt := range parseCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := specs[tt.p].parse(tt.header, readTestdata(t, tt.file))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parse:\n got  %+v\n want %+v", got, tt.want)
			}
		})
	}
}

func TestParseSmall(t *testing.T) {
	tests := []struct {
		name    string
		p       Provider
		header  http.Header
		body    string
		want    Event
		invalid bool
	}{
		{"generic empty body is fetch now", Generic, nil, "", Event{Provider: Generic, Kind: KindPush, Name: "push"}, false},
		{"generic bare branch name", Generic, nil, `{"ref":"main"}`,
			Event{Provider: Generic, Kind: KindPush, Name: "push", Changes: []Change{{Ref: "refs/heads/main"}}}, false},
		{"generic ping", Generic, hdr("X-Moor-Event", "ping"), "", Event{Provider: Generic, Kind: KindPing, Name: "ping"}, false},
		{"generic not json", Generic, nil, "ref=main", Event{}, true},
		{"gitlab deleted branch", GitLab, hdr("X-Gitlab-Event", "Push Hook"),
			`{"object_kind":"push","ref":"refs/heads/main","before":"95790bf891e76fee5e1747ab589903a6a1f80f22","after":"0000000000000000000000000000000000000000","checkout_sha":null}`,
			Event{Provider: GitLab, Kind: KindPush, Name: "Push Hook", Changes: []Change{{Ref: "refs/heads/main", Before: "95790bf891e76fee5e1747ab589903a6a1f80f22", Deleted: true}}}, false},
		{"gitlab system hook for a project", GitLab, hdr("X-Gitlab-Event", "System Hook"), `{"event_name":"project_create"}`,
			Event{Provider: GitLab, Kind: KindOther, Name: "System Hook"}, false},
		{"bitbucket cloud deleted branch", Bitbucket, hdr("X-Event-Key", "repo:push"),
			`{"push":{"changes":[{"old":{"type":"branch","name":"main","target":{"hash":"abc"}},"new":null}]}}`,
			Event{Provider: Bitbucket, Kind: KindPush, Name: "repo:push", Changes: []Change{{Ref: "refs/heads/main", Before: "abc", Deleted: true}}}, false},
		{"bitbucket server delete", Bitbucket, hdr("X-Event-Key", "repo:refs_changed"),
			`{"changes":[{"ref":{"id":"refs/heads/main"},"fromHash":"abc","toHash":"0000000000000000000000000000000000000000","type":"DELETE"}]}`,
			Event{Provider: Bitbucket, Kind: KindPush, Name: "repo:refs_changed", Changes: []Change{{Ref: "refs/heads/main", Before: "abc", Deleted: true}}}, false},
		{"github no event header", GitHub, nil, `{}`, Event{}, true},
		{"github push without ref", GitHub, hdr("X-GitHub-Event", "push"), `{"after":"abc"}`, Event{}, true},
		{"github push not json", GitHub, hdr("X-GitHub-Event", "push"), `{`, Event{}, true},
		{"gitlab push without ref", GitLab, hdr("X-Gitlab-Event", "Push Hook"), `{"object_kind":"push"}`, Event{}, true},
		{"gitea no event header", Gitea, nil, `{}`, Event{}, true},
		{"bitbucket cloud no changes", Bitbucket, hdr("X-Event-Key", "repo:push"), `{"push":{"changes":[]}}`, Event{}, true},
		{"bitbucket cloud change without sides", Bitbucket, hdr("X-Event-Key", "repo:push"), `{"push":{"changes":[{}]}}`, Event{}, true},
		{"bitbucket server change without ref", Bitbucket, hdr("X-Event-Key", "repo:refs_changed"), `{"changes":[{"toHash":"abc"}]}`, Event{}, true},
		{"bitbucket no event key", Bitbucket, nil, `{}`, Event{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.header == nil {
				tt.header = http.Header{}
			}
			got, err := specs[tt.p].parse(tt.header, []byte(tt.body))
			if tt.invalid {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("parse: err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parse:\n got  %+v\n want %+v", got, tt.want)
			}
		})
	}
}
