package podnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// The iptables chains podnet owns. Other MOOR- chains (service VIPs) belong
// to netplane/proxy; each side flushes only its own chains.
const (
	// ChainEgress (nat) masquerades pod traffic leaving the cluster CIDR.
	ChainEgress = "MOOR-PODNET-EGRESS"
	// ChainForward (filter) accepts forwarded pod traffic even when the
	// FORWARD policy is DROP (as Docker leaves it).
	ChainForward = "MOOR-PODNET-FORWARD"
)

// renderRules returns the iptables-restore --noflush input for a node: the
// two podnet chains, flushed and filled. The jumps from the built-in chains
// are added separately (ensureJumps) since --noflush cannot test for them.
func renderRules(podCIDR, clusterCIDR netip.Prefix, bridge string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*nat\n:%s - [0:0]\n", ChainEgress)
	// Pod to pod (any node) keeps its source address; everything else from
	// this node's pods leaves with the node's address.
	fmt.Fprintf(&b, "-A %s -s %s -d %s -j RETURN\n", ChainEgress, podCIDR, clusterCIDR)
	fmt.Fprintf(&b, "-A %s -s %s -m comment --comment \"moor pod egress\" -j MASQUERADE\n", ChainEgress, podCIDR)
	b.WriteString("COMMIT\n")
	fmt.Fprintf(&b, "*filter\n:%s - [0:0]\n", ChainForward)
	fmt.Fprintf(&b, "-A %s -i %s -j ACCEPT\n", ChainForward, bridge)
	fmt.Fprintf(&b, "-A %s -o %s -j ACCEPT\n", ChainForward, bridge)
	b.WriteString("COMMIT\n")
	return b.Bytes()
}

// jump is one rule in a built-in chain that sends traffic to a podnet chain.
type jump struct {
	table, chain string
	args         []string
}

// jumps are the rules that hook podnet's chains into the built-in ones.
func jumps() []jump {
	return []jump{
		{"nat", "POSTROUTING", []string{"-m", "comment", "--comment", "moor pod egress", "-j", ChainEgress}},
		{"filter", "FORWARD", []string{"-m", "comment", "--comment", "moor pod forwarding", "-j", ChainForward}},
	}
}

// iptables runs the iptables tools in the node's network namespace.
type iptables struct {
	netns string // "" = the current one
}

// command builds the command line, entering netns with nsenter if set.
func (t iptables) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if t.netns == "" {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + t.netns, name}, args...)...)
}

// run runs one command, returning its output in the error.
func (t iptables) run(ctx context.Context, stdin []byte, name string, args ...string) error {
	cmd := t.command(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// apply loads the rendered chains and makes sure the jumps exist.
func (t iptables) apply(ctx context.Context, rules []byte) error {
	if err := t.run(ctx, rules, "iptables-restore", "-w", "--noflush"); err != nil {
		return fmt.Errorf("load podnet iptables rules: %w", err)
	}
	for _, j := range jumps() {
		check := append([]string{"-w", "-t", j.table, "-C", j.chain}, j.args...)
		err := t.run(ctx, nil, "iptables", check...)
		var exitErr *exec.ExitError
		if err == nil {
			continue
		}
		if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
			return fmt.Errorf("check podnet jump: %w", err)
		}
		add := append([]string{"-w", "-t", j.table, "-A", j.chain}, j.args...)
		if err := t.run(ctx, nil, "iptables", add...); err != nil {
			return fmt.Errorf("add podnet jump: %w", err)
		}
	}
	return nil
}

// output runs one command and returns its standard output.
func (t iptables) output(ctx context.Context, name string, args ...string) (string, error) {
	cmd := t.command(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return string(out), nil
}

// remove deletes podnet's chains and every jump to them from the built-in
// chain that holds podnet's jump, in one iptables-restore. Missing chains
// are fine, and a table without them is not touched (so nothing, not even
// an empty nat table, is created).
func (t iptables) remove(ctx context.Context) error {
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		return nil // EnsureNode cannot have run: it needs iptables
	}
	var b bytes.Buffer
	for _, j := range jumps() {
		target := j.args[len(j.args)-1]
		_, err := t.output(ctx, "iptables", "-w", "-t", j.table, "-S", target)
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) && exitErr.ExitCode() == 1 {
			continue // no such chain, so no jump to it either
		}
		if err != nil {
			return fmt.Errorf("look for podnet chain %s: %w", target, err)
		}
		rules, err := t.output(ctx, "iptables", "-w", "-t", j.table, "-S", j.chain)
		if err != nil {
			return fmt.Errorf("list %s jumps: %w", j.chain, err)
		}
		fmt.Fprintf(&b, "*%s\n:%s - [0:0]\n", j.table, target)
		for _, l := range strings.Split(rules, "\n") {
			if strings.HasPrefix(l, "-A "+j.chain+" ") && strings.HasSuffix(l, " -j "+target) {
				fmt.Fprintf(&b, "-D%s\n", strings.TrimPrefix(l, "-A"))
			}
		}
		fmt.Fprintf(&b, "-X %s\nCOMMIT\n", target)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := t.run(ctx, b.Bytes(), "iptables-restore", "-w", "--noflush"); err != nil {
		return fmt.Errorf("remove podnet iptables rules: %w", err)
	}
	return nil
}
