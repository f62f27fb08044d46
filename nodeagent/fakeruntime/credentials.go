package fakeruntime

import (
	"context"

	"github.com/moor-dev/moor/nodeagent"
)

var _ nodeagent.CredentialPuller = (*Runtime)(nil)

// PullImageWithCredentials is PullImage with registry credentials. Calls
// records "auth <host> <username>" (never the password) before PullImage's
// own "pull <ref>"; FailPull scripts failures as for PullImage.
func (r *Runtime) PullImageWithCredentials(ctx context.Context, ref string, cred nodeagent.RegistryCredential) error {
	r.mu.Lock()
	r.calls = append(r.calls, "auth "+cred.Host+" "+cred.Username)
	r.mu.Unlock()
	return r.PullImage(ctx, ref)
}
