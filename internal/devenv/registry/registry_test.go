package registry

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"defaults", Config{Dir: "/tmp/x"}.withDefaults(), false},
		{"fixed port", Config{Dir: "/tmp/x", Addr: "127.0.0.1:5310"}, false},
		{"ipv6 loopback", Config{Dir: "/tmp/x", Addr: "[::1]:0"}, false},
		{"no dir", Config{Addr: "127.0.0.1:0"}, true},
		{"no port", Config{Dir: "/tmp/x", Addr: "127.0.0.1"}, true},
		{"not loopback", Config{Dir: "/tmp/x", Addr: "0.0.0.0:5000"}, true},
		{"hostname", Config{Dir: "/tmp/x", Addr: "localhost:5000"}, true},
		{"bad port", Config{Dir: "/tmp/x", Addr: "127.0.0.1:99999"}, true},
		{"users", Config{Dir: "/tmp/x", Addr: "127.0.0.1:0", Users: map[string]string{"ci": "pw"}}, false},
		{"user with colon", Config{Dir: "/tmp/x", Addr: "127.0.0.1:0", Users: map[string]string{"c:i": "pw"}}, true},
		{"user without password", Config{Dir: "/tmp/x", Addr: "127.0.0.1:0", Users: map[string]string{"ci": ""}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestRenderConfigGolden(t *testing.T) {
	for golden, htpasswd := range map[string]string{
		"config.yml.golden":      "",
		"config-auth.yml.golden": "/var/lib/moor/registry/htpasswd",
	} {
		got := renderConfig("/var/lib/moor/registry/data", "127.0.0.1:5310", "00112233", htpasswd)
		golden = filepath.Join("testdata", golden)
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if string(got) != string(want) {
			t.Errorf("%s mismatch:\n got:\n%s\nwant:\n%s", golden, got, want)
		}
	}
}

func TestRenderHtpasswd(t *testing.T) {
	b, err := renderHtpasswd(map[string]string{"zed": "pw2", "ci": "pw1"})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ci:$2") || !strings.HasPrefix(lines[1], "zed:$2") {
		t.Fatalf("htpasswd:\n%s", b)
	}
	hash := strings.TrimPrefix(lines[0], "ci:")
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("pw1")); err != nil {
		t.Errorf("ci's hash does not match its password: %v", err)
	}
}

func needBinary(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(DefaultBinary); err != nil {
		t.Skipf("needs %s (apt-get install docker-registry): %v", DefaultBinary, err)
	}
}

func TestStartStop(t *testing.T) {
	needBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := Start(ctx, Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	if _, port, _ := net.SplitHostPort(r.Addr()); port == "0" {
		t.Fatalf("Addr() = %q, want a real port", r.Addr())
	}
	resp, err := http.Get("http://" + r.Addr() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/ = %d", resp.StatusCode)
	}
	pid := r.cmd.Process.Pid
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	select {
	case <-r.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("registry pid %d still exists after Stop (kill 0 = %v)", pid, err)
	}
	if _, err := http.Get("http://" + r.Addr() + "/v2/"); err == nil {
		t.Fatal("registry still answers after Stop")
	}
}

// TestStartWithUsers: with Users every request needs basic auth, which the
// registry accepts over plain HTTP.
func TestStartWithUsers(t *testing.T) {
	needBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := Start(ctx, Config{Dir: t.TempDir(), Users: map[string]string{"ci": "s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	for _, tc := range []struct {
		user, pass string
		want       int
	}{{"", "", http.StatusUnauthorized}, {"ci", "wrong", http.StatusUnauthorized}, {"ci", "s3cret", http.StatusOK}} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+r.Addr()+"/v2/", nil)
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET /v2/ as %q/%q = %d, want %d", tc.user, tc.pass, resp.StatusCode, tc.want)
		}
		if tc.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("Www-Authenticate"), "Basic ") {
			t.Errorf("401 without a Basic challenge: %q", resp.Header.Get("Www-Authenticate"))
		}
	}
}

func TestStartPortInUse(t *testing.T) {
	needBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := Start(ctx, Config{Dir: t.TempDir(), Addr: l.Addr().String(), StartTimeout: 5 * time.Second})
	if err == nil {
		r.Stop()
		t.Fatal("Start on a busy port succeeded")
	}
}

func TestStartMissingBinary(t *testing.T) {
	_, err := Start(context.Background(), Config{Dir: t.TempDir(), Binary: "/nonexistent/docker-registry"})
	if !errors.Is(err, ErrBinaryMissing) {
		t.Fatalf("err = %v, want ErrBinaryMissing", err)
	}
}
