package main

import (
	"sort"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/vault/plugincatalog"
)

// registry is the plugin catalog's list of built-in plugins: only the
// backends vaultdev compiles in, instead of Vault's full builtinplugins
// registry with every engine and its SDKs.
type registry struct {
	logical    map[string]logical.Factory
	credential map[string]logical.Factory
}

var _ plugincatalog.BuiltinRegistry = (*registry)(nil)

func newRegistry(logicalBackends, credentialBackends map[string]logical.Factory) *registry {
	return &registry{logical: logicalBackends, credential: credentialBackends}
}

func (r *registry) factories(t consts.PluginType) map[string]logical.Factory {
	switch t {
	case consts.PluginTypeSecrets:
		return r.logical
	case consts.PluginTypeCredential:
		return r.credential
	}
	return nil
}

func (r *registry) Contains(name string, t consts.PluginType) bool {
	_, ok := r.factories(t)[name]
	return ok
}

func (r *registry) Get(name string, t consts.PluginType) (func() (interface{}, error), bool) {
	f, ok := r.factories(t)[name]
	if !ok {
		return nil, false
	}
	return func() (interface{}, error) { return f, nil }, true
}

func (r *registry) Keys(t consts.PluginType) []string {
	var keys []string
	for k := range r.factories(t) {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (r *registry) DeprecationStatus(name string, t consts.PluginType) (consts.DeprecationStatus, bool) {
	if r.Contains(name, t) {
		return consts.Supported, true
	}
	return consts.Unknown, false
}

func (r *registry) IsBuiltinEntPlugin(string, consts.PluginType) bool { return false }
