// Package source follows one branch of one Git repository: it keeps a bare
// mirror of that branch in the server's data dir, fetches only when the
// remote head moved (force-pushes included) and reads the manifests under a
// path at a given commit straight from the object store.
//
// It owns the mirror directory and the Git transports (file, https with a
// token, ssh with a key). It does not parse manifests, check out a work
// tree, or decide what a new commit means: that is the controller's job.
package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// remoteName is the mirror's only remote.
const remoteName = "origin"

// Revision is the commit at the head of the followed branch.
type Revision struct {
	Commit  string    // full hex SHA
	Author  string    // "Name <email>"
	Message string    // full message without the trailing newline
	Time    time.Time // committer time
}

// Source follows the configured branch. Its methods are safe for
// concurrent use; they are serialised on one mirror.
type Source struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	repo *git.Repository // nil until the mirror is opened
	last string          // head returned by the previous Fetch

	fetches atomic.Int64 // network fetches done, for tests and logs
}

// New validates cfg and returns a Source. It does no I/O: the mirror is
// opened or created by the first Fetch.
func New(cfg Config, log *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "source", "url", redact(cfg.URL), "branch", cfg.Branch)
	return &Source{cfg: cfg, log: log}, nil
}

// branchRef is the branch in the remote and, under the same name, in the
// mirror.
func (s *Source) branchRef() plumbing.ReferenceName {
	return plumbing.NewBranchReferenceName(s.cfg.Branch)
}

// refSpec fetches the branch onto itself, forced so rewritten history is
// followed.
func (s *Source) refSpec() config.RefSpec {
	return config.RefSpec("+" + s.branchRef().String() + ":" + s.branchRef().String())
}

// Fetch brings the mirror up to the remote branch head and returns it.
// changed reports whether the head differs from the one the previous Fetch
// returned; the first Fetch of a Source always reports true. When the
// remote head equals the mirror's, nothing is downloaded.
func (s *Source) Fetch(ctx context.Context) (Revision, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rev, err := s.fetch(ctx)
	if err != nil {
		return Revision{}, false, s.wrap(ctx, "fetch", err)
	}
	changed := rev.Commit != s.last
	if changed {
		s.log.InfoContext(ctx, "new head", "commit", rev.Commit, "previous", s.last)
	}
	s.last = rev.Commit
	return rev, changed, nil
}

func (s *Source) fetch(ctx context.Context) (Revision, error) {
	if err := ctx.Err(); err != nil {
		return Revision{}, err
	}
	repo, err := s.openMirror()
	if err != nil {
		return Revision{}, err
	}
	opts, err := s.cfg.transportOptions()
	if err != nil {
		return Revision{}, err
	}
	remoteHead, err := s.remoteHead(ctx, repo, opts)
	if err != nil {
		return Revision{}, err
	}
	local, err := repo.Reference(s.branchRef(), true)
	switch {
	case err == nil && local.Hash() == remoteHead:
		s.log.DebugContext(ctx, "remote head unchanged; not fetching", "commit", remoteHead.String())
	case err == nil || errors.Is(err, plumbing.ErrReferenceNotFound):
		if err := s.download(ctx, repo, opts, remoteHead); err != nil {
			return Revision{}, err
		}
	default:
		return Revision{}, fmt.Errorf("read mirror ref %s: %w", s.branchRef(), err)
	}
	return s.head(repo)
}

// remoteHead asks the remote for the branch head (git ls-remote).
func (s *Source) remoteHead(ctx context.Context, repo *git.Repository, o transportOptions) (plumbing.Hash, error) {
	remote, err := repo.Remote(remoteName)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("mirror remote: %w", err)
	}
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: o.auth, CABundle: o.caBundle})
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return plumbing.ZeroHash, s.branchNotFound()
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("list remote refs: %w", err)
	}
	for _, r := range refs {
		if r.Name() == s.branchRef() && r.Type() == plumbing.HashReference {
			return r.Hash(), nil
		}
	}
	return plumbing.ZeroHash, s.branchNotFound()
}

func (s *Source) branchNotFound() error {
	return fmt.Errorf("branch %q not found in %s; check the branch name and that it has been pushed: %w",
		s.cfg.Branch, redact(s.cfg.URL), errdefs.ErrNotFound)
}

// download fetches the branch into the mirror.
func (s *Source) download(ctx context.Context, repo *git.Repository, o transportOptions, want plumbing.Hash) error {
	s.fetches.Add(1)
	start := time.Now()
	err := repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{s.refSpec()},
		Auth:       o.auth,
		CABundle:   o.caBundle,
		Tags:       git.NoTags,
		Force:      true,
	})
	switch {
	case errors.Is(err, git.NoErrAlreadyUpToDate):
	case errors.Is(err, git.NoMatchingRefSpecError{}):
		return s.branchNotFound()
	case err != nil:
		return fmt.Errorf("download branch: %w", err)
	}
	s.log.InfoContext(ctx, "fetched", "commit", want.String(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// head reads the mirror's branch head.
func (s *Source) head(repo *git.Repository) (Revision, error) {
	ref, err := repo.Reference(s.branchRef(), true)
	if err != nil {
		return Revision{}, fmt.Errorf("read mirror ref %s: %w", s.branchRef(), err)
	}
	c, err := repo.CommitObject(ref.Hash())
	if err != nil {
		return Revision{}, fmt.Errorf("read head commit %s: %w", ref.Hash(), err)
	}
	return Revision{
		Commit:  c.Hash.String(),
		Author:  fmt.Sprintf("%s <%s>", c.Author.Name, c.Author.Email),
		Message: strings.TrimRight(c.Message, "\n"),
		Time:    c.Committer.When,
	}, nil
}

// openMirror opens the bare mirror in Dir, creating it when Dir is missing
// or empty, and points its remote at the configured URL.
func (s *Source) openMirror() (*git.Repository, error) {
	if s.repo != nil {
		return s.repo, nil
	}
	dir := s.cfg.Dir
	entries, err := os.ReadDir(dir)
	var repo *git.Repository
	switch {
	case err == nil && len(entries) > 0:
		repo, err = git.PlainOpen(dir)
		if err != nil {
			return nil, fmt.Errorf("open mirror %s: %w (remove the directory to clone afresh)", dir, err)
		}
		s.log.Debug("reopened mirror", "dir", dir)
	case err == nil || errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create mirror directory: %w", err)
		}
		repo, err = git.PlainInit(dir, true)
		if err != nil {
			return nil, fmt.Errorf("create mirror %s: %w", dir, err)
		}
		s.log.Info("created mirror", "dir", dir)
	default:
		return nil, fmt.Errorf("read mirror directory: %w", err)
	}
	if err := s.ensureRemote(repo); err != nil {
		return nil, err
	}
	s.repo = repo
	return repo, nil
}

// ensureRemote makes the mirror's remote point at the configured URL.
func (s *Source) ensureRemote(repo *git.Repository) error {
	remote, err := repo.Remote(remoteName)
	switch {
	case err == nil && len(remote.Config().URLs) == 1 && remote.Config().URLs[0] == s.cfg.URL:
		return nil
	case err == nil:
		s.log.Warn("repository URL changed; repointing the mirror", "old", redact(strings.Join(remote.Config().URLs, ",")))
		if err := repo.DeleteRemote(remoteName); err != nil {
			return fmt.Errorf("mirror remote: %w", err)
		}
	case !errors.Is(err, git.ErrRemoteNotFound):
		return fmt.Errorf("mirror remote: %w", err)
	}
	_, err = repo.CreateRemote(&config.RemoteConfig{
		Name:  remoteName,
		URLs:  []string{s.cfg.URL},
		Fetch: []config.RefSpec{s.refSpec()},
	})
	if err != nil {
		return fmt.Errorf("mirror remote: %w", err)
	}
	return nil
}

// wrap adds context to err, and makes a cancellation visible to errors.Is
// even when the Git transport did not wrap it.
func (s *Source) wrap(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("git source: %s: %w (%v)", op, ctxErr, err)
	}
	return fmt.Errorf("git source: %s: %w", op, err)
}
