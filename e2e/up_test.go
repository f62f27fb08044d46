package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestUp runs `moor up` on repo-example as a user would, checks that every
// pod of the example runs, then interrupts it and checks that nothing it
// started is left: no registry, containerd, shim or container process.
func TestUp(t *testing.T) {
	requireRoot(t)
	moor := moorBinary(t)
	dir := t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// repo-example's manifests name 127.0.0.1:5310; use it when free, as up does.
	cmd := exec.Command(moor, "up", "--example", "../repo-example", "--data-dir", dir, "--listen", listen)
	logf, err := os.Create(filepath.Join(dir, "up.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("--- moor up log ---\n%s", tail(string(b), 60))
		}
	})

	conf := filepath.Join(dir, "server", "admin.conf")
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for {
		out, err := exec.Command(moor, "--config", conf, "get", "pods", "-A", "-o", "json").Output()
		if err == nil {
			var list struct{ Items []corev1.Pod }
			if json.Unmarshal(out, &list) == nil {
				running := 0
				for _, p := range list.Items {
					// web has a readiness probe (httpGet on its pod IP):
					// Ready also proves the pod network and the probe.
					if p.Status.Phase == corev1.PodRunning && podReady(&p) {
						running++
					}
				}
				last = fmt.Sprintf("%d of %d pods running and ready", running, len(list.Items))
				if running == 4 && len(list.Items) == 4 {
					break
				}
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("repo-example did not come up: %s", last)
		}
		time.Sleep(500 * time.Millisecond)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("moor up exited with %v after Ctrl-C", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("moor up did not stop within 60s of Ctrl-C")
	}
	if left := processesMentioning(dir); len(left) > 0 {
		t.Fatalf("moor up left processes behind:\n%s", strings.Join(left, "\n"))
	}
	if _, err := exec.Command(moor, "--config", conf, "get", "pods", "--request-timeout", "2s").Output(); err == nil {
		t.Fatal("the server still answers after Ctrl-C")
	}
	if left := hostNetworkLeftovers(); len(left) > 0 {
		t.Fatalf("moor up left its network in the host:\n%s", strings.Join(left, "\n"))
	}
}

// hostNetworkLeftovers lists what the pod network of `moor up` puts into
// the host and Ctrl-C must take out again: the bridge, the host-gw routes
// (protocol 77), the nftables table and the MOOR- iptables chains.
func hostNetworkLeftovers() []string {
	var left []string
	if err := exec.Command("ip", "link", "show", "moor0").Run(); err == nil {
		left = append(left, "bridge moor0")
	}
	if out, _ := exec.Command("ip", "route", "show", "proto", "77").Output(); len(strings.TrimSpace(string(out))) > 0 {
		left = append(left, "routes: "+strings.TrimSpace(string(out)))
	}
	if err := exec.Command("nft", "list", "table", "ip", "moor").Run(); err == nil {
		left = append(left, "nftables table ip moor")
	}
	for _, table := range []string{"nat", "filter"} {
		out, _ := exec.Command("iptables-save", "-t", table).Output()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "MOOR-") {
				left = append(left, "iptables -t "+table+": "+line)
			}
		}
	}
	return left
}

// processesMentioning lists processes whose command line names dir, plus
// any process still in a moor container cgroup.
func processesMentioning(dir string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		line := strings.ReplaceAll(string(raw), "\x00", " ")
		cg, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		// up's containers live under the cgroup parent /moor-<node>.
		if strings.Contains(line, dir) || strings.Contains(string(cg), "/moor-") {
			out = append(out, e.Name()+": "+line)
		}
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
