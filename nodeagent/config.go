package nodeagent

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/moor-dev/moor/api"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultPollWait          = 30 * time.Second
	DefaultReportInterval    = 10 * time.Second
	DefaultResyncInterval    = 2 * time.Second
	DefaultRestartBackoff    = 10 * time.Second
	DefaultMaxRestartBackoff = 5 * time.Minute
)

// Config configures an Agent. Zero durations take the defaults above.
type Config struct {
	// Server is the moor server's URL, https://host:port.
	Server string
	// Token is the join token "moor1.<ca-hash>.<secret>". It is needed only
	// for the first join; later starts reuse the credentials in DataDir.
	Token string
	// Name is the node name, a DNS-1123 label.
	Name    string
	DataDir string
	// Labels are sent with the join request.
	Labels map[string]string
	// NodeIP is the node's address, sent with the join request and every
	// status report (other nodes route this node's pod CIDR through it)
	// and reported as status.hostIP. Zero: unknown.
	NodeIP netip.Addr
	// Network gives pods their own network namespaces on the pod network
	// and programs services and DNS; nil runs pods in the host's network
	// namespace (status.podIP is then NodeIP).
	Network Network
	// Secrets reads the values of Vault-backed Secrets for env, volumes
	// and image pull secrets; nil leaves only plain Secrets (values in the
	// desired document), and pods using others wait with
	// CreateContainerConfigError.
	Secrets SecretSource

	PollWait       time.Duration // long-poll wait
	ReportInterval time.Duration // periodic status report
	ResyncInterval time.Duration // local reconcile tick
	// RestartBackoff doubles per consecutive restart (and failed image pull)
	// up to MaxRestartBackoff, like Kubernetes' CrashLoopBackOff.
	RestartBackoff, MaxRestartBackoff time.Duration

	// Log receives the agent's logs; component=nodeagent is added. Nil
	// discards them.
	Log *slog.Logger
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.PollWait, DefaultPollWait)
	def(&c.ReportInterval, DefaultReportInterval)
	def(&c.ResyncInterval, DefaultResyncInterval)
	def(&c.RestartBackoff, DefaultRestartBackoff)
	def(&c.MaxRestartBackoff, DefaultMaxRestartBackoff)
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem with c, each saying what to fix. Zero
// durations are valid (they take defaults); the token is checked when it is
// set, and required only at the first join.
func (c *Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.Server)
	switch {
	case c.Server == "":
		errs = append(errs, errors.New("server: set the moor server URL, https://host:port"))
	case err != nil:
		errs = append(errs, fmt.Errorf("server: %q is not a URL: %w", c.Server, err))
	case u.Scheme != "https" || u.Host == "":
		errs = append(errs, fmt.Errorf("server: %q must be https://host:port", c.Server))
	case u.Path != "" && u.Path != "/":
		errs = append(errs, fmt.Errorf("server: %q must have no path", c.Server))
	}
	if msgs := validation.IsDNS1123Label(c.Name); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("name: %q is not a valid node name: %s", c.Name, strings.Join(msgs, "; ")))
	}
	if c.Token != "" {
		if _, err := api.ParseToken(c.Token); err != nil {
			errs = append(errs, err)
		}
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir: set a directory for the agent's credentials and state"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"poll wait", c.PollWait}, {"report interval", c.ReportInterval},
		{"resync interval", c.ResyncInterval}, {"restart backoff", c.RestartBackoff},
		{"max restart backoff", c.MaxRestartBackoff},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %s is negative; use a positive duration or 0 for the default", d.name, d.v))
		}
	}
	if c.RestartBackoff > 0 && c.MaxRestartBackoff > 0 && c.MaxRestartBackoff < c.RestartBackoff {
		errs = append(errs, fmt.Errorf("max restart backoff %s is below restart backoff %s", c.MaxRestartBackoff, c.RestartBackoff))
	}
	return errors.Join(errs...)
}
