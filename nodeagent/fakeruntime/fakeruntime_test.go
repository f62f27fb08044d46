package fakeruntime_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/nodeagent"
	"github.com/moor-dev/moor/nodeagent/fakeruntime"
	"github.com/moor-dev/moor/nodeagent/runtimetest"
)

func TestSuite(t *testing.T) {
	runtimetest.Run(t, func(t *testing.T) (nodeagent.Runtime, runtimetest.Fixture) {
		rt := fakeruntime.New()
		return rt, runtimetest.Fixture{
			Image:       "registry.example/busybox:1",
			Command:     func(p runtimetest.Program) []string { return []string{"fake", p.String()} },
			Output:      "hi\n",
			ExitCode:    3,
			ExecCommand: func(p runtimetest.ExecProgram) []string { return []string{"fake", p.String()} },
			Started: func(t *testing.T, id string, p runtimetest.Program) {
				switch p {
				case runtimetest.Sleep:
					rt.SetStopBehaviour(id, fakeruntime.StopIgnoresSignal)
					rt.HandleExecIO(id, execPrograms())
				case runtimetest.PrintExit:
					if err := rt.Print(id, "hi\n"); err != nil {
						t.Fatal(err)
					}
					if err := rt.Exit(id, 3); err != nil {
						t.Fatal(err)
					}
				case runtimetest.Sandbox:
					sandbox(t, rt, id)
				}
			},
			// Any file has an inode: the fake only records the path.
			NetNS: func(t *testing.T) string {
				p := filepath.Join(t.TempDir(), "netns")
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				return p
			},
		}
	})
}

// execPrograms plays the suite's Exec programs in one container.
func execPrograms() fakeruntime.ExecIOHandler {
	var mu sync.Mutex
	touched := false
	return func(ctx context.Context, cmd []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
		if cmd[1] == runtimetest.ExecCat.String() {
			if _, err := io.Copy(stdout, stdin); err != nil {
				return 1, nil
			}
			return 0, nil
		}
		mu.Lock()
		defer mu.Unlock()
		switch cmd[1] {
		case runtimetest.ExecOutput.String():
			io.WriteString(stdout, runtimetest.ExecStdout)
			io.WriteString(stderr, runtimetest.ExecStderr)
			return runtimetest.ExecExitCode, nil
		case runtimetest.ExecEnv.String():
			io.WriteString(stdout, "1\n")
			return 0, nil
		case runtimetest.ExecHang.String():
			mu.Unlock()
			<-ctx.Done()
			mu.Lock()
			return -1, ctx.Err()
		case runtimetest.ExecTouch.String():
			touched = true
			return 0, nil
		case runtimetest.ExecTest.String():
			if touched {
				return 0, nil
			}
			return 1, nil
		}
		return 127, nil
	}
}

// sandbox plays the Sandbox program from the recorded spec.
func sandbox(t *testing.T, rt *fakeruntime.Runtime, id string) {
	spec, ok := rt.Spec(id)
	if !ok {
		t.Fatalf("Spec(%s) not found", id)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(spec.NetNSPath, &st); err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%s\nnet:[%d]\n", spec.Hostname, st.Ino)
	for _, m := range spec.Mounts {
		if m.Destination == runtimetest.SandboxFile {
			b, err := os.ReadFile(m.Source)
			if err != nil {
				t.Fatal(err)
			}
			out += string(b)
		}
	}
	if err := rt.Print(id, out); err != nil {
		t.Fatal(err)
	}
	if err := rt.Exit(id, 0); err != nil {
		t.Fatal(err)
	}
}

func TestScripting(t *testing.T) {
	ctx := context.Background()
	rt := fakeruntime.New()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	rt.Now = func() time.Time { return now }

	boom := errors.New("registry down")
	rt.FailPull("img:bad", boom)
	if err := rt.PullImage(ctx, "img:bad"); !errors.Is(err, boom) {
		t.Fatalf("PullImage(img:bad) = %v, want %v", err, boom)
	}
	if err := rt.PullImage(ctx, "img:1"); err != nil {
		t.Fatal(err)
	}
	if got := rt.Images(); !slices.Equal(got, []string{"img:1"}) {
		t.Errorf("Images = %v", got)
	}
	if err := rt.Create(ctx, nodeagent.ContainerSpec{ID: "x", Image: "img:missing"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Create with unpulled image = %v, want NotFound", err)
	}
	if err := rt.Create(ctx, nodeagent.ContainerSpec{ID: "bad/id", Image: "img:1"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Create with bad id = %v, want InvalidArgument", err)
	}
	if err := rt.Create(ctx, nodeagent.ContainerSpec{ID: "a", Image: "img:1"}); err != nil {
		t.Fatal(err)
	}
	rt.Fail("start", "a", errdefs.ErrUnavailable)
	if err := rt.Start(ctx, "a"); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("scripted Start failure = %v", err)
	}
	if err := rt.Start(ctx, "a"); err != nil {
		t.Fatalf("Start after one scripted failure: %v", err)
	}
	now = now.Add(time.Minute)
	if err := rt.Exit("a", 2); err != nil {
		t.Fatal(err)
	}
	list, _ := rt.List(ctx)
	if len(list) != 1 || list[0].ExitCode != 2 || !list[0].FinishedAt.Equal(now) ||
		!list[0].StartedAt.Equal(now.Add(-time.Minute)) {
		t.Errorf("List = %+v", list)
	}
	if err := rt.Exit("a", 1); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("Exit of exited container = %v", err)
	}
	if err := rt.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	want := []string{"pull img:bad", "pull img:1", "create x", "create bad/id", "create a",
		"start a", "start a", "remove a"}
	if got := rt.Calls(); !slices.Equal(got, want) {
		t.Errorf("Calls =\n%q\nwant\n%q", got, want)
	}
}

func TestStopHonoursContext(t *testing.T) {
	rt := fakeruntime.New()
	ctx, cancel := context.WithCancel(context.Background())
	rt.AddImage("img")
	_ = rt.Create(ctx, nodeagent.ContainerSpec{ID: "a", Image: "img"})
	_ = rt.Start(ctx, "a")
	rt.SetStopBehaviour("a", fakeruntime.StopIgnoresSignal)
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if err := rt.Stop(ctx, "a", time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Stop = %v, want context.Canceled", err)
	}
}
