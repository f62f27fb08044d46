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
	now  func() time.Time

	mu       sync.Mutex
	cache    proxy.Cache[*Fragment] // services last synced, with their fragments
	hairpin  map[netip.Addr]int     // endpoint IP → services using it
	selects  map[int]bool           // select chains present (see Fragment.Selects)
	needFull bool
	lastFull time.Time
	cc       *nftables.Conn // lasting netlink connection, dialed on first use
}

var _ proxy.Backend = (*Backend)(nil)

// New returns an nftables backend; nothing is touched until Sync.
func New(cfg proxy.Config) (*Backend, error) {
	cfg = cfg.WithDefaults()
	cfg.Backend = proxy.KindNFTables
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Backend{
		cfg:      cfg,
		opts:     Options{ClusterCIDR: cfg.ClusterCIDR, MasqueradeAll: cfg.MasqueradeAll},
		log:      cfg.Log.With("component", "netplane/proxy/nft"),
		now:      time.Now,
		needFull: true,
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
func (b *Backend) Sync(ctx context.Context, t *proxy.Table) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	d, err := b.cache.Diff(t, b.cfg.NodePortMin, b.cfg.NodePortMax)
	if err != nil {
		return err
	}
	for i := range d.Changes {
		if ch := &d.Changes[i]; ch.New != nil {
			ch.Val = RenderService(ch.New, b.opts)
		}
	}
	cc, done, err := b.conn()
	if err != nil {
		return err
	}
	defer done(&err)
	full := b.needFull || b.now().Sub(b.lastFull) >= b.cfg.ResyncPeriod
	if !full && !b.intact(cc) {
		b.log.Warn("table moor was changed from outside; resyncing fully")
		full = true
	}
	if !full {
		if err = b.syncPartial(cc, d); err == nil {
			b.cache.Commit(d)
			return nil
		}
		b.log.Warn("partial sync failed; resyncing fully", "err", err)
		b.closeConn() // the failed batch may have left answers unread
		if cc, _, err = b.conn(); err != nil {
			return err
		}
	}
	if err = b.syncFull(cc, d); err != nil {
		return err
	}
	b.cache.Commit(d)
	return nil
}

func (b *Backend) syncFull(cc *nftables.Conn, d *proxy.Delta[*Fragment]) error {
	start := b.now()
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
	b.needFull = true
	if err := cc.Flush(); err != nil {
		return fmt.Errorf("nft: replacing table %s: %w", TableName, err)
	}
	b.hairpin = map[netip.Addr]int{}
	b.selects = map[int]bool{}
	for _, f := range rs.Services {
		for _, n := range f.Selects {
			b.selects[n] = true
		}
		for _, h := range f.Hairpin {
			b.hairpin[h]++
		}
	}
	b.needFull, b.lastFull = false, b.now()
	b.log.Debug("full sync", "services", len(rs.Services), "took", b.now().Sub(start))
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
	refs := make(map[netip.Addr]int)
	for _, c := range changes {
		if c.Old != nil {
			for _, h := range c.Old.Hairpin {
				refs[h]--
			}
		}
		if c.New != nil {
			for _, h := range c.New.Hairpin {
				refs[h]++
			}
		}
	}
	var hDel, hAdd []netip.Addr
	for h, d := range refs {
		before := b.hairpin[h]
		switch after := before + d; {
		case before > 0 && after == 0:
			hDel = append(hDel, h)
		case before == 0 && after > 0:
			hAdd = append(hAdd, h)
		}
	}
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
	// Until the batch is known to have landed, the next sync must be full.
	b.needFull = true
	if err := cc.Flush(); err != nil {
		return fmt.Errorf("nft: updating %d services in table %s: %w", len(changes), TableName, err)
	}
	for h, d := range refs {
		if b.hairpin[h] += d; b.hairpin[h] <= 0 {
			delete(b.hairpin, h)
		}
	}
	for _, f := range newSel {
		b.selects[f.Selects[0]] = true
	}
	b.needFull = false
	b.log.Debug("partial sync", "changed", len(changes))
	return nil
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

// Cleanup deletes the table moor; a missing table is not an error.
func (b *Backend) Cleanup(ctx context.Context) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cc, done, err := b.conn()
	if err != nil {
		return err
	}
	defer done(&err)
	table := &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}
	cc.AddTable(table)
	cc.DelTable(table)
	if err := cc.Flush(); err != nil {
		return fmt.Errorf("nft: deleting table %s: %w", TableName, err)
	}
	b.hairpin, b.selects, b.needFull = nil, nil, true
	b.closeConn()
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
// costs several milliseconds, more than a one-service sync. The returned
// func drops the connection when the sync failed, so the next one redials.
func (b *Backend) conn() (*nftables.Conn, func(*error), error) {
	keep := func(err *error) {
		if *err != nil {
			b.closeConn()
		}
	}
	if b.cc != nil {
		return b.cc, keep, nil
	}
	opts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(forceBuffers)}
	if b.cfg.NetNSPath != "" {
		fd, err := unix.Open(b.cfg.NetNSPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("nft: opening network namespace %s: %w", b.cfg.NetNSPath, err)
		}
		defer unix.Close(fd)
		opts = append(opts, nftables.WithNetNSFd(fd))
	}
	cc, err := nftables.New(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("nft: netlink: %w", err)
	}
	b.cc = cc
	return cc, keep, nil
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
