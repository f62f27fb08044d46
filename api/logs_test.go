package api

import (
	"encoding/json"
	"net/url"
	"reflect"
	"testing"
)

func TestLogRequestQueryRoundTrip(t *testing.T) {
	ten := int64(10)
	zero := int64(0)
	for _, r := range []LogRequest{
		{Namespace: "default", Pod: "web-1"},
		{Namespace: "ops", Pod: "job-0-abcde", Container: "main", Follow: true, TailLines: &ten, Previous: true, Timestamps: true},
		{Namespace: "default", Pod: "p", TailLines: &zero},
	} {
		got, err := ParseLogRequest(r.Query())
		if err != nil {
			t.Fatalf("%v: %v", r.Query(), err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip of %+v gave %+v", r, got)
		}
	}
}

func TestParseLogRequest(t *testing.T) {
	for _, tc := range []struct {
		query   string
		want    LogRequest
		wantErr bool
	}{
		{query: "pod=web", want: LogRequest{Namespace: "default", Pod: "web"}},
		{query: "pod=web&follow=1&previous=false", want: LogRequest{Namespace: "default", Pod: "web", Follow: true}},
		{query: "namespace=x", wantErr: true},
		{query: "pod=web&follow=yes", wantErr: true},
		{query: "pod=web&tailLines=-1", wantErr: true},
		{query: "pod=web&tailLines=ten", wantErr: true},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseLogRequest(q)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: error %v, want error %t", tc.query, err, tc.wantErr)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.query, got, tc.want)
		}
	}
}

// The wire shape of a session request is flat, as agents of any version read it.
func TestSessionRequestJSON(t *testing.T) {
	n := int64(5)
	b, err := json.Marshal(SessionRequest{ID: "abc", Kind: SessionKindLogs,
		LogRequest: LogRequest{Namespace: "default", Pod: "web", Follow: true, TailLines: &n}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"abc","kind":"logs","namespace":"default","pod":"web","follow":true,"tailLines":5}`
	if string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
}
