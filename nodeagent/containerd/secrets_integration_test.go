package containerd_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/moor-dev/moor/internal/devenv/imagebuild"
	"github.com/moor-dev/moor/internal/devenv/registry"
	"github.com/moor-dev/moor/nodeagent"
	ctrdruntime "github.com/moor-dev/moor/nodeagent/containerd"
)

// waitLogs polls the container's logs until they contain want.
func waitLogs(t *testing.T, rt nodeagent.Runtime, id, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var buf bytes.Buffer
		if err := rt.Logs(t.Context(), id, &buf); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of %s never showed %q:\n%s", id, want, buf.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSecretVolume mounts a tmpfs secret volume (nodeagent.TmpfsProjector)
// read-only into a container that cats it, updates it in place and sees the
// running container read the new value, then removes it.
func TestSecretVolume(t *testing.T) {
	e := startEnv(t)
	rt, _ := e.newRuntime(t, "secvol")
	ctx := t.Context()
	if err := rt.PullImage(ctx, e.image); err != nil {
		t.Fatal(err)
	}
	vol := filepath.Join(e.dir, "pods", "uid-1", "volumes", "secret", "creds")
	proj := nodeagent.TmpfsProjector{}
	t.Cleanup(func() { _ = proj.Remove(vol) })
	project := func(v string) {
		t.Helper()
		if _, err := proj.Project(vol, []nodeagent.ProjectedFile{{Path: "password", Data: []byte(v), Mode: 0o400}}); err != nil {
			t.Fatal(err)
		}
	}
	project("value-1")

	spec := nodeagent.ContainerSpec{
		ID: "secvol-1", Image: e.image,
		Command: []string{"sh", "-c", `touch /etc/creds/x 2>/dev/null && echo writable || echo read-only
			while :; do echo "password=$(cat /etc/creds/password)"; sleep 0.1; done`},
		Mounts:  []nodeagent.Mount{{Source: vol, Destination: "/etc/creds", ReadOnly: true}},
		LogPath: filepath.Join(t.TempDir(), "secvol.log"),
	}
	if err := rt.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Remove(context.Background(), spec.ID) })
	if err := rt.Start(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	waitLogs(t, rt, spec.ID, "password=value-1")
	waitLogs(t, rt, spec.ID, "read-only")
	pid := find(t, rt, spec.ID).Pid

	project("value-2")
	waitLogs(t, rt, spec.ID, "password=value-2")
	if c := find(t, rt, spec.ID); c.Pid != pid || c.State != nodeagent.StateRunning {
		t.Errorf("container changed while its volume was updated: %+v (pid was %d)", c, pid)
	}

	if err := rt.Stop(ctx, spec.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := rt.Remove(ctx, spec.ID); err != nil {
		t.Fatal(err)
	}
	if err := proj.Remove(vol); err != nil {
		t.Fatal(err)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), vol) {
		t.Errorf("%s still mounted after Remove", vol)
	}
}

// TestAuthenticatedPull pushes an image with credentials to a registry
// with htpasswd authentication and pulls it through the runtime: refused
// without credentials or with a wrong password (Unauthenticated, saying
// authentication is required), pulled and run with the right ones.
func TestAuthenticatedPull(t *testing.T) {
	e := startEnv(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	reg, err := registry.Start(ctx, registry.Config{Dir: filepath.Join(e.dir, "authreg"), Users: map[string]string{"ci": "s3cret-pw"}})
	if err != nil {
		t.Fatalf("start registry with auth: %v", err)
	}
	t.Cleanup(func() { _ = reg.Stop() })
	spec := imagebuild.Spec{Registry: reg.Addr(), Repository: "private/app", Tag: "1", Cmd: []string{"echo", "pulled with credentials"}}
	img, err := imagebuild.Build(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := imagebuild.PushImage(ctx, reg.Addr(), spec.Repository, spec.Tag, img); err == nil {
		t.Fatal("anonymous push accepted: the registry does not authenticate")
	}
	if err := pushWithCredentials(ctx, img, spec.Ref(), "ci", "s3cret-pw"); err != nil {
		t.Fatalf("push with credentials: %v", err)
	}

	rt := newRuntimeFor(t, e, "authpull", reg.Addr())
	good := nodeagent.RegistryCredential{Host: reg.Addr(), Username: "ci", Password: "s3cret-pw"}
	for _, tc := range []struct {
		name string
		cred nodeagent.RegistryCredential
		want string
	}{
		{"anonymous", nodeagent.RegistryCredential{}, "requires authentication"},
		{"credentials for another host", nodeagent.RegistryCredential{Host: "elsewhere:5000", Username: "ci", Password: "s3cret-pw"}, "requires authentication"},
		{"wrong password", nodeagent.RegistryCredential{Host: reg.Addr(), Username: "ci", Password: "nope"}, `refused the credentials of user "ci"`},
	} {
		err := rt.PullImageWithCredentials(ctx, spec.Ref(), tc.cred)
		t.Logf("%s: %v", tc.name, err)
		if !errdefs.IsUnauthorized(err) || !strings.Contains(fmt.Sprint(err), tc.want) {
			t.Errorf("%s: pull = %v, want Unauthenticated saying %q", tc.name, err, tc.want)
		}
		if strings.Contains(fmt.Sprint(err), "s3cret-pw") {
			t.Errorf("%s: error shows the password: %v", tc.name, err)
		}
	}
	if err := rt.PullImage(ctx, spec.Ref()); err == nil {
		t.Error("PullImage without credentials succeeded")
	} else {
		t.Logf("PullImage: %v", err)
	}

	if err := rt.PullImageWithCredentials(ctx, spec.Ref(), good); err != nil {
		t.Fatalf("pull with credentials: %v", err)
	}
	c := nodeagent.ContainerSpec{ID: "authpull-1", Image: spec.Ref(), LogPath: filepath.Join(t.TempDir(), "authpull.log")}
	if err := rt.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Remove(context.Background(), c.ID) })
	if err := rt.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	waitLogs(t, rt, c.ID, "pulled with credentials")
	// Present now: a second pull needs no registry round trip, and no
	// credentials (imagePullPolicy IfNotPresent).
	if err := rt.PullImageWithCredentials(ctx, spec.Ref(), nodeagent.RegistryCredential{}); err != nil {
		t.Errorf("pull of a present image: %v", err)
	}
}

// newRuntimeFor connects a runtime for node to the env's daemon, with
// extra plain-HTTP registries.
func newRuntimeFor(t *testing.T, e *env, node string, insecure ...string) *ctrdruntime.Runtime {
	t.Helper()
	cfg := ctrdruntime.Config{
		Address:            e.daemon.Socket(),
		Namespace:          "moor-" + node,
		RuncRoot:           filepath.Join(e.dir, "runc-"+node),
		CgroupParent:       fmt.Sprintf("/moor-test-%d-%s", os.Getpid(), node),
		InsecureRegistries: append([]string{e.reg.Addr()}, insecure...),
		Log:                slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	rt, err := ctrdruntime.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("connect runtime: %v", err)
	}
	t.Cleanup(func() {
		_ = rt.Close()
		removeCgroup(cfg.CgroupParent)
	})
	return rt
}

// pushWithCredentials pushes a built image to ref over plain HTTP with
// containerd's pusher, authenticating as user.
func pushWithCredentials(ctx context.Context, img *imagebuild.Image, ref, user, password string) error {
	hosts := docker.ConfigureDefaultRegistries(
		docker.WithPlainHTTP(docker.MatchAllHosts),
		docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(func(string) (string, string, error) {
			return user, password, nil
		}))))
	pusher, err := docker.NewResolver(docker.ResolverOptions{Hosts: hosts}).Pusher(ctx, ref)
	if err != nil {
		return err
	}
	for _, b := range []struct {
		desc ocispec.Descriptor
		data []byte
	}{
		{ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: img.LayerDigest, Size: int64(len(img.Layer))}, img.Layer},
		{ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: img.ConfigDigest, Size: int64(len(img.Config))}, img.Config},
		{ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: img.ManifestDigest, Size: int64(len(img.Manifest))}, img.Manifest},
	} {
		w, err := pusher.Push(ctx, b.desc)
		if errdefs.IsAlreadyExists(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("push %s: %w", b.desc.Digest, err)
		}
		if _, err := w.Write(b.data); err != nil {
			w.Close()
			return fmt.Errorf("push %s: %w", b.desc.Digest, err)
		}
		if err := w.Commit(ctx, b.desc.Size, b.desc.Digest); err != nil && !errdefs.IsAlreadyExists(err) {
			w.Close()
			return fmt.Errorf("push %s: %w", b.desc.Digest, err)
		}
		w.Close()
	}
	return nil
}
