package nodeagent

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := Config{Server: "https://10.0.0.1:6443", Name: "node-1", DataDir: "/var/lib/moor-agent"}
	tests := []struct {
		name string
		mod  func(*Config)
		want string // substring of the error, "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"valid token", func(c *Config) { c.Token = "moor1." + strings.Repeat("ab", 32) + ".0123456789abcdef" }, ""},
		{"no server", func(c *Config) { c.Server = "" }, "set the moor server URL"},
		{"http server", func(c *Config) { c.Server = "http://x:1" }, "must be https"},
		{"server with path", func(c *Config) { c.Server = "https://x:1/api" }, "no path"},
		{"bad name", func(c *Config) { c.Name = "Node_1" }, "not a valid node name"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data dir"},
		{"bad token", func(c *Config) { c.Token = "nope" }, "join token"},
		{"negative", func(c *Config) { c.PollWait = -time.Second }, "poll wait"},
		{"max below base", func(c *Config) { c.RestartBackoff, c.MaxRestartBackoff = time.Minute, time.Second }, "max restart backoff"},
	}
	for _, tt := range tests {
		c := good
		tt.mod(&c)
		err := c.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want one mentioning %q", tt.name, err, tt.want)
		}
	}
	d := good.withDefaults()
	if d.PollWait != DefaultPollWait || d.RestartBackoff != DefaultRestartBackoff || d.Log == nil {
		t.Errorf("defaults not applied: %+v", d)
	}
}
