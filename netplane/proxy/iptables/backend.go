package iptables

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moor-dev/moor/netplane/proxy"
)

// Backend applies the rendered text with iptables-restore.
type Backend struct {
	cfg proxy.Config
	log *slog.Logger

	mu      sync.Mutex
	sync    proxy.Syncer[*Fragment] // services last synced, with their fragments
	hairpin proxy.Refs              // local endpoint → services using it
	chains  map[string]bool         // MOOR- service chains in nat; nil: not listed yet
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
	opts := Options{ClusterCIDR: cfg.ClusterCIDR, MasqueradeAll: cfg.MasqueradeAll}
	log := cfg.Log.With("component", "netplane/proxy/iptables")
	return &Backend{
		cfg: cfg,
		log: log,
		sync: proxy.Syncer[*Fragment]{
			Render: func(s *proxy.Service) *Fragment { return RenderService(s, opts) },
			Log:    log,
		},
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

// Sync sorts t in place and programs it. Only the services that differ
// from the last sync are validated and rendered (see proxy.Cache).
//
// A partial sync sends one iptables-restore --noflush with only the changed
// services' chains and their lines in the shared chains, whose size does
// not depend on the table's. A full sync (the first, one after an error or
// after ResyncPeriod, one finding our jumps gone from the built-in chains,
// and a retry of a failed partial sync) rewrites every chain of moor's,
// deletes stale ones and then makes sure every jump from the built-in
// chains exists.
func (b *Backend) Sync(ctx context.Context, t *proxy.Table) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sync.Sync(ctx, t, b.cfg, applier{b})
}

// applier runs the steps of proxy.Syncer.Sync with the backend's lock held.
type applier struct{ b *Backend }

func (a applier) Intact(ctx context.Context) (bool, error) {
	ok := a.b.intact(ctx)
	if !ok {
		a.b.log.Warn("moor's iptables jumps were removed from outside; resyncing fully")
	}
	return ok, nil
}

func (a applier) Partial(ctx context.Context, d *proxy.Delta[*Fragment]) error {
	return a.b.syncPartial(ctx, d)
}

func (a applier) Full(ctx context.Context, d *proxy.Delta[*Fragment]) error {
	return a.b.syncFull(ctx, d)
}

func (b *Backend) syncFull(ctx context.Context, d *proxy.Delta[*Fragment]) error {
	start := time.Now()
	if b.chains == nil {
		chains, err := b.existingChains(ctx)
		if err != nil {
			return err
		}
		b.chains = chains
	}
	var frags []*Fragment
	for _, f := range d.Values() {
		if f != nil {
			frags = append(frags, f)
		}
	}
	chains := map[string]bool{}
	hairpin := proxy.Refs{}
	for _, f := range frags {
		for _, c := range f.Chains {
			chains[c.Name] = true
		}
		hairpin.Add(f.Hairpin)
	}
	var stale []string
	for c := range b.chains {
		if !chains[c] {
			stale = append(stale, c)
		}
	}
	if _, err := b.run(ctx, Text(frags, stale), "iptables-restore", "-w", "--noflush"); err != nil {
		return err
	}
	b.chains = chains
	if err := b.ensureJumps(ctx); err != nil {
		return err
	}
	b.hairpin = hairpin
	b.log.Debug("full sync", "services", len(frags), "took", time.Since(start))
	return nil
}

func (b *Backend) syncPartial(ctx context.Context, d *proxy.Delta[*Fragment]) error {
	var ups []Update
	for _, ch := range d.Changes {
		if ch.Old != nil || ch.Val != nil {
			ups = append(ups, Update{Old: ch.Old, New: ch.Val})
		}
	}
	hairpin, gone, came := proxy.Move(b.hairpin, d, (*Fragment).hairpin)
	text := PartialText(ups, hairpin.Sorted(), len(gone)+len(came) > 0)
	if text == "" {
		return nil
	}
	if _, err := b.run(ctx, text, "iptables-restore", "-w", "--noflush"); err != nil {
		return err
	}
	for _, u := range ups {
		if u.Old != nil {
			for _, c := range u.Old.Chains {
				delete(b.chains, c.Name)
			}
		}
		if u.New != nil {
			for _, c := range u.New.Chains {
				b.chains[c.Name] = true
			}
		}
	}
	b.hairpin = hairpin
	b.log.Debug("partial sync", "changed", len(ups))
	return nil
}

// builtinChains lists the built-in chains holding Jumps, in order.
func builtinChains() [][2]string {
	var out [][2]string
	for _, j := range Jumps {
		if k := [2]string{j.Table, j.Chain}; !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// listChain returns the rules of one built-in chain as `iptables -S`
// prints them. Listing one chain is cheap however large the table is, while
// `iptables -C` would make iptables-nft read every rule of the table.
func (b *Backend) listChain(ctx context.Context, table, chain string) ([]string, error) {
	out, err := b.run(ctx, "", "iptables", "-w", "-t", table, "-S", chain)
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSpace(out), "\n"), nil
}

func jumpRule(chain, target string) string { return "-A " + chain + " -j " + target }

// intact is the canary of partial syncs: the jumps into nat
// MOOR-POSTROUTING and filter MOOR-SERVICES must still be there. A flush of
// either table (or a firewall reload rewriting the built-in chains) removes
// them. Other external edits are repaired by the periodic full resync.
func (b *Backend) intact(ctx context.Context) bool {
	checks := []struct{ table, chain, target string }{
		{"nat", "POSTROUTING", ChainPostrouting},
		{"filter", "INPUT", ChainServices},
	}
	ok := make([]bool, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			rules, err := b.listChain(ctx, c.table, c.chain)
			ok[i] = err == nil && slices.Contains(rules, jumpRule(c.chain, c.target))
		})
	}
	wg.Wait()
	return !slices.Contains(ok, false)
}

// ensureJumps inserts the missing jumps from built-in chains.
func (b *Backend) ensureJumps(ctx context.Context) error {
	for _, tc := range builtinChains() {
		rules, err := b.listChain(ctx, tc[0], tc[1])
		if err != nil {
			return err
		}
		for _, j := range Jumps {
			if j.Table != tc[0] || j.Chain != tc[1] || slices.Contains(rules, jumpRule(j.Chain, j.Target)) {
				continue
			}
			if _, err := b.run(ctx, "", "iptables", "-w", "-t", j.Table, "-I", j.Chain, "-j", j.Target); err != nil {
				return err
			}
		}
	}
	return nil
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
		if strings.HasPrefix(sc.Text(), ":MOOR-") && Owned(name) && !fixedChain(name) {
			chains[name] = true
		}
	}
	return chains, sc.Err()
}

// hairpin returns f's hairpin endpoints; nil for a nil f.
func (f *Fragment) hairpin() []netip.Addr {
	if f == nil {
		return nil
	}
	return f.Hairpin
}

func fixedChain(name string) bool {
	switch name {
	case ChainServices, ChainNodePorts, ChainExternal, ChainPostrouting, ChainMarkMasq:
		return true
	}
	return false
}

// Cleanup removes the jumps from the built-in chains and every chain this
// backend owns (see Owned) in nat and filter, including leftovers of
// earlier runs, in one iptables-restore. Nothing installed is no error.
func (b *Backend) Cleanup(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var text strings.Builder
	for _, table := range []string{"nat", "filter"} {
		out, err := b.run(ctx, "", "iptables-save", "-t", table)
		if err != nil {
			return err
		}
		var names, jumps []string
		for _, l := range strings.Split(out, "\n") {
			if name, ok := strings.CutPrefix(l, ":"); ok {
				if name, _, _ = strings.Cut(name, " "); Owned(name) {
					names = append(names, name)
				}
				continue
			}
			for _, j := range Jumps {
				if j.Table == table && l == jumpRule(j.Chain, j.Target) {
					jumps = append(jumps, "-D"+strings.TrimPrefix(l, "-A"))
				}
			}
		}
		if len(names)+len(jumps) == 0 {
			continue
		}
		fmt.Fprintf(&text, "*%s\n", table)
		for _, n := range names {
			fmt.Fprintf(&text, ":%s - [0:0]\n", n)
		}
		for _, j := range jumps {
			fmt.Fprintln(&text, j)
		}
		for _, n := range names {
			fmt.Fprintf(&text, "-X %s\n", n)
		}
		text.WriteString("COMMIT\n")
	}
	if text.Len() > 0 {
		if _, err := b.run(ctx, text.String(), "iptables-restore", "-w", "--noflush"); err != nil {
			return fmt.Errorf("removing moor's service rules: %w", err)
		}
	}
	b.hairpin, b.chains = nil, nil
	b.sync.Reset()
	return nil
}
