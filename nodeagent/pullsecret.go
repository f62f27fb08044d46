package nodeagent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"
)

// RegistryCredential is a user name and password for one image registry,
// taken from a pod's imagePullSecrets.
type RegistryCredential struct {
	// Host is the registry as image references name it: "host[:port]",
	// "docker.io" for Docker Hub.
	Host     string
	Username string
	Password string
}

// String names the credential without its password, so it is safe in logs
// and errors.
func (c RegistryCredential) String() string {
	return fmt.Sprintf("user %q at %s", c.Username, c.Host)
}

// GoString keeps %#v from printing the password.
func (c RegistryCredential) GoString() string { return c.String() }

// CredentialPuller is a Runtime that can authenticate to a registry. It is
// optional: the image hook uses it for pods with imagePullSecrets and falls
// back to PullImage when the runtime lacks it.
type CredentialPuller interface {
	// PullImageWithCredentials is PullImage, answering the registry's
	// authentication challenge with cred. A zero cred pulls anonymously.
	// A registry refusing the pull for lack of (valid) credentials gives an
	// error wrapping errdefs.ErrUnauthenticated.
	PullImageWithCredentials(ctx context.Context, ref string, cred RegistryCredential) error
}

// Secret types and keys of image pull secrets, as Kubernetes names them.
const (
	secretTypeDockerConfigJSON = string(corev1.SecretTypeDockerConfigJson)
	secretKeyDockerConfigJSON  = corev1.DockerConfigJsonKey
	secretTypeDockercfg        = string(corev1.SecretTypeDockercfg)
	secretKeyDockercfg         = corev1.DockerConfigKey
)

// dockerConfigEntry is one registry of a docker config file.
type dockerConfigEntry struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Auth is base64("username:password"); it wins over the fields above,
	// as in Docker.
	Auth string `json:"auth"`
}

// registryCredentials parses an image pull secret's data: a
// kubernetes.io/dockerconfigjson Secret ({"auths":{host:{...}}}) or a
// legacy kubernetes.io/dockercfg one ({host:{...}}). Errors never quote the
// data.
func registryCredentials(secretType string, data map[string][]byte) ([]RegistryCredential, error) {
	var auths map[string]dockerConfigEntry
	switch secretType {
	case secretTypeDockerConfigJSON:
		b, ok := data[secretKeyDockerConfigJSON]
		if !ok {
			return nil, fmt.Errorf("type %s needs the key %s: %w", secretType, secretKeyDockerConfigJSON, errdefs.ErrInvalidArgument)
		}
		var doc struct {
			Auths map[string]dockerConfigEntry `json:"auths"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("key %s is not a docker config JSON document (%s): %w", secretKeyDockerConfigJSON, jsonErrorClass(err), errdefs.ErrInvalidArgument)
		}
		auths = doc.Auths
	case secretTypeDockercfg:
		b, ok := data[secretKeyDockercfg]
		if !ok {
			return nil, fmt.Errorf("type %s needs the key %s: %w", secretType, secretKeyDockercfg, errdefs.ErrInvalidArgument)
		}
		if err := json.Unmarshal(b, &auths); err != nil {
			return nil, fmt.Errorf("key %s is not a dockercfg JSON document (%s): %w", secretKeyDockercfg, jsonErrorClass(err), errdefs.ErrInvalidArgument)
		}
	default:
		return nil, fmt.Errorf("type %q is not an image pull secret type; use %s: %w", secretType, secretTypeDockerConfigJSON, errdefs.ErrInvalidArgument)
	}
	servers := make([]string, 0, len(auths))
	for server := range auths {
		servers = append(servers, server)
	}
	sort.Strings(servers) // one order when two keys name the same host
	var out []RegistryCredential
	for _, server := range servers {
		e := auths[server]
		c := RegistryCredential{Host: registryHost(server), Username: e.Username, Password: e.Password}
		if e.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return nil, fmt.Errorf("registry %s: auth is not base64: %w", c.Host, errdefs.ErrInvalidArgument)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("registry %s: auth is not base64 of username:password: %w", c.Host, errdefs.ErrInvalidArgument)
			}
			c.Username, c.Password = user, pass
		}
		if c.Host != "" {
			out = append(out, c)
		}
	}
	return out, nil
}

// jsonErrorClass describes a JSON error without quoting the input (a
// syntax error's message can carry a piece of it).
func jsonErrorClass(err error) string {
	switch err.(type) {
	case *json.SyntaxError:
		return "syntax error"
	case *json.UnmarshalTypeError:
		return "wrong structure"
	}
	return "invalid"
}

// registryHost normalises a docker config server key ("host:port",
// "https://host/v1/", "index.docker.io") to the host of image references.
func registryHost(server string) string {
	s := server
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		s = u.Host
	} else if host, _, ok := strings.Cut(s, "/"); ok {
		s = host
	}
	s = strings.ToLower(s)
	switch s {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return s
}

// imageRegistryHost is the registry host of an image reference,
// "docker.io" for Docker Hub images.
func imageRegistryHost(ref string) (string, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	return strings.ToLower(reference.Domain(named)), nil
}

// credentialFor returns the first credential for host.
func credentialFor(creds []RegistryCredential, host string) (RegistryCredential, bool) {
	for _, c := range creds {
		if c.Host == host {
			return c, true
		}
	}
	return RegistryCredential{}, false
}
