package secrets

import (
	"context"
	"errors"
	"fmt"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/moor-dev/moor/api"
)

// The Manager's Vault work on one entry: what to ask Vault, and recording
// the answer.

// refresh does what e needs now: a first read, a check of the KV metadata
// for a new version, a lease renewal or a re-read. force reads the latest
// values regardless (Get). It records the outcome and reports whether the
// values changed. The caller holds e.io.
func (m *Manager) refresh(ctx context.Context, key string, e *entry, force bool) (changed bool, err error) {
	m.mu.Lock()
	if e.gone {
		m.mu.Unlock()
		return false, nil
	}
	src := *e.ref.Vault
	have := e.data != nil
	version := e.version
	var lease *leaseInfo
	if e.lease != nil {
		l := *e.lease
		lease = &l
	}
	metaDenied := e.metaDenied
	m.mu.Unlock()

	switch {
	case src.Engine == api.VaultEngineLease:
		return m.refreshLease(ctx, key, e, &src, lease, force)
	case !have || force || src.Version > 0:
		data, ver, err := m.readKV(ctx, &src, src.Version)
		if err != nil {
			return false, m.fail(e, err)
		}
		return m.succeed(e, data, ver, nil), nil
	default:
		cur, err := int64(0), error(nil)
		if !metaDenied {
			cur, err = m.currentVersion(ctx, e.metaPath)
			if errors.Is(err, ErrPermissionDenied) {
				m.log.Info("vault policy denies reading KV metadata; polling the data instead (grant read on the metadata path to avoid fetching values every poll)", "secret", key, "path", e.metaPath)
				m.mu.Lock()
				e.metaDenied = true
				m.mu.Unlock()
				metaDenied = true
			} else if err != nil {
				return false, m.fail(e, err)
			}
		}
		if !metaDenied && cur == version {
			m.succeed(e, nil, version, nil)
			return false, nil
		}
		data, ver, err := m.readKV(ctx, &src, cur) // cur is 0 when metadata is denied: latest
		if err != nil {
			return false, m.fail(e, err)
		}
		return m.succeed(e, data, ver, nil), nil
	}
}

// refreshLease renews the current lease when its plan says so, and reads a
// new one when there is none, it cannot be renewed, or renewal failed for a
// reason other than Vault being unavailable.
func (m *Manager) refreshLease(ctx context.Context, key string, e *entry, src *api.VaultSource, lease *leaseInfo, force bool) (bool, error) {
	now := m.now()
	if lease != nil && !force && lease.id != "" {
		plan := leaseRenewal(lease.obtained, lease.ttl, lease.first, lease.renewable)
		if plan.Renew && now.Before(lease.expires()) {
			sec, err := m.call(ctx, func(ctx context.Context) (*vaultapi.Secret, error) {
				return m.v.renewLease(ctx, src.Path, lease.id, lease.first)
			})
			if err == nil && sec.LeaseDuration > 0 {
				l := *lease
				l.obtained = now
				l.ttl = time.Duration(sec.LeaseDuration) * time.Second
				l.renewable = sec.Renewable
				m.mu.Lock()
				if !e.gone {
					e.lease = &l
				}
				m.mu.Unlock()
				m.succeed(e, nil, 0, &l)
				return false, nil
			}
			if errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
				return false, m.fail(e, err)
			}
			m.log.Info("vault lease not renewed; reading the secret again", "secret", key, "path", src.Path, "err", err)
		}
	}
	data, l, err := m.readLease(ctx, src)
	if err != nil {
		return false, m.fail(e, err)
	}
	return m.succeed(e, data, 0, &l), nil
}

// readKV reads version (0: latest) of a KV v2 secret and maps its keys.
func (m *Manager) readKV(ctx context.Context, src *api.VaultSource, version int64) (map[string][]byte, int64, error) {
	var params map[string][]string
	if version > 0 {
		params = map[string][]string{"version": {fmt.Sprint(version)}}
	}
	sec, err := m.call(ctx, func(ctx context.Context) (*vaultapi.Secret, error) { return m.v.read(ctx, src.Path, params) })
	if err != nil {
		if errors.Is(err, ErrNotFound) && sec != nil && sec.Data != nil {
			if kv, perr := parseKVData(src.Path, sec.Data); perr == nil && kv.Deleted {
				return nil, 0, &Error{Class: ErrNotFound, Path: src.Path, Err: err, Msg: fmt.Sprintf(
					"version %d of vault secret %s is deleted: undelete it (vault kv undelete), write a new version, or pin another with %s",
					kv.Version, src.Path, api.AnnotationVaultVersion)}
			}
		}
		if errors.Is(err, ErrNotFound) && version > 0 && src.Version == version {
			return nil, 0, &Error{Class: ErrNotFound, Path: src.Path, Err: err, Msg: fmt.Sprintf(
				"vault secret %s has no version %d: fix the %s annotation", src.Path, version, api.AnnotationVaultVersion)}
		}
		return nil, 0, err
	}
	kv, err := parseKVData(src.Path, sec.Data)
	if err != nil {
		return nil, 0, err
	}
	if kv.Deleted {
		return nil, 0, &Error{Class: ErrNotFound, Path: src.Path, Msg: fmt.Sprintf(
			"version %d of vault secret %s is deleted: undelete it, write a new version, or pin another with %s", kv.Version, src.Path, api.AnnotationVaultVersion)}
	}
	data, err := mapKeys(src.Path, fmt.Sprintf("version %d", kv.Version), kv.Data, src.Keys)
	if err != nil {
		return nil, 0, err
	}
	return data, kv.Version, nil
}

// currentVersion reads current_version from a KV v2 metadata path.
func (m *Manager) currentVersion(ctx context.Context, metaPath string) (int64, error) {
	sec, err := m.call(ctx, func(ctx context.Context) (*vaultapi.Secret, error) { return m.v.read(ctx, metaPath, nil) })
	if err != nil {
		return 0, err
	}
	return parseCurrentVersion(metaPath, sec.Data)
}

// readLease reads a leased secret: its values and a new lease. A secret
// without a lease ID (KV version 1, say) is re-read at two thirds of its
// lease duration, or every poll interval when it has none.
func (m *Manager) readLease(ctx context.Context, src *api.VaultSource) (map[string][]byte, leaseInfo, error) {
	sec, err := m.call(ctx, func(ctx context.Context) (*vaultapi.Secret, error) { return m.v.read(ctx, src.Path, nil) })
	if err != nil {
		return nil, leaseInfo{}, err
	}
	data, err := mapKeys(src.Path, "lease", sec.Data, src.Keys)
	if err != nil {
		return nil, leaseInfo{}, err
	}
	ttl := time.Duration(sec.LeaseDuration) * time.Second
	return data, leaseInfo{id: sec.LeaseID, obtained: m.now(), ttl: ttl, first: ttl, renewable: sec.Renewable && sec.LeaseID != ""}, nil
}

// call runs a request with the node's token. When Vault denies it and no
// longer accepts the token (expired or revoked), it logs in again and
// retries once.
func (m *Manager) call(ctx context.Context, req func(context.Context) (*vaultapi.Secret, error)) (*vaultapi.Secret, error) {
	tok, err := m.auth.ensure(ctx)
	if err != nil {
		return nil, err
	}
	sec, err := req(ctx)
	if errors.Is(err, ErrPermissionDenied) && m.auth.rejected(ctx, tok) {
		m.log.Info("vault no longer accepts the node's token; logging in again")
		if _, lerr := m.auth.login(ctx, tok); lerr != nil {
			return nil, lerr
		}
		return req(ctx)
	}
	return sec, err
}

// succeed records a successful read (data non-nil), check or renewal and
// schedules the next. It reports whether the values changed.
func (m *Manager) succeed(e *entry, data map[string][]byte, version int64, lease *leaseInfo) bool {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.gone {
		return false
	}
	changed := false
	if data != nil {
		if e.leased() {
			// A new lease: its version is its issue time, kept increasing.
			version = max(now.Unix(), e.version+1)
		}
		changed = e.data == nil || version != e.version || !equalData(e.data, data)
		e.data, e.version = data, version
	}
	if lease != nil {
		e.lease = lease
	}
	e.readAt, e.err, e.fails = now, nil, 0
	defer m.wakeLocked()
	switch {
	case e.leased():
		e.due = leaseRenewal(e.lease.obtained, e.lease.ttl, e.lease.first, e.lease.renewable).At
		if e.due.IsZero() {
			e.due = now.Add(m.cfg.PollInterval)
		}
	case e.pinned():
		e.due = time.Time{}
	default:
		e.due = now.Add(m.cfg.PollInterval)
	}
	return changed
}

// fail records err on e, keeps its values and schedules a retry. It
// returns err.
func (m *Manager) fail(e *entry, err error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failLocked(e, err)
	return err
}

func (m *Manager) failLocked(e *entry, err error) {
	if e.gone || errors.Is(err, context.Canceled) {
		return
	}
	e.err = err
	e.fails++
	e.due = m.now().Add(backoff(e.fails-1, m.cfg.PollInterval))
	m.wakeLocked()
}
