package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/moor-dev/moor/api"
)

// Values is one read of a Secret.
type Values struct {
	// Data holds the values by Secret key, with the key mapping applied.
	Data map[string][]byte
	// Version is the KV v2 version, or for a leased secret the Unix time
	// (seconds) its current lease was issued (raised to stay increasing);
	// 0 for plain Secrets.
	Version int64
	// LeaseExpires is when a leased secret's lease ends if not renewed
	// further; zero for KV secrets.
	LeaseExpires time.Time
}

// Manager reads the Secrets a node's pods use from Vault and watches them:
// KV secrets following the latest version are polled for a new version,
// leases are renewed at two thirds of their TTL and re-read when they
// cannot be renewed. Get, Set and Status are safe for concurrent use; Run
// does the background work.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	v    *vault
	auth *tokenSource
	now  func() time.Time

	mu      sync.Mutex
	entries map[string]*entry
	pending []string        // keys whose values changed, oldest first
	queued  map[string]bool // keys in pending
	wake    chan struct{}   // entries changed: Run replans
	notify  chan struct{}   // pending grew: the pump delivers
	changes chan string
}

// New returns a Manager for cfg. It does no I/O: the first Get, or Run,
// logs in. log may be nil.
func New(cfg Config, log *slog.Logger) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "secrets")
	v, err := newVault(cfg)
	if err != nil {
		return nil, err
	}
	return &Manager{
		cfg:     cfg,
		log:     log,
		v:       v,
		auth:    newTokenSource(cfg, v, log),
		now:     time.Now,
		entries: map[string]*entry{},
		queued:  map[string]bool{},
		wake:    make(chan struct{}, 1),
		notify:  make(chan struct{}, 1),
		changes: make(chan string),
	}, nil
}

// entry is one watched Secret. Its fields but io are guarded by Manager.mu;
// io serialises the Vault requests for it.
type entry struct {
	io sync.Mutex

	ref      api.SecretRef // Vault set; Data unused
	metaPath string        // KV metadata path ("" for leases)

	data    map[string][]byte // nil: never read
	version int64
	lease   *leaseInfo
	readAt  time.Time
	err     error
	fails   int
	due     time.Time // next background work; zero: none
	// metaDenied: the policy allows reading the data but not the
	// metadata; new versions are then found by reading the data.
	metaDenied bool
	gone       bool  // replaced or dropped; results are discarded
	bad        error // the reference is invalid; it is never read
}

// leaseInfo is a leased secret's current lease.
type leaseInfo struct {
	id        string
	obtained  time.Time // issued or last renewed
	ttl       time.Duration
	first     time.Duration // TTL at issue
	renewable bool
}

func (l *leaseInfo) expires() time.Time { return l.obtained.Add(l.ttl) }

func (e *entry) pinned() bool {
	return e.ref.Vault.Engine != api.VaultEngineLease && e.ref.Vault.Version > 0
}
func (e *entry) leased() bool { return e.ref.Vault.Engine == api.VaultEngineLease }

// Set replaces the set of watched Secrets with refs (plain Secrets are
// ignored): new ones are read in the background, dropped ones forgotten
// with their values, ones whose Vault source changed read again.
func (m *Manager) Set(refs []api.SecretRef) {
	want := map[string]api.SecretRef{}
	for _, r := range refs {
		if r.Vault != nil {
			want[r.Key()] = r
		}
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range m.entries {
		if _, ok := want[k]; !ok {
			e.gone = true
			delete(m.entries, k)
		}
	}
	for k, r := range want {
		if e, ok := m.entries[k]; ok && sameSource(e.ref.Vault, r.Vault) {
			continue
		}
		e, err := m.replaceLocked(r)
		if err == nil {
			e.due = now // prefetch
		}
	}
	m.wakeLocked()
}

// Get returns ref's current values, at least version minVersion for a KV
// secret (0: any; ignored for leased secrets), reading Vault when it has
// none or older ones. Once read, the last good values are returned even
// while Vault is unavailable; Status carries the error. Get starts watching
// ref; Changes names it when its values change. Plain Secrets return their
// Data.
func (m *Manager) Get(ctx context.Context, ref api.SecretRef, minVersion int64) (Values, error) {
	if ref.Vault == nil {
		return Values{Data: cloneData(ref.Data)}, nil
	}
	e, err := m.track(ref)
	if err != nil {
		return Values{}, err
	}
	e.io.Lock()
	defer e.io.Unlock()

	m.mu.Lock()
	have := e.data != nil
	enough := have && (e.leased() || e.version >= minVersion)
	vals := m.valuesLocked(e)
	m.mu.Unlock()
	if enough {
		return vals, nil
	}

	changed, err := m.refresh(ctx, ref.Key(), e, true)
	if err != nil {
		if have {
			return Values{}, fmt.Errorf("vault secret %s is at version %d, the pod needs at least version %d (%s): %w",
				ref.Vault.Path, vals.Version, minVersion, api.AnnotationSecretVersions, err)
		}
		return Values{}, err
	}
	m.mu.Lock()
	vals = m.valuesLocked(e)
	if changed && have {
		m.queueLocked(ref.Key())
	}
	m.mu.Unlock()
	if !e.leased() && vals.Version < minVersion {
		return Values{}, &Error{Class: ErrNotFound, Path: ref.Vault.Path, Msg: fmt.Sprintf(
			"vault secret %s is at version %d, the pod needs at least version %d (%s): write the new version to this Vault or wait for its replication",
			ref.Vault.Path, vals.Version, minVersion, api.AnnotationSecretVersions)}
	}
	return vals, nil
}

// Changes delivers "namespace/name" of each watched Secret whose values
// changed (a new KV version, a re-issued lease, or the first values of a
// Secret Set added and Run read in the background), once Get returns the
// new values. Keys may be coalesced, never dropped. Run delivers them; the
// channel is never closed.
func (m *Manager) Changes() <-chan string { return m.changes }

// Status reports each watched Secret: version, key names, lease expiry,
// last successful read and last error; never values. It does not block on
// Vault.
func (m *Manager) Status() []api.SecretStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]api.SecretStatus, 0, len(m.entries))
	for _, e := range m.entries {
		st := api.SecretStatus{
			Namespace: e.ref.Namespace,
			Name:      e.ref.Name,
			Version:   e.version,
			ReadAt:    e.readAt,
		}
		if e.data != nil {
			st.Keys = sortedKeys(e.data)
		}
		if e.lease != nil && e.lease.ttl > 0 {
			st.LeaseExpires = e.lease.expires()
		}
		if e.err != nil {
			st.Error = e.err.Error()
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

// Run keeps the node's token valid, polls and renews the watched Secrets
// and delivers Changes, until ctx ends. It returns nil then.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); m.auth.run(ctx) }()
	go func() { defer wg.Done(); m.pump(ctx) }()
	defer wg.Wait()

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.wake:
			timer.Stop() // since Go 1.23 no stale value follows Stop or Reset
		case <-timer.C:
		}
		m.runDue(ctx)
		if next := m.nextDue(); !next.IsZero() {
			timer.Reset(max(next.Sub(m.now()), 0))
		}
	}
}

type dueEntry struct {
	key string
	e   *entry
}

// runDue does the work of every entry that is due. When Vault turns out
// unavailable, the rest are marked with the same error without asking it.
func (m *Manager) runDue(ctx context.Context) {
	now := m.now()
	var due []dueEntry
	m.mu.Lock()
	for k, e := range m.entries {
		if !e.due.IsZero() && !e.due.After(now) {
			due = append(due, dueEntry{k, e})
		}
	}
	m.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].key < due[j].key })

	var down error
	for _, d := range due {
		if ctx.Err() != nil {
			return
		}
		if down != nil {
			m.mu.Lock()
			m.failLocked(d.e, down)
			m.mu.Unlock()
			continue
		}
		d.e.io.Lock()
		changed, err := m.refresh(ctx, d.key, d.e, false)
		d.e.io.Unlock()
		if changed {
			m.mu.Lock()
			m.queueLocked(d.key)
			m.mu.Unlock()
		}
		if errors.Is(err, ErrUnavailable) {
			down = err
		}
	}
}

func (m *Manager) nextDue() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	var next time.Time
	for _, e := range m.entries {
		if !e.due.IsZero() && (next.IsZero() || e.due.Before(next)) {
			next = e.due
		}
	}
	return next
}

// track returns the entry for ref, creating or replacing it when its Vault
// source differs.
func (m *Manager) track(ref api.SecretRef) (*entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[ref.Key()]; ok && sameSource(e.ref.Vault, ref.Vault) {
		if e.bad != nil {
			return nil, e.bad
		}
		return e, nil
	}
	return m.replaceLocked(ref)
}

// replaceLocked installs a fresh entry for ref. An invalid ref is recorded
// (Status shows why) and its error returned.
func (m *Manager) replaceLocked(ref api.SecretRef) (*entry, error) {
	if old, ok := m.entries[ref.Key()]; ok {
		old.gone = true
	}
	src := *ref.Vault
	if src.Engine == "" {
		src.Engine = api.VaultEngineKV
	}
	src.Keys = maps.Clone(src.Keys)
	e := &entry{ref: api.SecretRef{Namespace: ref.Namespace, Name: ref.Name, Type: ref.Type, Vault: &src}}
	m.entries[ref.Key()] = e
	var err error
	e.metaPath, err = checkSource(&src)
	if err != nil {
		e.err, e.bad = err, err // kept for Status; a valid ref replaces it
		return nil, err
	}
	return e, nil
}

// checkSource validates a Vault source and returns its KV metadata path.
func checkSource(src *api.VaultSource) (string, error) {
	for sk, vk := range src.Keys {
		if !secretKeyRE.MatchString(sk) || vk == "" {
			return "", invalid(src.Path, fmt.Sprintf("key mapping %s%s: %q for Vault secret %s: the Secret key must be letters, digits, '-', '_' or '.', the Vault key not empty",
				api.AnnotationVaultKeyPrefix, sk, vk, src.Path))
		}
	}
	switch src.Engine {
	case api.VaultEngineKV:
		if src.Version < 0 {
			return "", invalid(src.Path, fmt.Sprintf("vault version %d of %s: give a positive KV version in %s, or none for the latest", src.Version, src.Path, api.AnnotationVaultVersion))
		}
		return kvMetadataPath(src.Path)
	case api.VaultEngineLease:
		if src.Path == "" {
			return "", invalid("", fmt.Sprintf("leased secret without a path: set %s", api.AnnotationVaultPath))
		}
		return "", nil
	}
	return "", invalid(src.Path, fmt.Sprintf("vault engine %q of %s: use %q or %q in %s", src.Engine, src.Path, api.VaultEngineKV, api.VaultEngineLease, api.AnnotationVaultEngine))
}

func (m *Manager) valuesLocked(e *entry) Values {
	v := Values{Data: cloneData(e.data), Version: e.version}
	if e.lease != nil && e.lease.ttl > 0 {
		v.LeaseExpires = e.lease.expires()
	}
	return v
}

func (m *Manager) queueLocked(key string) {
	if m.queued[key] {
		return
	}
	m.queued[key] = true
	m.pending = append(m.pending, key)
	select {
	case m.notify <- struct{}{}:
	default:
	}
}

func (m *Manager) wakeLocked() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// pump delivers pending change keys on the changes channel, one at a time,
// until ctx ends. Changes queued while it waits for the reader coalesce.
func (m *Manager) pump(ctx context.Context) {
	for {
		m.mu.Lock()
		var key string
		if len(m.pending) > 0 {
			key = m.pending[0]
			m.pending = m.pending[1:]
			delete(m.queued, key)
		}
		m.mu.Unlock()
		if key == "" {
			select {
			case <-ctx.Done():
				return
			case <-m.notify:
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case m.changes <- key:
		}
	}
}

func sameSource(a, b *api.VaultSource) bool {
	engine := func(s *api.VaultSource) string {
		if s.Engine == "" {
			return api.VaultEngineKV
		}
		return s.Engine
	}
	return engine(a) == engine(b) && a.Path == b.Path && a.Version == b.Version && maps.Equal(a.Keys, b.Keys)
}

func cloneData(d map[string][]byte) map[string][]byte {
	if d == nil {
		return nil
	}
	out := make(map[string][]byte, len(d))
	for k, v := range d {
		out[k] = append([]byte(nil), v...)
	}
	return out
}

func equalData(a, b map[string][]byte) bool {
	return maps.EqualFunc(a, b, func(x, y []byte) bool { return string(x) == string(y) })
}
