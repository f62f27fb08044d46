package nft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/moor-dev/moor/netplane/proxy"
)

// Backend programs the table "ip moor" over netlink.
type Backend struct {
	cfg  proxy.Config
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	sync    proxy.Syncer[*Fragment] // services last synced, with their fragments
	hairpin proxy.Refs              // endpoint IP → services using it
	selects map[int]bool            // select chains present (see Fragment.Selects)
	cc      *nftables.Conn          // lasting netlink connection, dialed on first use
}

var _ proxy.Backend = (*Backend)(nil)

// New returns an nftables backend; nothing is touched until Sync.
func New(cfg proxy.Config) (*Backend, error) {
	cfg = cfg.WithDefaults()
	cfg.Backend = proxy.KindNFTables
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := Options{ClusterCIDR: cfg.ClusterCIDR, MasqueradeAll: cfg.MasqueradeAll}
	log := cfg.Log.With("component", "netplane/proxy/nft")
	return &Backend{
		cfg:  cfg,
		opts: opts,
		log:  log,
		sync: proxy.Syncer[*Fragment]{
			Render: func(s *proxy.Service) *Fragment { return RenderService(s, opts) },
			Log:    log,
		},
	}, nil
}

// Name returns "nftables".
func (b *Backend) Name() string { return string(proxy.KindNFTables) }

// Sync sorts t in place and programs it. Only the services that differ
// from the last sync are validated and rendered (see proxy.Cache). The
// first sync, a sync after an error, one after ResyncPeriod, and one
// finding the table flushed or deleted from outside replace the whole
// table; otherwise only the changed services' objects are sent, and a
// failed partial sync is retried as a full one. Everything goes in one
// netlink batch.
func (b *Backend) Sync(ctx context.Context, t *proxy.Table) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sync.Sync(ctx, t, b.cfg, applier{b})
}

// applier runs the steps of proxy.Syncer.Sync with the backend's lock held,
// each on the lasting connection (dialed when there is none), which a
// failed batch drops: it may have left answers unread.
type applier struct{ b *Backend }

func (a applier) Intact(context.Context) (bool, error) {
	cc, err := a.b.conn()
	if err != nil {
		return false, err
	}
	ok := a.b.intact(cc)
	if !ok {
		a.b.log.Warn("table moor was changed from outside; resyncing fully")
	}
	return ok, nil
}

func (a applier) Partial(_ context.Context, d *proxy.Delta[*Fragment]) error {
	return a.apply(d, a.b.syncPartial)
}

func (a applier) Full(_ context.Context, d *proxy.Delta[*Fragment]) error {
	return a.apply(d, a.b.syncFull)
}

func (a applier) apply(d *proxy.Delta[*Fragment], sync func(*nftables.Conn, *proxy.Delta[*Fragment]) error) error {
	cc, err := a.b.conn()
	if err == nil {
		err = sync(cc, d)
	}
	if err != nil {
		a.b.closeConn()
	}
	return err
}

func (b *Backend) syncFull(cc *nftables.Conn, d *proxy.Delta[*Fragment]) error {
	start := time.Now()
	rs := Base()
	for _, f := range d.Values() {
		if f != nil {
			rs.Services = append(rs.Services, f)
		}
	}
	rs.Selects = SelectChains(rs.Services, b.opts)
	a := newBatch(cc)
	if err := a.full(rs); err != nil {
		return err
	}
	if err := cc.Flush(); err != nil {
		return fmt.Errorf("nft: replacing table %s: %w", TableName, err)
	}
	b.hairpin = proxy.Refs{}
	b.selects = map[int]bool{}
	for _, f := range rs.Services {
		for _, n := range f.Selects {
			b.selects[n] = true
		}
		b.hairpin.Add(f.Hairpin)
	}
	b.log.Debug("full sync", "services", len(rs.Services), "took", time.Since(start))
	return nil
}

func (b *Backend) syncPartial(cc *nftables.Conn, d *proxy.Delta[*Fragment]) error {
	var changes []change
	for _, ch := range d.Changes {
		if ch.Old != nil || ch.Val != nil {
			changes = append(changes, change{Old: ch.Old, New: ch.Val})
		}
	}
	if len(changes) == 0 {
		return nil
	}
	hairpin, hDel, hAdd := proxy.Move(b.hairpin, d, (*Fragment).hairpin)
	var newSel []*Fragment
	for _, c := range changes {
		if c.New == nil {
			continue
		}
		for _, n := range c.New.Selects {
			if !b.selects[n] {
				newSel = append(newSel, &Fragment{Selects: []int{n}})
			}
		}
	}
	selects := SelectChains(newSel, b.opts)
	a := newBatch(cc)
	if err := a.partial(changes, selects, hDel, hAdd); err != nil {
		return err
	}
	if err := cc.Flush(); err != nil {
		return fmt.Errorf("nft: updating %d services in table %s: %w", len(changes), TableName, err)
	}
	b.hairpin = hairpin
	for _, f := range newSel {
		b.selects[f.Selects[0]] = true
	}
	b.log.Debug("partial sync", "changed", len(changes))
	return nil
}

// hairpin returns f's hairpin endpoints; nil for a nil f.
func (f *Fragment) hairpin() []netip.Addr {
	if f == nil {
		return nil
	}
	return f.Hairpin
}

// intact is the canary: the fixed chain "services" must still hold its
// rules. An external `nft flush table moor` or `nft delete table` fails it.
func (b *Backend) intact(cc *nftables.Conn) bool {
	table := &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}
	rules, err := cc.GetRules(table, &nftables.Chain{Name: ChainServices, Table: table})
	if err != nil {
		return false
	}
	return len(rules) == len(Base().Base[0].Rules)
}

// Cleanup deletes the table moor and drops the connection; a missing table
// is not an error.
func (b *Backend) Cleanup(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cc, err := b.conn()
	if err != nil {
		return err
	}
	defer b.closeConn()
	table := &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}
	cc.AddTable(table)
	cc.DelTable(table)
	if err := cc.Flush(); err != nil {
		return fmt.Errorf("nft: deleting table %s: %w", TableName, err)
	}
	b.hairpin, b.selects = nil, nil
	b.sync.Reset()
	return nil
}

// bufSize is the forced netlink socket buffer size: a 10k-service batch is
// tens of megabytes and every message is acknowledged.
const bufSize = 512 << 20

func forceBuffers(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		serr = errors.Join(
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, bufSize),
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bufSize))
	})
	return errors.Join(err, serr)
}

// conn returns the lasting netlink connection into the configured network
// namespace, dialing it on first use: closing a namespaced netlink socket
// costs several milliseconds, more than a one-service sync. A failed sync
// drops it (see applier), so the next one redials.
func (b *Backend) conn() (*nftables.Conn, error) {
	if b.cc != nil {
		return b.cc, nil
	}
	opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(forceBuffers)}
	if b.cfg.NetNSPath != "" {
		fd, err := unix.Open(b.cfg.NetNSPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("nft: opening network namespace %s: %w", b.cfg.NetNSPath, err)
		}
		defer unix.Close(fd)
		opts = append(opts, nftables.WithNetNSFd(fd))
	}
	cc, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nft: netlink: %w", err)
	}
	b.cc = cc
	return cc, nil
}

func (b *Backend) closeConn() {
	if b.cc != nil {
		_ = b.cc.CloseLasting()
		b.cc = nil
	}
}

// Close releases the netlink connection; the rules stay. A later Sync
// reconnects.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closeConn()
	return nil
}
