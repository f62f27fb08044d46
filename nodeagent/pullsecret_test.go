package nodeagent

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

func TestRegistryCredentials(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name, typ string
		data      map[string]string
		want      []RegistryCredential
		wantErr   bool
	}{
		{
			name: "dockerconfigjson username and password",
			typ:  secretTypeDockerConfigJSON,
			data: map[string]string{".dockerconfigjson": `{"auths":{"127.0.0.1:5000":{"username":"ci","password":"pw"}}}`},
			want: []RegistryCredential{{Host: "127.0.0.1:5000", Username: "ci", Password: "pw"}},
		},
		{
			name: "auth wins, URLs and Docker Hub aliases normalised, sorted",
			typ:  secretTypeDockerConfigJSON,
			data: map[string]string{".dockerconfigjson": `{"auths":{
				"https://index.docker.io/v1/":{"auth":"` + b64("hub:a:b") + `","username":"ignored"},
				"Reg.Example.com/v2/":{"username":"u","password":"p"}}}`},
			want: []RegistryCredential{
				{Host: "reg.example.com", Username: "u", Password: "p"},
				{Host: "docker.io", Username: "hub", Password: "a:b"},
			},
		},
		{
			name: "legacy dockercfg",
			typ:  secretTypeDockercfg,
			data: map[string]string{".dockercfg": `{"reg:443":{"auth":"` + b64("x:y") + `"}}`},
			want: []RegistryCredential{{Host: "reg:443", Username: "x", Password: "y"}},
		},
		{name: "wrong type", typ: "Opaque", data: map[string]string{".dockerconfigjson": `{}`}, wantErr: true},
		{name: "missing key", typ: secretTypeDockerConfigJSON, data: map[string]string{"x": "{}"}, wantErr: true},
		{name: "not JSON", typ: secretTypeDockerConfigJSON, data: map[string]string{".dockerconfigjson": `{"auths": secret-ish`}, wantErr: true},
		{name: "auth not base64", typ: secretTypeDockerConfigJSON, data: map[string]string{".dockerconfigjson": `{"auths":{"r":{"auth":"%%%"}}}`}, wantErr: true},
		{name: "auth without colon", typ: secretTypeDockerConfigJSON, data: map[string]string{".dockerconfigjson": `{"auths":{"r":{"auth":"` + b64("nocolon") + `"}}}`}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := map[string][]byte{}
			for k, v := range tt.data {
				data[k] = []byte(v)
			}
			got, err := registryCredentials(tt.typ, data)
			if tt.wantErr {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err %v, want InvalidArgument", err)
				}
				if strings.Contains(err.Error(), "secret-ish") || strings.Contains(err.Error(), "nocolon") {
					t.Errorf("error %q quotes the data", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(got, func(a, b RegistryCredential) int { return strings.Compare(b.Host, a.Host) })
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRegistryCredentialHidesPassword(t *testing.T) {
	c := RegistryCredential{Host: "h", Username: "u", Password: "hunter2"}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("%q shows the password", s)
		}
	}
}

func TestImageRegistryHost(t *testing.T) {
	for ref, want := range map[string]string{
		"busybox":                   "docker.io",
		"127.0.0.1:5000/moor/app:1": "127.0.0.1:5000",
		"Reg.Example.com/a/b@sha256:0123456789012345678901234567890123456789012345678901234567890123": "reg.example.com",
	} {
		if got, err := imageRegistryHost(ref); err != nil || got != want {
			t.Errorf("imageRegistryHost(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
}

// credPuller is a CredentialPuller recording its pulls.
type credPuller struct {
	pulls []string // "ref" or "ref as user"
	err   error
}

func (p *credPuller) PullImage(_ context.Context, ref string) error {
	p.pulls = append(p.pulls, ref)
	return p.err
}

func (p *credPuller) PullImageWithCredentials(_ context.Context, ref string, c RegistryCredential) error {
	p.pulls = append(p.pulls, ref+" as "+c.Username+":"+c.Password+"@"+c.Host)
	return p.err
}

func TestImagePullHookCredentials(t *testing.T) {
	const image = "127.0.0.1:5000/shop/app:1"
	dockercfg := func(host, user string) string {
		return fmt.Sprintf(`{"auths":{%q:{"username":%q,"password":"pw"}}}`, host, user)
	}
	refs := []api.SecretRef{
		plainRef("shop", "hub", secretTypeDockerConfigJSON, ".dockerconfigjson", dockercfg("docker.io", "hubuser")),
		plainRef("shop", "local", secretTypeDockerConfigJSON, ".dockerconfigjson", dockercfg("127.0.0.1:5000", "ci")),
		plainRef("shop", "local2", secretTypeDockerConfigJSON, ".dockerconfigjson", dockercfg("127.0.0.1:5000", "second")),
		plainRef("shop", "opaque", "Opaque", "k", "v"),
		vaultRef("shop", "vault", nil),
	}
	sealed := fmt.Errorf("Vault is sealed: %w", errdefs.ErrUnavailable)
	tests := []struct {
		name       string
		secrets    []string
		pullErr    error
		wantPull   string
		wantReason string
		wantMsg    []string
	}{
		{name: "no pull secrets", wantPull: image},
		{name: "first matching secret", secrets: []string{"hub", "local", "local2"}, wantPull: image + " as ci:pw@127.0.0.1:5000"},
		{name: "no match pulls anonymously", secrets: []string{"hub"}, wantPull: image + " as :@"},
		{
			name: "unreadable secrets are skipped", secrets: []string{"vault", "missing", "opaque", "local"},
			wantPull: image + " as ci:pw@127.0.0.1:5000",
		},
		{
			name: "failed pull names the secrets' problems", secrets: []string{"vault", "opaque"},
			pullErr:  fmt.Errorf("registry requires authentication: %w", errdefs.ErrUnauthenticated),
			wantPull: image + " as :@", wantReason: reasonErrImagePull,
			wantMsg: []string{"requires authentication", `Secret "shop/vault" (Vault path "secret/data/shop/vault"): Vault is sealed`, `Secret "shop/opaque": type "Opaque"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource()
			src.fail("shop/vault", sealed)
			p := &credPuller{err: tt.pullErr}
			h := &imagePullHook{puller: p, secrets: &secretResolver{source: src, refs: func() []api.SecretRef { return refs }}}
			pod := &api.Pod{Namespace: "shop", Name: "web"}
			for _, s := range tt.secrets {
				pod.Spec.ImagePullSecrets = append(pod.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
			}
			req := &prestartRequest{Pod: pod, Container: &corev1.Container{Name: "app", Image: image}, Spec: &ContainerSpec{Image: image}}
			err := h.Prestart(context.Background(), req, &prestartResponse{})
			if len(p.pulls) != 1 || p.pulls[0] != tt.wantPull {
				t.Errorf("pulls %q, want [%q]", p.pulls, tt.wantPull)
			}
			if tt.wantReason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if reasonOf(err) != tt.wantReason || !errors.Is(err, tt.pullErr) {
				t.Fatalf("err %v, want %s wrapping the runtime's", err, tt.wantReason)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("message %q does not contain %q", err, m)
				}
			}
			if strings.Contains(err.Error(), "pw") {
				t.Errorf("message %q shows a password", err)
			}
		})
	}
}

func TestImagePullHookWithoutCredentialPuller(t *testing.T) {
	var pulled []string
	h := &imagePullHook{puller: pullerFunc(func(_ context.Context, ref string) error {
		pulled = append(pulled, ref)
		return nil
	})}
	pod := &api.Pod{Namespace: "shop", Spec: corev1.PodSpec{ImagePullSecrets: []corev1.LocalObjectReference{{Name: "x"}}}}
	req := &prestartRequest{Pod: pod, Container: &corev1.Container{Name: "app"}, Spec: &ContainerSpec{Image: "img:1"}}
	if err := h.Prestart(context.Background(), req, &prestartResponse{}); err != nil || !slices.Equal(pulled, []string{"img:1"}) {
		t.Errorf("err %v, pulled %v", err, pulled)
	}
}
