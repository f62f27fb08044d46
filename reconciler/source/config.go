package source

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// Default size caps of Files.
const (
	DefaultMaxFileBytes  = 4 << 20
	DefaultMaxTotalBytes = 64 << 20
)

// defaultTokenUser is the basic-auth user sent with a token, as GitHub and
// most forges accept it.
const defaultTokenUser = "x-access-token"

// Config says which branch of which repository to follow.
type Config struct {
	// URL is the repository: file:// or a plain path, https://, ssh:// or
	// the scp form git@host:org/repo.
	URL    string
	Branch string
	// Path is the subdirectory holding manifests ("" = repository root).
	Path string
	// Dir is the local bare mirror, under the server's data dir.
	Dir string

	// TokenFile (https) holds a token sent as the basic-auth password, with
	// user Username or "x-access-token". It is re-read on every Fetch so a
	// rotated token is picked up.
	TokenFile string
	Username  string
	// CAFile (https, optional) is a PEM bundle trusted in addition to the
	// system roots, for a forge behind a private CA.
	CAFile string

	// SSHKeyFile (ssh) is an unencrypted private key. Host keys are checked
	// against SSHKnownHostsFile, else ~/.ssh/known_hosts;
	// InsecureIgnoreHostKey skips the check (tests only).
	SSHKeyFile            string
	SSHKnownHostsFile     string
	InsecureIgnoreHostKey bool

	// MaxFileBytes and MaxTotalBytes cap what Files reads; 0 means
	// DefaultMaxFileBytes / DefaultMaxTotalBytes.
	MaxFileBytes, MaxTotalBytes int64
}

// Validate checks c, fills defaults, makes a plain-path URL absolute and
// normalises Path. Every problem is reported, each wrapping
// errdefs.ErrInvalidArgument.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: git source: %s", errdefs.ErrInvalidArgument, fmt.Sprintf(format, args...)))
	}
	proto := ""
	if c.URL == "" {
		bad("repository URL is required")
	} else if ep, err := transport.NewEndpoint(c.URL); err != nil {
		bad("repository URL %q: %v", redact(c.URL), err)
	} else {
		proto = ep.Protocol
		if proto == "file" && !strings.HasPrefix(c.URL, "file://") {
			c.URL = ep.Path // absolute, so a later chdir cannot change it
		}
	}
	switch proto {
	case "", "file", "https", "http", "ssh":
	default:
		bad("repository URL %q: scheme %q is not supported; use file://, https:// or ssh://", redact(c.URL), proto)
	}
	if c.Branch == "" {
		bad("branch is required")
	} else if err := plumbing.NewBranchReferenceName(c.Branch).Validate(); err != nil {
		bad("branch %q is not a valid branch name", c.Branch)
	}
	c.Path = strings.Trim(path.Clean("/"+filepath.ToSlash(c.Path)), "/")
	if c.Dir == "" {
		bad("mirror directory is required")
	}
	if proto != "" {
		c.validateAuth(proto, bad)
	}
	if c.MaxFileBytes == 0 {
		c.MaxFileBytes = DefaultMaxFileBytes
	}
	if c.MaxTotalBytes == 0 {
		c.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if c.MaxFileBytes < 0 || c.MaxTotalBytes < 0 {
		bad("size limits must not be negative (got %d per file, %d in total)", c.MaxFileBytes, c.MaxTotalBytes)
	} else if c.MaxFileBytes > c.MaxTotalBytes {
		bad("per-file limit %d is larger than the total limit %d", c.MaxFileBytes, c.MaxTotalBytes)
	}
	return errors.Join(errs...)
}

// validateAuth checks that credentials match the URL's protocol.
func (c *Config) validateAuth(proto string, bad func(string, ...any)) {
	isHTTP := proto == "http" || proto == "https"
	if c.TokenFile != "" && !isHTTP {
		bad("a token file is only used with https:// URLs, not %s", proto)
	}
	if c.TokenFile != "" && proto == "http" {
		bad("refusing to send the token over plain http; use an https:// URL")
	}
	if c.CAFile != "" && proto != "https" {
		bad("a CA file is only used with https:// URLs")
	}
	if proto == "ssh" && c.SSHKeyFile == "" {
		bad("ssh URLs need an SSH key file")
	}
	if proto != "ssh" && (c.SSHKeyFile != "" || c.SSHKnownHostsFile != "" || c.InsecureIgnoreHostKey) {
		bad("SSH key and host-key settings are only used with ssh URLs")
	}
	if c.SSHKnownHostsFile != "" && c.InsecureIgnoreHostKey {
		bad("set either a known_hosts file or InsecureIgnoreHostKey, not both")
	}
}

// protocol returns the transport protocol of a validated URL.
func (c *Config) protocol() string {
	ep, err := transport.NewEndpoint(c.URL)
	if err != nil {
		return ""
	}
	return ep.Protocol
}

// transportOptions are the credentials and TLS roots of one Fetch.
type transportOptions struct {
	auth     transport.AuthMethod
	caBundle []byte
}

// transportOptions reads the credentials; files are re-read each time.
func (c *Config) transportOptions() (transportOptions, error) {
	var o transportOptions
	switch c.protocol() {
	case "http", "https":
		if c.CAFile != "" {
			b, err := os.ReadFile(c.CAFile)
			if err != nil {
				return o, fmt.Errorf("read CA file: %w", err)
			}
			o.caBundle = b
		}
		if c.TokenFile == "" {
			return o, nil
		}
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return o, fmt.Errorf("read token file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return o, fmt.Errorf("%w: token file %s is empty", errdefs.ErrInvalidArgument, c.TokenFile)
		}
		user := c.Username
		if user == "" {
			user = defaultTokenUser
		}
		o.auth = &githttp.BasicAuth{Username: user, Password: tok}
	case "ssh":
		auth, err := c.sshAuth()
		if err != nil {
			return o, err
		}
		o.auth = auth
	}
	return o, nil
}

// sshAuth loads the key and the host-key check.
func (c *Config) sshAuth() (*gitssh.PublicKeys, error) {
	ep, err := transport.NewEndpoint(c.URL)
	if err != nil {
		return nil, err
	}
	user := c.Username
	if user == "" {
		user = ep.User
	}
	if user == "" {
		user = "git"
	}
	keys, err := gitssh.NewPublicKeysFromFile(user, c.SSHKeyFile, "")
	if err != nil {
		return nil, fmt.Errorf("load SSH key %s (it must be unencrypted): %w", c.SSHKeyFile, err)
	}
	if c.InsecureIgnoreHostKey {
		keys.HostKeyCallback = gossh.InsecureIgnoreHostKey()
		return keys, nil
	}
	known := c.SSHKnownHostsFile
	if known == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("find ~/.ssh/known_hosts: %w (set a known_hosts file)", err)
		}
		known = filepath.Join(home, ".ssh", "known_hosts")
	}
	db, err := gitssh.NewKnownHostsDb(known)
	if err != nil {
		return nil, fmt.Errorf("load known hosts %s: %w (add the server's key with ssh-keyscan)", known, err)
	}
	port := ep.Port
	if port == 0 {
		port = 22
	}
	keys.HostKeyCallback = db.HostKeyCallback()
	keys.HostKeyAlgorithms = db.HostKeyAlgorithms(net.JoinHostPort(strings.Trim(ep.Host, "[]"), strconv.Itoa(port)))
	return keys, nil
}

// redact hides a password embedded in a URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
