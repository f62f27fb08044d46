package api

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// KindConfig is the kind of a client configuration file.
const KindConfig = "Config"

// ClientConfig is the CLI's configuration, shaped like a kubeconfig:
// clusters, users and contexts, one of which is current. The server writes
// one for its admin to <data-dir>/admin.conf; the CLI reads --config,
// $MOOR_CONFIG or ~/.moor/config.
type ClientConfig struct {
	APIVersion     string         `json:"apiVersion"`
	Kind           string         `json:"kind"`
	CurrentContext string         `json:"current-context"`
	Clusters       []NamedCluster `json:"clusters"`
	Users          []NamedUser    `json:"users"`
	Contexts       []NamedContext `json:"contexts"`
}

// NamedCluster is a server and the CA that signed its certificate.
type NamedCluster struct {
	Name    string  `json:"name"`
	Cluster Cluster `json:"cluster"`
}

// Cluster is where a moor server listens.
type Cluster struct {
	Server                   string `json:"server"`
	CertificateAuthorityData []byte `json:"certificate-authority-data"` // PEM
}

// NamedUser is a client credential.
type NamedUser struct {
	Name string `json:"name"`
	User User   `json:"user"`
}

// User is a client certificate and key.
type User struct {
	ClientCertificateData []byte `json:"client-certificate-data"` // PEM
	ClientKeyData         []byte `json:"client-key-data"`         // PEM
}

// NamedContext pairs a cluster with a user.
type NamedContext struct {
	Name    string  `json:"name"`
	Context Context `json:"context"`
}

// Context is a cluster, a user and a default namespace.
type Context struct {
	Cluster   string `json:"cluster"`
	User      string `json:"user"`
	Namespace string `json:"namespace,omitempty"`
}

// ResolvedContext is the current context with its cluster and user.
type ResolvedContext struct {
	Name      string
	Cluster   Cluster
	User      User
	Namespace string
}

// ParseClientConfig parses a client configuration strictly.
func ParseClientConfig(b []byte) (*ClientConfig, error) {
	var c ClientConfig
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("client config: %w", err)
	}
	if c.APIVersion != Version || c.Kind != KindConfig {
		return nil, fmt.Errorf("client config: want apiVersion %s and kind %s, got %q %q", Version, KindConfig, c.APIVersion, c.Kind)
	}
	return &c, nil
}

// Marshal encodes c as YAML.
func (c *ClientConfig) Marshal() ([]byte, error) {
	cc := *c
	cc.APIVersion, cc.Kind = Version, KindConfig
	return yaml.Marshal(&cc)
}

// Resolve returns the named context, or the current one when name is empty.
func (c *ClientConfig) Resolve(name string) (*ResolvedContext, error) {
	if name == "" {
		name = c.CurrentContext
	}
	if name == "" {
		return nil, fmt.Errorf("client config: no current-context set and no --context given")
	}
	for _, ctx := range c.Contexts {
		if ctx.Name != name {
			continue
		}
		r := &ResolvedContext{Name: name, Namespace: ctx.Context.Namespace}
		found := 0
		for _, cl := range c.Clusters {
			if cl.Name == ctx.Context.Cluster {
				r.Cluster, found = cl.Cluster, found+1
				break
			}
		}
		for _, u := range c.Users {
			if u.Name == ctx.Context.User {
				r.User, found = u.User, found+1
				break
			}
		}
		if found != 2 {
			return nil, fmt.Errorf("client config: context %q names cluster %q and user %q; both must be defined", name, ctx.Context.Cluster, ctx.Context.User)
		}
		return r, nil
	}
	return nil, fmt.Errorf("client config: context %q not found", name)
}

// NewAdminConfig builds a single-context configuration.
func NewAdminConfig(server string, caPEM, certPEM, keyPEM []byte) *ClientConfig {
	return &ClientConfig{
		APIVersion:     Version,
		Kind:           KindConfig,
		CurrentContext: "moor",
		Clusters:       []NamedCluster{{Name: "moor", Cluster: Cluster{Server: server, CertificateAuthorityData: caPEM}}},
		Users:          []NamedUser{{Name: "admin", User: User{ClientCertificateData: certPEM, ClientKeyData: keyPEM}}},
		Contexts:       []NamedContext{{Name: "moor", Context: Context{Cluster: "moor", User: "admin", Namespace: "default"}}},
	}
}
