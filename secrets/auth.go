package secrets

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
)

// tokenSource keeps the node's Vault token: it logs in, renews the token
// before it expires, and logs in again when renewal fails for any reason
// but Vault being unavailable, when the token nears its maximum TTL, or
// when Vault rejects it.
type tokenSource struct {
	auth        AuthConfig
	renewBefore time.Duration
	maxRetry    time.Duration
	v           *vault
	log         *slog.Logger
	now         func() time.Time

	loginMu sync.Mutex // one login at a time

	mu      sync.Mutex
	tok     nodeToken
	changed chan struct{} // a token was obtained or dropped; run replans

	logins   atomic.Int64 // successful logins, for tests and logs
	renewals atomic.Int64 // successful renewals, for tests
}

// nodeToken is a token and what Vault said of it.
type nodeToken struct {
	value     string
	obtained  time.Time     // login or last renewal
	ttl       time.Duration // 0: never expires
	first     time.Duration // TTL at login
	renewable bool
}

func (t nodeToken) valid(now time.Time) bool {
	return t.value != "" && (t.ttl == 0 || now.Before(t.obtained.Add(t.ttl)))
}

func newTokenSource(cfg Config, v *vault, log *slog.Logger) *tokenSource {
	return &tokenSource{
		auth:        cfg.Auth,
		renewBefore: cfg.RenewBefore,
		maxRetry:    cfg.PollInterval,
		v:           v,
		log:         log,
		now:         time.Now,
		changed:     make(chan struct{}, 1),
	}
}

func (s *tokenSource) current() nodeToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok
}

// set installs t unless the token was replaced since old was read (old is
// the value that was current when the caller started).
func (s *tokenSource) set(old string, t nodeToken) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.value != old {
		return
	}
	s.tok = t
	s.v.api.SetToken(t.value)
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// ensure returns a valid token, logging in when there is none.
func (s *tokenSource) ensure(ctx context.Context) (string, error) {
	if t := s.current(); t.valid(s.now()) {
		return t.value, nil
	}
	return s.login(ctx, "")
}

// login obtains a new token, unless the current one is valid and is not
// stale (a token Vault rejected or that must be replaced).
func (s *tokenSource) login(ctx context.Context, stale string) (string, error) {
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	cur := s.current()
	if cur.valid(s.now()) && cur.value != stale {
		return cur.value, nil
	}
	t, err := s.obtain(ctx)
	if err != nil {
		return "", err
	}
	s.set(cur.value, t)
	n := s.logins.Add(1)
	s.log.Info("logged in to vault", "ttl", t.ttl, "renewable", t.renewable, "logins", n)
	return t.value, nil
}

// obtain logs in with AppRole or reads the token file.
func (s *tokenSource) obtain(ctx context.Context) (nodeToken, error) {
	now := s.now()
	if a := s.auth.AppRole; a != nil {
		roleID, err := readCredential(a.RoleIDFile, "role ID")
		if err != nil {
			return nodeToken{}, err
		}
		secretID, err := readCredential(a.SecretIDFile, "secret ID")
		if err != nil {
			return nodeToken{}, err
		}
		sec, err := s.v.login(ctx, "auth/"+a.MountPath+"/login", map[string]any{"role_id": roleID, "secret_id": secretID})
		if err != nil {
			return nodeToken{}, err
		}
		ttl := time.Duration(sec.Auth.LeaseDuration) * time.Second
		return nodeToken{value: sec.Auth.ClientToken, obtained: now, ttl: ttl, first: ttl, renewable: sec.Auth.Renewable}, nil
	}
	tok, err := readCredential(s.auth.TokenFile, "token")
	if err != nil {
		return nodeToken{}, err
	}
	sec, err := s.v.lookupToken(ctx, tok)
	if errors.Is(err, ErrPermissionDenied) {
		return nodeToken{}, &Error{Class: ErrPermissionDenied, Path: "auth/token/lookup-self",
			Msg: fmt.Sprintf("vault rejected the token in %s (expired or revoked): write a valid token to the file", s.auth.TokenFile), Err: err}
	}
	if err != nil {
		return nodeToken{}, err
	}
	ttl, err := sec.TokenTTL()
	if err != nil {
		return nodeToken{}, &Error{Class: ErrUnavailable, Path: "auth/token/lookup-self", Msg: "vault's token lookup has no readable ttl", Err: err}
	}
	renewable, _ := sec.TokenIsRenewable()
	return nodeToken{value: tok, obtained: now, ttl: ttl, first: ttl, renewable: renewable}, nil
}

func readCredential(path, what string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", invalid("", fmt.Sprintf("read the vault %s file: %v", what, err))
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", invalid("", fmt.Sprintf("the vault %s file %s is empty: write the %s to it", what, path, what))
	}
	return v, nil
}

// rejected reports whether Vault no longer accepts token (expired or
// revoked), as opposed to a policy denying one path.
func (s *tokenSource) rejected(ctx context.Context, token string) bool {
	_, err := s.v.lookupToken(ctx, token)
	return errors.Is(err, ErrPermissionDenied)
}

// run renews the token before it expires and logs in again when it must,
// until ctx ends. Failures are retried with a backoff up to maxRetry.
func (s *tokenSource) run(ctx context.Context) {
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		t := s.current()
		now := s.now()
		var plan renewal
		switch {
		case !t.valid(now):
			plan = renewal{At: now} // log in
		default:
			plan = tokenRenewal(t.obtained, t.ttl, t.first, t.renewable, s.renewBefore)
		}
		if failures > 0 {
			plan.At = now.Add(backoff(failures-1, s.maxRetry))
		}
		if plan.At.IsZero() {
			// A token that never expires: nothing to do until it changes.
			select {
			case <-ctx.Done():
				return
			case <-s.changed:
				continue
			}
		}
		timer.Reset(max(plan.At.Sub(now), 0))
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
			// Since Go 1.23 a stopped or reset timer sends no stale value.
			timer.Stop()
			continue
		case <-timer.C:
		}

		t = s.current()
		var err error
		if t.valid(s.now()) && plan.Renew && t.renewable {
			err = s.renew(ctx, t)
			if err != nil && !errors.Is(err, ErrUnavailable) && ctx.Err() == nil {
				s.log.Info("vault token renewal failed; logging in again", "err", err)
				_, err = s.login(ctx, t.value)
			}
		} else {
			_, err = s.login(ctx, t.value)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			s.log.Warn("vault token not renewed", "err", err, "failures", failures)
		default:
			failures = 0
		}
		// Drain a change signal our own renewal or login caused.
		select {
		case <-s.changed:
		default:
		}
	}
}

// renew renews t by its login TTL.
func (s *tokenSource) renew(ctx context.Context, t nodeToken) error {
	sec, err := s.v.renewSelf(ctx, t.first)
	if err != nil {
		return err
	}
	n := t
	n.obtained = s.now()
	n.ttl = time.Duration(sec.Auth.LeaseDuration) * time.Second
	n.renewable = sec.Auth.Renewable
	if n.ttl <= 0 && t.ttl > 0 {
		// At its maximum TTL: the token expires now.
		return &Error{Class: ErrPermissionDenied, Path: "auth/token/renew-self", Msg: "the node's vault token reached its maximum TTL"}
	}
	s.set(t.value, n)
	s.renewals.Add(1)
	s.log.Debug("renewed vault token", "ttl", n.ttl)
	return nil
}
