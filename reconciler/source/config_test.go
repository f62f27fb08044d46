package source

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestValidate(t *testing.T) {
	ok := func(mod func(*Config)) Config {
		c := Config{URL: "https://git.example.com/org/repo.git", Branch: "main", Dir: "/var/lib/moor/git"}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string // substrings, one per expected problem
		check   func(t *testing.T, c Config)
	}{
		{name: "Defaults", cfg: ok(nil), check: func(t *testing.T, c Config) {
			if c.MaxFileBytes != DefaultMaxFileBytes || c.MaxTotalBytes != DefaultMaxTotalBytes || c.Path != "" {
				t.Errorf("defaults not filled: %+v", c)
			}
		}},
		{name: "RelativePathURLMadeAbsolute", cfg: ok(func(c *Config) { c.URL = "repo.git" }), check: func(t *testing.T, c Config) {
			if !filepath.IsAbs(c.URL) {
				t.Errorf("URL = %q, want an absolute path", c.URL)
			}
		}},
		{name: "FileURLKept", cfg: ok(func(c *Config) { c.URL = "file:///srv/repo.git" }), check: func(t *testing.T, c Config) {
			if c.URL != "file:///srv/repo.git" {
				t.Errorf("URL = %q", c.URL)
			}
		}},
		{name: "PathNormalised", cfg: ok(func(c *Config) { c.Path = "/deploy//prod/" }), check: func(t *testing.T, c Config) {
			if c.Path != "deploy/prod" {
				t.Errorf("Path = %q, want deploy/prod", c.Path)
			}
		}},
		{name: "PathCannotEscape", cfg: ok(func(c *Config) { c.Path = "../../etc" }), check: func(t *testing.T, c Config) {
			if c.Path != "etc" {
				t.Errorf("Path = %q, want etc", c.Path)
			}
		}},
		{name: "HTTPSToken", cfg: ok(func(c *Config) { c.TokenFile, c.CAFile = "/t", "/ca.pem" })},
		{name: "SSHScpForm", cfg: ok(func(c *Config) { c.URL, c.SSHKeyFile = "git@github.com:org/repo.git", "/k" })},
		{name: "SSHURL", cfg: ok(func(c *Config) { c.URL, c.SSHKeyFile, c.InsecureIgnoreHostKey = "ssh://git@host:2222/repo", "/k", true })},
		{name: "AllMissing", cfg: Config{}, wantErr: []string{"URL is required", "branch is required", "mirror directory is required"}},
		{name: "BadBranch", cfg: ok(func(c *Config) { c.Branch = "bad..name" }), wantErr: []string{`branch "bad..name"`}},
		{name: "UnsupportedScheme", cfg: ok(func(c *Config) { c.URL = "ftp://host/repo" }), wantErr: []string{`scheme "ftp"`}},
		{name: "PasswordRedacted", cfg: ok(func(c *Config) { c.URL = "ftp://u:hunter2@host/repo" }), wantErr: []string{"xxxxx"}},
		{name: "TokenOverPlainHTTP", cfg: ok(func(c *Config) { c.URL, c.TokenFile = "http://host/repo", "/t" }), wantErr: []string{"plain http"}},
		{name: "TokenWithSSH", cfg: ok(func(c *Config) { c.URL, c.SSHKeyFile, c.TokenFile = "git@host:r", "/k", "/t" }), wantErr: []string{"token file is only used with https"}},
		{name: "SSHWithoutKey", cfg: ok(func(c *Config) { c.URL = "git@host:org/repo" }), wantErr: []string{"need an SSH key file"}},
		{name: "KeyWithHTTPS", cfg: ok(func(c *Config) { c.SSHKeyFile = "/k" }), wantErr: []string{"only used with ssh URLs"}},
		{name: "KnownHostsAndInsecure", cfg: ok(func(c *Config) {
			c.URL, c.SSHKeyFile, c.SSHKnownHostsFile, c.InsecureIgnoreHostKey = "git@host:r", "/k", "/kh", true
		}), wantErr: []string{"not both"}},
		{name: "NegativeCap", cfg: ok(func(c *Config) { c.MaxFileBytes = -1 }), wantErr: []string{"must not be negative"}},
		{name: "FileCapOverTotal", cfg: ok(func(c *Config) { c.MaxFileBytes, c.MaxTotalBytes = 10, 5 }), wantErr: []string{"larger than the total"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			err := c.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if tt.check != nil {
					tt.check(t, c)
				}
				return
			}
			if !errdefs.IsInvalidArgument(err) {
				t.Fatalf("Validate: err = %v, want invalid argument", err)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the URL password: %v", err)
			}
		})
	}
}

func TestHTTPSCredentials(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	write(t, tokenFile, "  tok\n")
	tests := []struct {
		name, user, wantUser string
	}{
		{"DefaultUser", "", defaultTokenUser},
		{"ExplicitUser", "deploy-bot", "deploy-bot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{URL: "https://h/r", Branch: "main", Dir: dir, TokenFile: tokenFile, Username: tt.user}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			o, err := c.transportOptions()
			if err != nil {
				t.Fatal(err)
			}
			ba, ok := o.auth.(*githttp.BasicAuth)
			if !ok || ba.Username != tt.wantUser || ba.Password != "tok" {
				t.Errorf("auth = %#v, want basic auth %s/tok", o.auth, tt.wantUser)
			}
		})
	}
	write(t, tokenFile, "\n")
	c := Config{URL: "https://h/r", Branch: "main", Dir: dir, TokenFile: tokenFile}
	if _, err := c.transportOptions(); !errdefs.IsInvalidArgument(err) {
		t.Errorf("empty token file: err = %v, want invalid argument", err)
	}
}

func TestSSHCredentials(t *testing.T) {
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id_ed25519")
	write(t, keyFile, string(pem.EncodeToMemory(block)))
	sshPub, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	knownFile := filepath.Join(dir, "known_hosts")
	write(t, knownFile, knownhosts.Line([]string{"git.example.com"}, sshPub)+"\n")

	tests := []struct {
		name     string
		cfg      Config
		wantUser string
		wantErr  bool
	}{
		{"ScpFormUser", Config{URL: "deploy@git.example.com:org/repo", SSHKeyFile: keyFile, SSHKnownHostsFile: knownFile}, "deploy", false},
		{"DefaultUser", Config{URL: "ssh://git.example.com/org/repo", SSHKeyFile: keyFile, InsecureIgnoreHostKey: true}, "git", false},
		{"UsernameWins", Config{URL: "git@git.example.com:r", Username: "bot", SSHKeyFile: keyFile, InsecureIgnoreHostKey: true}, "bot", false},
		{"MissingKey", Config{URL: "git@git.example.com:r", SSHKeyFile: filepath.Join(dir, "nope"), InsecureIgnoreHostKey: true}, "", true},
		{"MissingKnownHosts", Config{URL: "git@git.example.com:r", SSHKeyFile: keyFile, SSHKnownHostsFile: filepath.Join(dir, "nope")}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			c.Branch, c.Dir = "main", dir
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			o, err := c.transportOptions()
			if tt.wantErr {
				if err == nil {
					t.Fatal("transportOptions succeeded")
				}
				t.Logf("error reads: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			keys, ok := o.auth.(*gitssh.PublicKeys)
			if !ok || keys.User != tt.wantUser || keys.HostKeyCallback == nil {
				t.Fatalf("auth = %#v, want public keys for %s with a host-key check", o.auth, tt.wantUser)
			}
			if got := keys.Signer.PublicKey().Marshal(); string(got) != string(sshPub.Marshal()) {
				t.Error("loaded a different key")
			}
		})
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
