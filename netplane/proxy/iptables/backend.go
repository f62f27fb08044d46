package iptables

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/moor-dev/moor/netplane/proxy"
)

// Backend applies the rendered text with iptables-restore.
type Backend struct {
	cfg  proxy.Config
	opts Options
	log  *slog.Logger
	now  func() time.Time

	mu       sync.Mutex
	applied  map[string]*Fragment // service key → what the kernel has
	chains   map[string]bool      // MOOR- nat chains the kernel has
	needFull bool
	lastFull time.Time
}

var _ proxy.Backend = (*Backend)(nil)

// New returns an iptables backend; nothing is touched until Sync.
func New(cfg proxy.Config) (*Backend, error) {
	cfg = cfg.WithDefaults()
	cfg.Backend = proxy.KindIPTables
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, tool := range []string{"iptables", "iptables-restore", "iptables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("iptables backend needs %s: install iptables or use the nftables backend: %w", tool, err)
		}
	}
	return &Backend{
		cfg:      cfg,
		opts:     Options{ClusterCIDR: cfg.ClusterCIDR, MasqueradeAll: cfg.MasqueradeAll},
		log:      cfg.Log.With("component", "netplane/proxy/iptables"),
		now:      time.Now,
		needFull: true,
	}, nil
}

// Name returns "iptables".
func (b *Backend) Name() string { return string(proxy.KindIPTables) }

// command builds an iptables tool invocation inside the configured netns.
func (b *Backend) command(ctx context.Context, tool string, args ...string) *exec.Cmd {
	if b.cfg.NetNSPath != "" {
		return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + b.cfg.NetNSPath, tool}, args...)...)
	}
	return exec.CommandContext(ctx, tool, args...)
}

func (b *Backend) run(ctx context.Context, stdin string, tool string, args ...string) (string, error) {
	cmd := b.command(ctx, tool, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Sync sorts t in place and programs it with one iptables-restore. The
// shared chains are rewritten each time; per-service chains only for
// services whose hash changed, unless a full sync is due (first sync, after
// an error, after ResyncPeriod, or when a jump from a built-in chain or a
// rule of ours has gone missing).
func (b *Backend) Sync(ctx context.Context, t *proxy.Table) error {
	if err := t.Validate(b.cfg.NodePortMin, b.cfg.NodePortMax); err != nil {
		return err
	}
	t.Sort()
	b.mu.Lock()
	defer b.mu.Unlock()
	intact, err := b.ensureJumps(ctx)
	if err != nil {
		return err
	}
	full := b.needFull || !intact || b.now().Sub(b.lastFull) >= b.cfg.ResyncPeriod
	if full && b.chains == nil {
		if b.chains, err = b.existingChains(ctx); err != nil {
			return err
		}
	}
	frags := Render(t, b.opts)
	var write map[string]bool
	if !full {
		write = map[string]bool{}
		for _, f := range frags {
			if old := b.applied[f.Key]; old == nil || old.Hash != f.Hash {
				write[f.Key] = true
			}
		}
	}
	newChains := map[string]bool{}
	for _, f := range frags {
		for _, c := range f.Chains {
			newChains[c.Name] = true
		}
	}
	var stale []string
	for c := range b.chains {
		if !newChains[c] {
			stale = append(stale, c)
		}
	}
	b.needFull = true
	if _, err := b.run(ctx, Text(frags, write, stale), "iptables-restore", "-w", "--noflush"); err != nil {
		return err
	}
	b.applied = make(map[string]*Fragment, len(frags))
	for _, f := range frags {
		b.applied[f.Key] = f
	}
	b.chains, b.needFull = newChains, false
	if full {
		b.lastFull = b.now()
	}
	return nil
}

// ensureJumps inserts missing jumps from built-in chains and reports
// whether everything was in place (false means someone flushed).
func (b *Backend) ensureJumps(ctx context.Context) (bool, error) {
	intact := true
	for _, j := range Jumps {
		if _, err := b.run(ctx, "", "iptables", "-w", "-t", j.Table, "-N", j.Target); err == nil {
			intact = false // the chain itself was missing
		}
		if _, err := b.run(ctx, "", "iptables", "-w", "-t", j.Table, "-C", j.Chain, "-j", j.Target); err == nil {
			continue
		}
		intact = false
		if _, err := b.run(ctx, "", "iptables", "-w", "-t", j.Table, "-I", j.Chain, "-j", j.Target); err != nil {
			return false, err
		}
	}
	if intact {
		// A flush of the nat table empties MOOR-POSTROUTING, which always
		// holds three rules.
		out, err := b.run(ctx, "", "iptables", "-w", "-t", "nat", "-S", ChainPostrouting)
		if err != nil || strings.Count(out, "-A "+ChainPostrouting) != 3 {
			intact = false
		}
	}
	return intact, nil
}

// existingChains lists MOOR- per-service chains in the nat table (leftovers
// of an earlier run are deleted by the first full sync).
func (b *Backend) existingChains(ctx context.Context) (map[string]bool, error) {
	out, err := b.run(ctx, "", "iptables-save", "-t", "nat")
	if err != nil {
		return nil, err
	}
	chains := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		name, _, _ := strings.Cut(strings.TrimPrefix(sc.Text(), ":"), " ")
		if strings.HasPrefix(sc.Text(), ":MOOR-") && isServiceChain(name) {
			chains[name] = true
		}
	}
	return chains, sc.Err()
}

func isServiceChain(name string) bool {
	for _, p := range []string{"MOOR-SVC-", "MOOR-SEP-", "MOOR-EXT-"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Cleanup removes the jumps and every MOOR- chain in nat and filter.
func (b *Backend) Cleanup(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, j := range Jumps {
		for {
			if _, err := b.run(ctx, "", "iptables", "-w", "-t", j.Table, "-D", j.Chain, "-j", j.Target); err != nil {
				break
			}
		}
	}
	var text strings.Builder
	for _, table := range []string{"nat", "filter"} {
		out, err := b.run(ctx, "", "iptables-save", "-t", table)
		if err != nil {
			return err
		}
		var names []string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, ":MOOR-") {
				name, _, _ := strings.Cut(l[1:], " ")
				names = append(names, name)
			}
		}
		fmt.Fprintf(&text, "*%s\n", table)
		for _, n := range names {
			fmt.Fprintf(&text, ":%s - [0:0]\n", n)
		}
		for _, n := range names {
			fmt.Fprintf(&text, "-X %s\n", n)
		}
		text.WriteString("COMMIT\n")
	}
	if _, err := b.run(ctx, text.String(), "iptables-restore", "-w", "--noflush"); err != nil {
		return err
	}
	b.applied, b.chains, b.needFull = nil, nil, true
	return nil
}
