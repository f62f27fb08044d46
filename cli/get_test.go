package cli

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// checkGolden compares got with testdata/<name>.golden, or rewrites it.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cli -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run go test ./cli -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// runRoot runs args under a root with the config flags, as cmd/moor wires
// it, and returns everything the user would see.
func runRoot(t *testing.T, sub func(Streams) *cobra.Command, args ...string) (out string, err error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	root := &cobra.Command{Use: "moor", SilenceUsage: true}
	AddConfigFlags(root)
	root.AddCommand(sub(Streams{In: strings.NewReader(""), Out: &stdout, ErrOut: &stderr}))
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs(args)
	err = root.Execute()
	var b strings.Builder
	b.WriteString("$ moor " + strings.Join(args, " ") + "\n")
	b.WriteString(stdout.String())
	if stderr.Len() > 0 {
		b.WriteString("--- stderr\n" + stderr.String())
	}
	if err != nil {
		b.WriteString("--- exit 1\n")
	}
	return b.String(), err
}

func TestGetGolden(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr bool
	}{
		{"pods", []string{"get", "pods"}, false},
		{"pods-wide", []string{"get", "po", "-o", "wide"}, false},
		{"pods-all-namespaces", []string{"get", "pods", "-A"}, false},
		{"pods-namespace", []string{"get", "pods", "-n", "kube-system"}, false},
		{"pods-empty-namespace", []string{"get", "pods", "-n", "nothing-here"}, false},
		{"pod-json", []string{"get", "pod", "web-7d9f-abcde", "-o", "json"}, false},
		{"pods-yaml-list", []string{"get", "pods", "-n", "kube-system", "-o", "yaml"}, false},
		{"pods-name", []string{"get", "pods", "-A", "-o", "name"}, false},
		{"pods-deployments", []string{"get", "pods,deployments"}, false},
		{"deployments-wide-all", []string{"get", "deploy", "-A", "-o", "wide"}, false},
		{"deployment-yaml", []string{"get", "deployment/web", "-o", "yaml"}, false},
		{"nodes", []string{"get", "nodes"}, false},
		{"nodes-wide", []string{"get", "no", "-o", "wide"}, false},
		{"node-json", []string{"get", "node", "node-1", "-o", "json"}, false},
		{"commits", []string{"get", "commits"}, false},
		{"commits-wide", []string{"get", "commits", "-o", "wide"}, false},
		{"commit-prefix-yaml", []string{"get", "commit", "c0ffee", "-o", "yaml"}, false},
		{"commit-deployed-yaml", []string{"get", "commit", "abc1234", "-o", "yaml"}, false},
		{"type-name-form", []string{"get", "deploy/web", "pod/web-7d9f-abcde", "-o", "name"}, false},
		{"empty-json-list", []string{"get", "pods", "-n", "nothing-here", "-o", "json"}, false},
		{"not-found", []string{"get", "pods", "nope"}, true},
		{"partly-found", []string{"get", "pods,deploy", "web", "nope"}, true},
		{"no-type", []string{"get"}, true},
		{"unknown-type", []string{"get", "ingresses"}, true},
		{"services", []string{"get", "services"}, false},
		{"services-all-namespaces-wide", []string{"get", "svc", "-A", "-o", "wide"}, false},
		{"service-yaml", []string{"get", "service/lb", "-o", "yaml"}, false},
		{"services-name", []string{"get", "svc", "-A", "-o", "name"}, false},
		{"pods-services", []string{"get", "po,svc", "-n", "kube-system"}, false},
		{"name-with-all-namespaces", []string{"get", "pods", "web", "-A"}, true},
		{"bad-output", []string{"get", "pods", "-o", "table"}, true},
		{"namespace-and-all", []string{"get", "pods", "-n", "x", "-A"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runRoot(t, fakeGet(fixtures()), tc.args...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v\n%s", err, tc.wantErr, got)
			}
			checkGolden(t, "get-"+tc.name, []byte(got))
		})
	}
}

// fakeGet builds `moor get` over r with the fixed clock; the context's
// namespace is "default".
func fakeGet(r viewReader) func(Streams) *cobra.Command {
	return func(s Streams) *cobra.Command {
		return newGetCommand(s, func(o Options) (viewReader, string, error) {
			return r, effectiveNamespace(o, ""), nil
		}, func() time.Time { return testNow })
	}
}

func TestGetServerErrors(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"forbidden", &APIError{StatusCode: 403, Message: "client certificate is not in group moor:admins"},
			"Error from server (Forbidden): client certificate is not in group moor:admins\n"},
		{"transport", errors.New("dial tcp 127.0.0.1:1: connection refused"),
			"Error: list pods: dial tcp 127.0.0.1:1: connection refused\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runRoot(t, fakeGet(&fakeReader{err: tc.err}), "get", "pods")
			if err == nil {
				t.Fatal("want an error")
			}
			if !strings.Contains(got, "--- stderr\n"+tc.want) {
				t.Errorf("got\n%s\nwant stderr %q", got, tc.want)
			}
		})
	}
}

func TestGetPassesOptions(t *testing.T) {
	var got Options
	sub := func(s Streams) *cobra.Command {
		return newGetCommand(s, func(o Options) (viewReader, string, error) {
			got = o
			return fixtures(), effectiveNamespace(o, "team"), nil
		}, func() time.Time { return testNow })
	}
	if _, err := runRoot(t, sub, "--config", "/tmp/x.conf", "--context", "prod", "--request-timeout", "5s", "get", "nodes"); err != nil {
		t.Fatal(err)
	}
	want := Options{ConfigPath: "/tmp/x.conf", Context: "prod", Timeout: 5 * time.Second}
	if got != want {
		t.Errorf("options = %+v, want %+v", got, want)
	}
}

func TestGetWithoutConfigFlags(t *testing.T) {
	// A root that skipped AddConfigFlags still runs the verb with defaults.
	var stdout bytes.Buffer
	cmd := fakeGet(fixtures())(Streams{Out: &stdout, ErrOut: &stdout})
	cmd.SetArgs([]string{"nodes", "-o", "name"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if want := "node/node-1\nnode/node-2\nnode/node-3\nnode/node-4\n"; stdout.String() != want {
		t.Errorf("got %q, want %q", stdout.String(), want)
	}
}

func FuzzParseGetArgs(f *testing.F) {
	f.Add("pods,deploy", "web")
	f.Add("pod/web", "deployment.apps/x")
	f.Add(",", "")
	f.Fuzz(func(t *testing.T, a, b string) {
		qs, err := parseGetArgs([]string{a, b})
		if err == nil && len(qs) == 0 {
			t.Errorf("parseGetArgs(%q, %q) returned no queries and no error", a, b)
		}
	})
}
