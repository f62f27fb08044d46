package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/moor-dev/moor/api"
)

// Streams are the standard streams a command reads and writes.
type Streams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// Names of the persistent flags AddConfigFlags registers.
const (
	flagConfig        = "config"
	flagContext       = "context"
	flagNamespace     = "namespace"
	flagAllNamespaces = "all-namespaces"
	flagTimeout       = "request-timeout"
)

// EnvConfig names the environment variable that points at a client config.
const EnvConfig = "MOOR_CONFIG"

// DefaultNamespace is used when neither -n nor the context names one.
const DefaultNamespace = "default"

// Options are the connection options shared by every client verb.
type Options struct {
	// ConfigPath is --config; empty means $MOOR_CONFIG, then ~/.moor/config.
	ConfigPath string
	// Context is --context; empty means the config's current-context.
	Context string
	// Namespace is -n; empty means the context's namespace, then "default".
	Namespace string
	// AllNamespaces is -A.
	AllNamespaces bool
	// Timeout bounds each request; zero means the verb's default.
	Timeout time.Duration
}

// Validate checks that the options are consistent.
func (o *Options) Validate() error {
	if o.AllNamespaces && o.Namespace != "" {
		return errors.New("-n/--namespace and -A/--all-namespaces are mutually exclusive: pass one")
	}
	if o.Timeout < 0 {
		return fmt.Errorf("--%s must not be negative, got %s", flagTimeout, o.Timeout)
	}
	return nil
}

// AddConfigFlags registers --config, --context, -n/--namespace,
// -A/--all-namespaces and --request-timeout as persistent flags of root.
// Each call binds a fresh Options value, so flag state lives with the root
// command, never in a package variable.
func AddConfigFlags(root *cobra.Command) {
	var o Options
	pf := root.PersistentFlags()
	pf.StringVar(&o.ConfigPath, flagConfig, "", "path to the client config (default $"+EnvConfig+", then ~/.moor/config)")
	pf.StringVar(&o.Context, flagContext, "", "name of the config context to use (default: current-context)")
	pf.StringVarP(&o.Namespace, flagNamespace, "n", "", "namespace to use (default: the context's, else \"default\")")
	pf.BoolVarP(&o.AllNamespaces, flagAllNamespaces, "A", false, "list objects across all namespaces")
	pf.DurationVar(&o.Timeout, flagTimeout, 0, "how long to wait for the server (0: the command's default)")
}

// Commands returns every client verb (get, sync), for the root to add.
func Commands(s Streams) []*cobra.Command {
	return []*cobra.Command{NewGetCommand(s), NewSyncCommand(s)}
}

// optionsFrom reads the options back from cmd's (inherited) flags. Flags
// that were never registered keep their zero value, so the verbs also work
// under a root that skipped AddConfigFlags.
func optionsFrom(cmd *cobra.Command) (Options, error) {
	var o Options
	fl := cmd.Flags()
	var errs []error
	str := func(name string, dst *string) {
		if fl.Lookup(name) != nil {
			v, err := fl.GetString(name)
			*dst, errs = v, append(errs, err)
		}
	}
	str(flagConfig, &o.ConfigPath)
	str(flagContext, &o.Context)
	str(flagNamespace, &o.Namespace)
	if fl.Lookup(flagAllNamespaces) != nil {
		v, err := fl.GetBool(flagAllNamespaces)
		o.AllNamespaces, errs = v, append(errs, err)
	}
	if fl.Lookup(flagTimeout) != nil {
		v, err := fl.GetDuration(flagTimeout)
		o.Timeout, errs = v, append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Options{}, fmt.Errorf("read flags: %w", err)
	}
	return o, o.Validate()
}

// configLocation is where a client config was looked for and why.
type configLocation struct {
	Path   string
	Source string // "--config", "$MOOR_CONFIG" or "~/.moor/config"
}

// locateConfig applies the discovery order: --config, $MOOR_CONFIG,
// ~/.moor/config. It does no I/O beyond asking for the home directory.
func locateConfig(flagPath string, getenv func(string) string, home func() (string, error)) (configLocation, error) {
	if flagPath != "" {
		return configLocation{Path: flagPath, Source: "--" + flagConfig}, nil
	}
	if p := getenv(EnvConfig); p != "" {
		return configLocation{Path: p, Source: "$" + EnvConfig}, nil
	}
	h, err := home()
	if err != nil || h == "" {
		return configLocation{}, fmt.Errorf("no client config: --%s and $%s are unset and the home directory is unknown (%v); "+
			"`moor server` writes an admin config to <data-dir>/admin.conf, pass it with --%s", flagConfig, EnvConfig, err, flagConfig)
	}
	return configLocation{Path: filepath.Join(h, ".moor", "config"), Source: "~/.moor/config"}, nil
}

// LoadContext finds, reads and parses the client config and resolves the
// selected context. The namespace of the result is the effective one: -n,
// else the context's, else "default" (empty with -A).
func LoadContext(o Options) (*api.ResolvedContext, error) {
	loc, err := locateConfig(o.ConfigPath, os.Getenv, os.UserHomeDir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(loc.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("client config %s (from %s) does not exist: the config is looked for in --%s, then $%s, then ~/.moor/config; "+
				"`moor server` writes an admin config to <data-dir>/admin.conf, copy it there or pass --%s <data-dir>/admin.conf: %w",
				loc.Path, loc.Source, flagConfig, EnvConfig, flagConfig, err)
		}
		return nil, fmt.Errorf("read client config %s (from %s): %w", loc.Path, loc.Source, err)
	}
	cfg, err := api.ParseClientConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s (from %s): %w", loc.Path, loc.Source, err)
	}
	rc, err := cfg.Resolve(o.Context)
	if err != nil {
		return nil, fmt.Errorf("%s (from %s): %w", loc.Path, loc.Source, err)
	}
	rc.Namespace = effectiveNamespace(o, rc.Namespace)
	return rc, nil
}

// effectiveNamespace picks -n, then the context's namespace, then
// "default"; -A yields "" (all namespaces).
func effectiveNamespace(o Options, contextNS string) string {
	switch {
	case o.AllNamespaces:
		return ""
	case o.Namespace != "":
		return o.Namespace
	case contextNS != "":
		return contextNS
	}
	return DefaultNamespace
}
