package nodeagent

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/moor-dev/moor/api"
)

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	empty, err := loadState(dir)
	if err != nil || len(empty.Desired) != 0 || empty.Containers == nil || empty.Pods == nil {
		t.Fatalf("missing file: %+v, %v", empty, err)
	}
	doc := api.NodeDesired{Node: "n1", Commit: "abc", Pods: []api.Pod{testPod("web", "1111aaaa", "", "app")}}
	body, digest, err := doc.Encode()
	if err != nil {
		t.Fatal(err)
	}
	st := newState()
	st.Desired, st.Digest = body, digest
	st.Containers["x"] = containerRecord{PodUID: "u", SpecHash: "h", RestartCount: 2, LastTermination: &termination{ExitCode: 1, Reason: "Error", FinishedAt: t0}}
	st.Pods["u"] = podRecord{StartTime: t0}
	b, err := st.encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := writeState(dir, b); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, stateFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode: %v %v", fi, err)
	}
	got, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, st)
	}
	d, err := got.desired()
	if err != nil || d.Commit != "abc" || len(d.Pods) != 1 {
		t.Errorf("desired: %+v %v", d, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left behind: %v", ents)
	}
}

func TestDecodeStateRejects(t *testing.T) {
	doc := api.NodeDesired{Node: "n1"}
	body, _, _ := doc.Encode()
	for name, in := range map[string]string{
		"not json":        `{`,
		"wrong version":   `{"version": 7}`,
		"digest mismatch": `{"version":1,"desired":"` + b64(body) + `","digest":"sha256:00"}`,
	} {
		if _, err := decodeState([]byte(in)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func FuzzDecodeState(f *testing.F) {
	st := newState()
	st.Containers["x"] = containerRecord{PodUID: "u", NextAttempt: t0.Add(time.Second)}
	b, _ := st.encode()
	f.Add(b)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b)
		if err != nil {
			return
		}
		if st.Containers == nil || st.Pods == nil {
			t.Fatal("decoded state has nil maps")
		}
		if _, err := st.desired(); err != nil {
			t.Fatalf("decoded state has a bad document: %v", err)
		}
	})
}
