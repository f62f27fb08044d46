package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moor-dev/moor/nodeagent"
)

// Figures for the walking skeleton. Run as root:
//
//	go test ./e2e -run '^$' -bench . -benchtime 10x
//
// BenchmarkPushToRunning measures git push → `moor sync` → both pods of the
// changed Deployment running (image cached); BenchmarkContainerdReplace is
// the baseline: the same replacement done directly on containerd, without
// moor. BenchmarkAgentIdleRSS reports the agent's resident memory with 0
// and 10 pods.

func BenchmarkPushToRunning(b *testing.B) {
	e := newEnv(b)
	img := e.image("1")
	e.push("v0", map[string]string{"web.yaml": deployment(img, "echo 0; exec sleep 3600", 2)})
	e.startServer()
	e.startAgent("node-a")
	e.mustCLI("sync")
	e.eventually(60*time.Second, "first pods", func() error { return podsRunning(e.pods(), "", 2) })

	var samples []time.Duration
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		b.StopTimer()
		e.eventually(60*time.Second, "old pods gone", func() error {
			if n := len(e.containers()); n != 2 {
				return fmt.Errorf("%d containers", n)
			}
			return nil
		})
		before := running(e.containers())
		e.push(fmt.Sprintf("v%d", i), map[string]string{"web.yaml": deployment(img, fmt.Sprintf("echo %d; exec sleep 3600", i), 2)})
		b.StartTimer()
		start := time.Now()
		e.mustCLI("sync")
		// Done when both new pods run; the old ones may still be in
		// their grace period (sleep as PID 1 ignores SIGTERM).
		e.eventually(60*time.Second, "new pods running", func() error {
			fresh := 0
			for name := range running(e.containers()) {
				if _, old := before[name]; !old {
					fresh++
				}
			}
			if fresh != 2 {
				return fmt.Errorf("%d new pods running", fresh)
			}
			return nil
		})
		samples = append(samples, time.Since(start))
	}
	reportMedian(b, samples)
}

func BenchmarkContainerdReplace(b *testing.B) {
	e := newEnv(b)
	img := e.image("1")
	ctx := e.ctx
	if err := e.runtime.PullImage(ctx, img); err != nil {
		b.Fatal(err)
	}
	ids := func(i int) []string { return []string{fmt.Sprintf("base-%d-a", i), fmt.Sprintf("base-%d-b", i)} }
	start := func(i int) {
		for _, id := range ids(i) {
			spec := nodeagent.ContainerSpec{ID: id, Image: img, Command: []string{"sh", "-c"},
				Args: []string{fmt.Sprintf("echo %d; exec sleep 3600", i)}, LogPath: filepath.Join(e.dir, id+".log")}
			if err := e.runtime.Create(ctx, spec); err != nil {
				b.Fatal(err)
			}
			if err := e.runtime.Start(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
	}
	start(0)
	var samples []time.Duration
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		// Timed as moor's figure is: until the new containers run. The old
		// ones are stopped afterwards, outside the timer.
		t0 := time.Now()
		start(i)
		samples = append(samples, time.Since(t0))
		b.StopTimer()
		for _, id := range ids(i - 1) {
			if err := e.runtime.Stop(ctx, id, 2*time.Second); err != nil {
				b.Fatal(err)
			}
			if err := e.runtime.Remove(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	reportMedian(b, samples)
}

func BenchmarkAgentIdleRSS(b *testing.B) {
	for _, pods := range []int{0, 10} {
		b.Run(fmt.Sprintf("pods=%d", pods), func(b *testing.B) {
			e := newEnv(b)
			img := e.image("1")
			e.push("v", map[string]string{"web.yaml": deployment(img, "exec sleep 3600", pods)})
			e.startServer()
			agent := e.startAgent("node-a")
			e.mustCLI("sync")
			e.eventually(60*time.Second, "pods running", func() error { return podsRunning(e.pods(), "", pods) })
			time.Sleep(10 * time.Second) // idle: long-polls and periodic reports only
			b.ResetTimer()
			var rss float64
			for i := 0; i < b.N; i++ {
				rss = rssMiB(b, agent.cmd.Process.Pid)
			}
			b.ReportMetric(rss, "rss-MiB")
		})
	}
}

func rssMiB(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

func reportMedian(b *testing.B, samples []time.Duration) {
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	b.ReportMetric(float64(samples[len(samples)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(samples[len(samples)-1].Microseconds())/1000, "max-ms")
}
