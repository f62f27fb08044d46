package e2e

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// logsManifests are a Job printing three lines and a Deployment printing
// a numbered line every second.
func logsManifests(image string) string {
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata: {name: printer, namespace: default}
spec:
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: %[1]s
        command: ["sh", "-c"]
        args: ["echo line one; echo line two; echo line three"]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ticker, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: ticker}}
  template:
    metadata: {labels: {app: ticker}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: %[1]s
        command: ["sh", "-c"]
        args: ["i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done"]
`, image)
}

// TestLogs reads logs through the server's reverse tunnel to the agent:
// a finished Job's output, its last line, and a follow of a Deployment's
// pod that keeps receiving new lines.
func TestLogs(t *testing.T) {
	e := newNodeEnv(t, "logs", logsManifests)

	e.eventually(60*time.Second, "job printer completes", func() error {
		if j, ok := e.jobs()["printer"]; !ok || !jobComplete(j) {
			return fmt.Errorf("job printer not complete yet")
		}
		return nil
	})
	if got := e.mustCLI("logs", "job/printer"); got != "line one\nline two\nline three\n" {
		t.Fatalf("moor logs job/printer:\n%q", got)
	}
	if got := e.mustCLI("logs", "job/printer", "--tail", "1"); got != "line three\n" {
		t.Fatalf("moor logs job/printer --tail 1:\n%q", got)
	}
	j := e.jobs()["printer"]
	if st := j.Status; st.StartTime == nil || st.CompletionTime == nil || st.CompletionTime.Before(st.StartTime) ||
		st.CompletionTime.Sub(st.StartTime.Time) > 30*time.Second {
		t.Fatalf("job printer times: start %v completion %v", st.StartTime, st.CompletionTime)
	}
	t.Logf("moor get jobs:\n%s", e.mustCLI("get", "jobs"))

	if out, err := e.cli("logs", "no-such-pod"); err == nil || !strings.Contains(err.Error(), `pods "no-such-pod" not found`) {
		t.Fatalf("logs of a missing pod: %q %v", out, err)
	}

	// The Deployment's pod prints; -f keeps delivering new lines.
	e.eventually(60*time.Second, "ticker prints", func() error {
		out, err := e.cli("logs", "deployment/ticker", "--tail", "1")
		if err != nil {
			return err
		}
		if !strings.HasPrefix(out, "tick ") {
			return fmt.Errorf("logs: %q", out)
		}
		return nil
	})
	cmd := e.cliCmd(e.ctx, "logs", "-f", "deployment/ticker", "--tail", "1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	first, last := -1, -1
	deadline := time.After(20 * time.Second)
	for last < first+3 || first < 0 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("moor logs -f ended after tick %d", last)
			}
			n, err := strconv.Atoi(strings.TrimPrefix(l, "tick "))
			if err != nil {
				t.Fatalf("moor logs -f printed %q", l)
			}
			if last >= 0 && n != last+1 {
				t.Fatalf("moor logs -f: tick %d after tick %d", n, last)
			}
			if first < 0 {
				first = n
			}
			last = n
		case <-deadline:
			t.Fatalf("moor logs -f: ticks %d..%d after 20s, want 4 in a row", first, last)
		}
	}
	t.Logf("moor logs -f followed ticks %d..%d", first, last)
}
