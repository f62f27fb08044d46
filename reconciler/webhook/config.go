package webhook

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"sigs.k8s.io/yaml"
)

// Defaults.
const (
	DefaultMaxBody     = 1 << 20 // 1 MiB
	DefaultReadTimeout = 10 * time.Second
	DefaultDedupSize   = 4096
	DefaultDedupTTL    = 24 * time.Hour
)

// Recorder counts webhook requests by provider and result (see the Result*
// constants). reconciler/metrics implements it.
type Recorder interface {
	WebhookRequest(provider, result string)
}

// Requester is what the handler needs from Trigger.
type Requester interface {
	Submit(Cause)
}

var _ Requester = (*Trigger)(nil)

// Config configures a Handler.
type Config struct {
	// Branch is the tracked branch (without refs/heads/). Required.
	Branch string
	// Secrets holds the secret or token per provider. A provider without a
	// secret has no endpoint (404). At least one is required.
	Secrets map[Provider]string
	// Trigger receives a request for every push to Branch. Required.
	Trigger Requester
	// MaxBody caps a delivery's body (default 1 MiB); larger ones get 413.
	MaxBody int64
	// ReadTimeout bounds reading one delivery's body (default 10s), also on
	// a listener that has no ReadTimeout of its own (the HTTPS API has
	// none because of its long-polls).
	ReadTimeout time.Duration
	// DedupSize is how many delivery ids are remembered (default 4096);
	// DedupTTL is how long one is (default 24h).
	DedupSize int
	DedupTTL  time.Duration
	// Log gets one line per delivery (component=webhook is added).
	Log *slog.Logger
	// Metrics is optional.
	Metrics Recorder
	// Now is the clock (default time.Now); tests replace it.
	Now func() time.Time
}

// Validate checks the configuration and fills in defaults.
func (c *Config) Validate() error {
	if c.Branch == "" || strings.HasPrefix(c.Branch, "refs/") {
		return fmt.Errorf("webhook: %w: branch %q must be a branch name like \"main\" (without refs/heads/)", errdefs.ErrInvalidArgument, c.Branch)
	}
	if c.Trigger == nil {
		return fmt.Errorf("webhook: %w: a trigger is required", errdefs.ErrInvalidArgument)
	}
	configured := 0
	for p, s := range c.Secrets {
		if !known(p) {
			return fmt.Errorf("webhook: %w: unknown provider %q; use one of %s", errdefs.ErrInvalidArgument, p, providerList())
		}
		if s != "" {
			configured++
		}
	}
	if configured == 0 {
		return fmt.Errorf("webhook: %w: no webhook secret configured; set one in the secrets file or MOOR_WEBHOOK_<PROVIDER>_SECRET", errdefs.ErrInvalidArgument)
	}
	if c.MaxBody < 0 || c.ReadTimeout < 0 || c.DedupSize < 0 || c.DedupTTL < 0 {
		return fmt.Errorf("webhook: %w: body cap, read timeout and dedup limits must not be negative", errdefs.ErrInvalidArgument)
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.DedupSize == 0 {
		c.DedupSize = DefaultDedupSize
	}
	if c.DedupTTL == 0 {
		c.DedupTTL = DefaultDedupTTL
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

func known(p Provider) bool {
	for _, q := range Providers {
		if p == q {
			return true
		}
	}
	return false
}

func providerList() string {
	s := make([]string, len(Providers))
	for i, p := range Providers {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

// SecretEnv returns the environment variable that holds a provider's
// secret: MOOR_WEBHOOK_GITHUB_SECRET, MOOR_WEBHOOK_GITLAB_SECRET, ...
func SecretEnv(p Provider) string {
	return "MOOR_WEBHOOK_" + strings.ToUpper(string(p)) + "_SECRET"
}

// LoadSecrets reads the webhook secrets. path, if not empty, names a YAML
// or JSON file mapping provider to secret:
//
//	github: "..."
//	gitlab: "..."
//	gitea: "..."
//	forgejo: "..."
//	bitbucket: "..."
//	generic: "..."
//
// The file must not be readable by group or others (chmod 600). Then each
// non-empty MOOR_WEBHOOK_<PROVIDER>_SECRET variable (looked up with getenv,
// normally os.Getenv) overrides the file's entry. Surrounding whitespace
// is trimmed; empty secrets are dropped. An empty result is not an error
// here (webhooks are optional); Config.Validate rejects it.
func LoadSecrets(path string, getenv func(string) string) (map[Provider]string, error) {
	out := map[Provider]string{}
	if path != "" {
		fromFile, err := readSecretsFile(path)
		if err != nil {
			return nil, err
		}
		for p, s := range fromFile {
			if s = strings.TrimSpace(s); s != "" {
				out[p] = s
			}
		}
	}
	if getenv != nil {
		for _, p := range Providers {
			if s := strings.TrimSpace(getenv(SecretEnv(p))); s != "" {
				out[p] = s
			}
		}
	}
	return out, nil
}

func readSecretsFile(path string) (map[Provider]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("webhook secrets: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("webhook secrets: %w: %s is readable by group or others (mode %v); run chmod 600 %s",
			errdefs.ErrPermissionDenied, path, fi.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("webhook secrets: %w", err)
	}
	var raw map[string]string
	if err := yaml.UnmarshalStrict(data, &raw); err != nil {
		return nil, fmt.Errorf("webhook secrets: %w: %s must map provider names to secret strings: %v", errdefs.ErrInvalidArgument, path, err)
	}
	out := make(map[Provider]string, len(raw))
	for k, v := range raw {
		p := Provider(strings.ToLower(k))
		if !known(p) {
			return nil, fmt.Errorf("webhook secrets: %w: %s names unknown provider %q; use one of %s", errdefs.ErrInvalidArgument, path, k, providerList())
		}
		out[p] = v
	}
	return out, nil
}
