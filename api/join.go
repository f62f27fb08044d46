package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
)

// Certificate subjects. Node client certificates carry CN=NodeCNPrefix+name
// and O=GroupNodes; admin client certificates O=GroupAdmins.
const (
	NodeCNPrefix = "moor:node:"
	GroupNodes   = "moor:nodes"
	GroupAdmins  = "moor:admins"
)

// HTTP paths of the server. {name} is a node name.
const (
	PathJoin        = "/v1/join"                 // POST JoinRequest → JoinResponse (token auth)
	PathDesired     = "/v1/nodes/{name}/desired" // GET ?since=<digest>&wait=<duration> (node mTLS)
	PathNodeStatus  = "/v1/nodes/{name}/status"  // PUT NodeStatus (node mTLS)
	PathSync        = "/v1/sync"                 // POST → SyncResponse (admin)
	PathPods        = "/v1/pods"                 // GET → []PodView (admin)
	PathDeployments = "/v1/deployments"          // GET → []DeploymentView (admin)
	PathNodes       = "/v1/nodes"                // GET → []NodeView (admin)
	PathCommits     = "/v1/commits"              // GET → []CommitView (admin)
	PathServices    = "/v1/services"             // GET → []ServiceView (admin)
)

// Join tokens look like "moor1.<ca-sha256-hex>.<secret>": the CA hash pins
// the server's CA so a joining agent trusts nothing else, the secret proves
// the agent may join.
const tokenPrefix = "moor1"

// Token is a parsed join token.
type Token struct {
	CAHash string // hex SHA-256 of the CA certificate's DER bytes
	Secret string
}

// String formats the token.
func (t Token) String() string { return tokenPrefix + "." + t.CAHash + "." + t.Secret }

// ParseToken parses a join token.
func ParseToken(s string) (Token, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 || parts[0] != tokenPrefix {
		return Token{}, fmt.Errorf("join token: want %s.<ca-hash>.<secret>, as written to the server's data dir (token file)", tokenPrefix)
	}
	if b, err := hex.DecodeString(parts[1]); err != nil || len(b) != sha256.Size {
		return Token{}, fmt.Errorf("join token: CA hash must be 64 hex characters")
	}
	if len(parts[2]) < 16 {
		return Token{}, fmt.Errorf("join token: secret is too short")
	}
	return Token{CAHash: parts[1], Secret: parts[2]}, nil
}

// CAHash returns the hex SHA-256 of a DER certificate, as tokens carry it.
func CAHash(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// SecretEqual compares two token secrets in constant time.
func SecretEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// JoinRequest asks the server for a node client certificate.
type JoinRequest struct {
	Node   string            `json:"node"`
	Secret string            `json:"secret"`
	CSR    string            `json:"csr"` // PEM certificate request, CN=NodeCNPrefix+Node
	Labels map[string]string `json:"labels,omitempty"`
	// Address is the node's IP address: other nodes route to its pod CIDR
	// through it and NodePorts listen on it. Zero when the agent does not
	// know it yet; NodeStatus.NodeIP can tell it later.
	Address netip.Addr `json:"address,omitzero"`
}

// JoinResponse carries the signed client certificate and the CA.
type JoinResponse struct {
	Certificate string `json:"certificate"` // PEM
	CA          string `json:"ca"`          // PEM
}
