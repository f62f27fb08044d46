// Package seedrepo creates a bare Git repository whose first commit holds
// the files of a directory, so `moor up` can follow a real repository that
// the user clones, edits and pushes to. It is development tooling: it runs
// the git CLI and never touches an existing repository.
package seedrepo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Seed creates bare (a bare repository) with one commit on branch holding
// the files of dir. It does nothing when bare already exists, so a user's
// pushes survive restarts.
func Seed(ctx context.Context, dir, bare, branch string) error {
	if _, err := os.Stat(filepath.Join(bare, "HEAD")); err == nil {
		return nil
	}
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return fmt.Errorf("seed repository: %s is not a directory of manifests (pass --example or --repo)", dir)
	}
	if err := git(ctx, "", "init", "-q", "--bare", "--initial-branch="+branch, bare); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "moor-seed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.CopyFS(work, os.DirFS(dir)); err != nil {
		return fmt.Errorf("seed repository: copy %s: %w", dir, err)
	}
	steps := [][]string{
		{"init", "-q", "--initial-branch=" + branch},
		{"add", "-A"},
		{"-c", "user.name=moor up", "-c", "user.email=moor@localhost", "commit", "-q", "-m", "Seed from " + filepath.Base(dir)},
		{"push", "-q", bare, branch},
	}
	for _, s := range steps {
		if err := git(ctx, work, s...); err != nil {
			os.RemoveAll(bare)
			return err
		}
	}
	return nil
}

func git(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("git %v: %s", args, out)
		}
		return fmt.Errorf("git %v: %w", args, err)
	}
	return nil
}
