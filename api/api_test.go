package api

import (
	"bytes"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestEncodeIsCanonical(t *testing.T) {
	a := &NodeDesired{Node: "n1", Commit: "c", Pods: []Pod{
		{Namespace: "b", Name: "x", Labels: map[string]string{"z": "1", "a": "2"}},
		{Namespace: "a", Name: "y", Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}},
	}}
	b := &NodeDesired{Node: "n1", Commit: "c", Pods: []Pod{a.Pods[1], a.Pods[0]}}
	ab, ad, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	bb, bd, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ab, bb) || ad != bd {
		t.Fatalf("same pods in another order encode differently:\n%s\n%s", ab, bb)
	}
	if a.Pods[0].Namespace != "b" {
		t.Fatal("Encode reordered its input")
	}
	got, err := DecodeNodeDesired(ab, ad)
	if err != nil {
		t.Fatal(err)
	}
	if got.Pods[0].Namespace != "a" || got.Kind != KindNodeDesired {
		t.Fatalf("decoded %+v", got)
	}
	empty, _, _ := (&NodeDesired{Node: "n"}).Encode()
	if !bytes.Contains(empty, []byte(`"pods":[]`)) {
		t.Fatalf("empty node encodes as %s", empty)
	}
}

func TestDecodeNodeDesiredRejects(t *testing.T) {
	good, digest, _ := (&NodeDesired{Node: "n"}).Encode()
	for name, tc := range map[string]struct {
		body   []byte
		digest string
		want   string
	}{
		"digest mismatch": {good, Digest([]byte("other")), "digest mismatch"},
		"unknown field":   {[]byte(`{"apiVersion":"moor.dev/v1","kind":"NodeDesired","extra":1}`), "", "unknown field"},
		"wrong kind":      {[]byte(`{"apiVersion":"moor.dev/v1","kind":"Other"}`), "", "want moor.dev/v1 NodeDesired"},
		"not json":        {[]byte(`{`), "", "decode desired state"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeNodeDesired(tc.body, tc.digest)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := DecodeNodeDesired(good, digest); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecodeNodeDesired(f *testing.F) {
	good, _, _ := (&NodeDesired{Node: "n", Pods: []Pod{{Namespace: "a", Name: "b"}}}).Encode()
	f.Add(good)
	f.Add([]byte(`{"apiVersion":"moor.dev/v1","kind":"NodeDesired","pods":null}`))
	f.Add([]byte(`{"apiVersion":"moor.dev/v1","kind":"NodeDesired","pods":[],"network":{"podCIDR":"10.244.0.0/24","clusterCIDR":"10.244.0.0/16","serviceCIDR":"10.96.0.0/12","dnsDomain":"cluster.local","dnsServiceIP":"10.96.0.10","peers":[{"name":"b","nodeIP":"10.0.0.2","podCIDR":"10.244.1.0/24"}]},` +
		`"services":[{"namespace":"a","name":"s","type":"NodePort","clusterIP":"10.96.0.1","sessionAffinity":"None","ports":[{"name":"p","protocol":"TCP","port":80,"nodePort":30080}],"endpoints":[{"pod":"x","ip":"10.244.0.2","node":"a","ready":true,"ports":{"p":8080}}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeNodeDesired(b, "")
		if err != nil {
			return
		}
		// Whatever decodes re-encodes canonically and stably.
		e1, d1, err := d.Encode()
		if err != nil {
			t.Fatal(err)
		}
		d2, err := DecodeNodeDesired(e1, d1)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		e2, _, _ := d2.Encode()
		if !bytes.Equal(e1, e2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", e1, e2)
		}
	})
}

func TestToken(t *testing.T) {
	tok := Token{CAHash: CAHash([]byte("ca")), Secret: "0123456789abcdef0123"}
	got, err := ParseToken(" " + tok.String() + "\n")
	if err != nil || got != tok {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	for _, bad := range []string{"", "moor1.abc.def", "moor2." + tok.CAHash + "." + tok.Secret, "moor1." + tok.CAHash + ".short"} {
		if _, err := ParseToken(bad); err == nil {
			t.Errorf("ParseToken(%q) succeeded", bad)
		}
	}
	if !SecretEqual("a", "a") || SecretEqual("a", "b") {
		t.Fatal("SecretEqual")
	}
}

func TestClientConfig(t *testing.T) {
	c := NewAdminConfig("https://127.0.0.1:7443", []byte("CA"), []byte("CERT"), []byte("KEY"))
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseClientConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	r, err := parsed.Resolve("")
	if err != nil {
		t.Fatal(err)
	}
	if r.Cluster.Server != "https://127.0.0.1:7443" || string(r.User.ClientKeyData) != "KEY" || r.Namespace != "default" {
		t.Fatalf("resolved %+v", r)
	}
	if _, err := parsed.Resolve("nope"); err == nil {
		t.Fatal("unknown context resolved")
	}
	if _, err := ParseClientConfig(append(b, []byte("bogus: 1\n")...)); err == nil {
		t.Fatal("unknown field accepted")
	}
}
