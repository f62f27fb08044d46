package seedrepo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSeed(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "pod.yaml"), []byte("kind: Pod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bare := filepath.Join(t.TempDir(), "repo.git")
	ctx := context.Background()
	if err := Seed(ctx, src, bare, "main"); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "--git-dir", bare, "show", "main:pod.yaml").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "kind: Pod" {
		t.Fatalf("git show: %v: %s", err, out)
	}
	// A second Seed leaves the repository alone.
	if err := os.WriteFile(filepath.Join(src, "pod.yaml"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Seed(ctx, src, bare, "main"); err != nil {
		t.Fatal(err)
	}
	out, _ = exec.Command("git", "--git-dir", bare, "show", "main:pod.yaml").CombinedOutput()
	if strings.TrimSpace(string(out)) != "kind: Pod" {
		t.Fatalf("second seed rewrote the repository: %s", out)
	}
	if err := Seed(ctx, filepath.Join(src, "missing"), filepath.Join(t.TempDir(), "x.git"), "main"); err == nil {
		t.Fatal("seeding from a missing directory succeeded")
	}
}
