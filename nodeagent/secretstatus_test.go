package nodeagent

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/moor-dev/moor/api"
)

func TestSecretStatuses(t *testing.T) {
	readAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := &api.NodeDesired{Secrets: []api.SecretRef{
		vaultRef("shop", "db", nil),
		plainRef("dev", "plain", "Opaque", "b", secretValue, "a", secretValue),
		vaultRef("shop", "never-read", nil),
		vaultRef("shop", "broken", nil),
	}}
	src := newFakeSource()
	src.status = []api.SecretStatus{
		{Namespace: "shop", Name: "db", Version: 7, Keys: []string{"username", "password"}, ReadAt: readAt},
		{Namespace: "shop", Name: "broken", Version: 2, Error: "permission denied"},
		{Namespace: "other", Name: "not-desired", Version: 1},
	}
	got := secretStatuses(d, src)
	want := []api.SecretStatus{
		{Namespace: "dev", Name: "plain", Keys: []string{"a", "b"}},
		{Namespace: "shop", Name: "broken", Version: 2, Error: "permission denied"},
		{Namespace: "shop", Name: "db", Version: 7, Keys: []string{"password", "username"}, ReadAt: readAt},
		{Namespace: "shop", Name: "never-read"},
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Errorf("got  %s\nwant %s", gb, wb)
	}
	if strings.Contains(string(gb), secretValue) {
		t.Error("status shows a value")
	}
	if src.status[0].Keys[0] != "username" {
		t.Error("secretStatuses sorted the source's slice in place")
	}
	if got := secretStatuses(d, nil); len(got) != 4 || got[2].Version != 0 {
		t.Errorf("without a source: %+v", got)
	}
	if got := secretStatuses(nil, src); got != nil {
		t.Errorf("no document: %+v", got)
	}
}
