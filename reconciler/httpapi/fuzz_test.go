package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/containerd/errdefs"
)

// FuzzDecodeStatus feeds arbitrary bodies to the status decoder: it must
// never panic, must classify every rejection as invalid input (a 400, never
// a 500), and what it accepts must survive a round trip.
func FuzzDecodeStatus(f *testing.F) {
	seeds := []string{
		`{"apiVersion":"moor.dev/v1","kind":"NodeStatus","node":"n1","desiredDigest":"sha256:00","commit":"abc","reportedAt":"2024-01-02T03:04:05Z","pods":[{"namespace":"default","name":"web-1","uid":"u","commit":"abc","status":{"phase":"Running","containerStatuses":[{"name":"c","ready":true,"restartCount":1,"image":"busybox","imageID":""}]}}]}`,
		`{"node":"n1"}`,
		`{"node":"n1","extra":1}`,
		`{"node":"n1"} []`,
		`{"node":"n1","pods":[{"status":{"conditions":[{"type":"Ready","status":"True","lastTransitionTime":null}]}}]}`,
		`{"node":"n1","reportedAt":"yesterday"}`,
		`null`,
		``,
		`{"node":"\u0000"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := decodeStatus(bytes.NewReader(body))
		if err != nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("rejection %v is not classified as invalid argument", err)
			}
			return
		}
		if s.Node == "" {
			t.Fatal("accepted a status without a node")
		}
		b, err := json.Marshal(&s)
		if err != nil {
			t.Fatalf("re-encode accepted status: %v", err)
		}
		if _, err := decodeStatus(bytes.NewReader(b)); err != nil {
			t.Fatalf("accepted status does not survive a round trip: %v\n%s", err, b)
		}
	})
}
