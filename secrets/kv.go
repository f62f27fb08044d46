package secrets

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/moor-dev/moor/api"
)

// What this file does is pure: it parses Vault's KV v2 answers and applies
// a Secret's key mapping. The Manager does the requests.

// kvMetadataPath returns the metadata path of a KV v2 read path
// "<mount>/data/<path>": "<mount>/metadata/<path>". The first "/data/"
// separates mount and path, so a mount whose own path contains a "data"
// segment cannot be watched.
func kvMetadataPath(read string) (string, error) {
	mount, rest, ok := strings.Cut(read, "/data/")
	if !ok || mount == "" || rest == "" || strings.HasPrefix(read, "/") || strings.HasSuffix(read, "/") {
		return "", invalid(read, fmt.Sprintf("vault path %q is not a KV v2 read path: write <mount>/data/<path>, e.g. secret/data/shop/db, in the %s annotation", read, api.AnnotationVaultPath))
	}
	return mount + "/metadata/" + rest, nil
}

// kvVersion is one version of a KV v2 secret as a read returned it.
type kvVersion struct {
	Data    map[string]any
	Version int64
	// Deleted is set when the version is soft-deleted or destroyed: it
	// has metadata but no data.
	Deleted bool
}

// parseKVData parses the "data" of a KV v2 read answer: {"data": {...},
// "metadata": {"version": N, "deletion_time": "...", "destroyed": bool}}.
func parseKVData(path string, d map[string]any) (kvVersion, error) {
	meta, ok := d["metadata"].(map[string]any)
	if !ok {
		return kvVersion{}, invalid(path, fmt.Sprintf("vault's answer for %s has no KV v2 metadata: is the mount a KV version 2 engine? For KV version 1 or other engines use the %q engine", path, api.VaultEngineLease))
	}
	ver, err := number(meta["version"])
	if err != nil {
		return kvVersion{}, invalid(path, fmt.Sprintf("vault's answer for %s has a bad version: %v", path, err))
	}
	v := kvVersion{Version: ver}
	if dt, _ := meta["deletion_time"].(string); dt != "" {
		v.Deleted = true
	}
	if destroyed, _ := meta["destroyed"].(bool); destroyed {
		v.Deleted = true
	}
	if data, ok := d["data"].(map[string]any); ok {
		v.Data = data
	} else if !v.Deleted {
		v.Data = map[string]any{}
	}
	return v, nil
}

// parseCurrentVersion reads current_version from a KV v2 metadata answer.
func parseCurrentVersion(path string, d map[string]any) (int64, error) {
	v, err := number(d["current_version"])
	if err != nil {
		return 0, invalid(path, fmt.Sprintf("vault's metadata for %s has a bad current_version: %v", path, err))
	}
	return v, nil
}

func number(v any) (int64, error) {
	switch n := v.(type) {
	case json.Number:
		return n.Int64()
	case float64:
		return int64(n), nil
	case int64:
		return n, nil
	case int:
		return int64(n), nil
	case string:
		return strconv.ParseInt(n, 10, 64)
	}
	return 0, fmt.Errorf("%v is not a number", v)
}

// secretKeyRE is what Kubernetes allows as a Secret key.
var secretKeyRE = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// mapKeys applies a Secret's key mapping to the values Vault returned: with
// keys, only the mapped Secret keys, each from its Vault key; without, every
// Vault key under its own name. A mapped key missing in Vault is an
// ErrKeyMissing naming path and key; the message lists the key names Vault
// has, never values. what describes the read for messages ("version 3").
func mapKeys(path, what string, src map[string]any, keys map[string]string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(src))
	if len(keys) == 0 {
		for k, v := range src {
			if !secretKeyRE.MatchString(k) || k == "." || k == ".." {
				return nil, invalid(path, fmt.Sprintf("vault key %q of %s is not a valid Secret key (letters, digits, '-', '_', '.'): map it to one with a %s<name> annotation", k, path, api.AnnotationVaultKeyPrefix))
			}
			out[k] = valueBytes(v)
		}
		return out, nil
	}
	names := make([]string, 0, len(keys))
	for sk := range keys {
		names = append(names, sk)
	}
	sort.Strings(names)
	for _, sk := range names {
		vk := keys[sk]
		v, ok := src[vk]
		if !ok {
			return nil, &Error{
				Class: ErrKeyMissing,
				Path:  path,
				Key:   vk,
				Msg: fmt.Sprintf("vault secret %s (%s) has no key %q for Secret key %q (it has %s): add the key in Vault or fix the %s%s annotation",
					path, what, vk, sk, describeKeys(src), api.AnnotationVaultKeyPrefix, sk),
			}
		}
		out[sk] = valueBytes(v)
	}
	return out, nil
}

func describeKeys(m map[string]any) string {
	if len(m) == 0 {
		return "no keys"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, strconv.Quote(k))
	}
	sort.Strings(names)
	return "keys " + strings.Join(names, ", ")
}

// valueBytes is a Vault value as a Secret value: strings as they are,
// numbers as written, anything else (objects, lists, booleans) as JSON.
func valueBytes(v any) []byte {
	switch x := v.(type) {
	case string:
		return []byte(x)
	case json.Number:
		return []byte(x.String())
	case nil:
		return []byte{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(fmt.Sprint(v))
	}
	return b
}

// sortedKeys returns the names of m's keys, sorted.
func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
