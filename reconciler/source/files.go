package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/containerd/errdefs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Files returns the regular files under Path at commit, keyed by their
// slash-separated path relative to Path. It reads the commit's tree from
// the mirror (no work tree) and skips symlinks and submodules.
//
// Errors: an unknown commit or a missing Path wrap errdefs.ErrNotFound, a
// malformed SHA errdefs.ErrInvalidArgument, and a file or total over the
// size caps errdefs.ErrResourceExhausted; those last two are properties of
// the commit, so retrying will not help.
func (s *Source) Files(ctx context.Context, commit string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	files, err := s.files(ctx, commit)
	if err != nil {
		return nil, s.wrap(ctx, "read files at "+commit, err)
	}
	return files, nil
}

func (s *Source) files(ctx context.Context, commit string) (map[string][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(commit) != 40 || !plumbing.IsHash(commit) {
		return nil, fmt.Errorf("%w: %q is not a full 40-character commit SHA", errdefs.ErrInvalidArgument, commit)
	}
	repo, err := s.openMirror()
	if err != nil {
		return nil, err
	}
	c, err := repo.CommitObject(plumbing.NewHash(commit))
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("commit is not in the mirror (Fetch first): %w", errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read commit: %w", err)
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree: %w", err)
	}
	if s.cfg.Path != "" {
		tree, err = tree.Tree(s.cfg.Path)
		if errors.Is(err, object.ErrDirectoryNotFound) || errors.Is(err, object.ErrEntryNotFound) {
			return nil, fmt.Errorf("directory %q does not exist at this commit; fix the configured path: %w", s.cfg.Path, errdefs.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("read directory %q: %w", s.cfg.Path, err)
		}
	}
	r := treeReader{ctx: ctx, repo: repo, cfg: &s.cfg, out: map[string][]byte{}}
	if err := r.walk(tree, ""); err != nil {
		return nil, err
	}
	return r.out, nil
}

// treeReader collects the files of a tree within the size caps.
type treeReader struct {
	ctx   context.Context
	repo  *git.Repository
	cfg   *Config
	out   map[string][]byte
	total int64
}

func (r *treeReader) walk(t *object.Tree, prefix string) error {
	for _, e := range t.Entries {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\x00") {
			return fmt.Errorf("%w: tree entry %q under %q has an invalid name", errdefs.ErrInvalidArgument, e.Name, prefix)
		}
		p := e.Name
		if prefix != "" {
			p = prefix + "/" + e.Name
		}
		switch e.Mode {
		case filemode.Dir:
			sub, err := r.repo.TreeObject(e.Hash)
			if err != nil {
				return fmt.Errorf("read directory %s: %w", p, err)
			}
			if err := r.walk(sub, p); err != nil {
				return err
			}
		case filemode.Regular, filemode.Executable, filemode.Deprecated:
			if err := r.read(p, e.Hash); err != nil {
				return err
			}
		default: // symlinks and submodules point outside the tree
		}
	}
	return nil
}

// read adds one blob, enforcing the caps before reading it.
func (r *treeReader) read(p string, h plumbing.Hash) error {
	blob, err := r.repo.BlobObject(h)
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	if blob.Size > r.cfg.MaxFileBytes {
		return fmt.Errorf("%w: %s is %d bytes, over the %d-byte limit per file; remove it from the manifest directory or raise the limit",
			errdefs.ErrResourceExhausted, p, blob.Size, r.cfg.MaxFileBytes)
	}
	r.total += blob.Size
	if r.total > r.cfg.MaxTotalBytes {
		return fmt.Errorf("%w: files under the manifest directory exceed the %d-byte total limit (at %s); move unrelated files elsewhere or raise the limit",
			errdefs.ErrResourceExhausted, r.cfg.MaxTotalBytes, p)
	}
	rd, err := blob.Reader()
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	defer rd.Close()
	b, err := io.ReadAll(io.LimitReader(rd, blob.Size+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	if int64(len(b)) != blob.Size {
		return fmt.Errorf("read %s: got %d bytes, blob header says %d", p, len(b), blob.Size)
	}
	r.out[p] = b
	return nil
}
