package nodeagent

import (
	"context"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

// The pod runner is a list of small lifecycle hooks, one concern each, one
// file each (*_hook.go), in the style of Nomad's task runner. A hook
// implements Name and only the optional interfaces it needs; the runner
// calls every hook implementing an interface, in list order. Requests and
// responses are structs so fields can be added without touching every hook.
//
// Extension points, in the order they belong in newHooks:
//   - volumes: a prestartHook that prepares emptyDir/hostPath/configMap
//     directories and adds mounts to the ContainerSpec (needs a Mounts
//     field there), and a killHook that cleans them up.
//   - secrets: a prestartHook resolving env valueFrom.secretKeyRef and
//     secret volumes, running before envHook.
//   - probes: a poststartHook starting liveness/readiness probes, whose
//     results feed Ready in status.go, and a killHook stopping them.
//   - preStop: a killHook running lifecycle.preStop before the stop signal.

// hook is what every lifecycle hook implements.
type hook interface {
	// Name identifies the hook in logs and errors.
	Name() string
}

// prestartRequest is a container about to be created. Hooks fill in Spec.
type prestartRequest struct {
	Pod       *api.Pod
	Container *corev1.Container
	Spec      *ContainerSpec

	// secrets memoises the Secrets read during this start
	// (secretResolver.read); nil until the first read.
	secrets map[string]secretRead
}

// prestartResponse is reserved for results later hooks or the runner need.
type prestartResponse struct{}

// prestartHook runs before a container is created; an error (ideally a
// *waitingError) stops the creation, and the runner retries with backoff.
type prestartHook interface {
	hook
	Prestart(ctx context.Context, req *prestartRequest, resp *prestartResponse) error
}

// poststartRequest is a container that has just started.
type poststartRequest struct {
	Pod       *api.Pod
	Container *corev1.Container
	ID        string
}

// poststartHook runs after a container started (probes start here).
type poststartHook interface {
	hook
	Poststart(ctx context.Context, req *poststartRequest) error
}

// killRequest is a container about to be stopped and removed. Pod is nil
// when no desired pod owns it any more.
type killRequest struct {
	ID    string
	Pod   *api.Pod
	Grace time.Duration
}

// killHook runs before a container is stopped (preStop runs here); errors
// are logged and do not prevent the stop.
type killHook interface {
	hook
	Prekill(ctx context.Context, req *killRequest) error
}

// hookDeps is what the hooks need from the agent.
type hookDeps struct {
	rt Runtime
	// net is nil in host-network mode.
	net      Network
	podDir   string
	services func() []api.Service
	recordIP func(uid string, ip netip.Addr)
	// secrets reads Vault-backed Secrets (nil: only plain Secrets
	// resolve); secretRefs returns the applied document's Secrets.
	secrets    SecretSource
	secretRefs func() []api.SecretRef
	// projector writes secret volumes; nil: TmpfsProjector.
	projector Projector
	// probes runs containers' probes; nil: none.
	probes *probeManager
}

// newHooks returns the runner's hooks in order.
func newHooks(d hookDeps) []hook {
	secrets := &secretResolver{source: d.secrets, refs: d.secretRefs}
	proj := d.projector
	if proj == nil {
		proj = TmpfsProjector{}
	}
	hooks := []hook{
		&imagePullHook{puller: d.rt, secrets: secrets},
		&secretVolumeHook{secrets: secrets, proj: proj, podDir: d.podDir},
		&serviceEnvHook{services: d.services},
		&envHook{secrets: secrets},
	}
	if d.net != nil {
		hooks = append(hooks, &networkHook{net: d.net, podDir: d.podDir, recordIP: d.recordIP})
	}
	if d.probes != nil {
		hooks = append(hooks, &probeHook{m: d.probes, list: d.rt})
	}
	return hooks
}

// waitingError is a hook or runtime failure with the Kubernetes waiting
// reason status shows for the container until the next attempt.
type waitingError struct {
	Reason string
	Err    error
}

func (e *waitingError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *waitingError) Unwrap() error { return e.Err }

// Waiting reasons, as Kubernetes names them.
const (
	reasonContainerCreating          = "ContainerCreating"
	reasonErrImagePull               = "ErrImagePull"
	reasonImagePullBackOff           = "ImagePullBackOff"
	reasonInvalidImageName           = "InvalidImageName"
	reasonCrashLoopBackOff           = "CrashLoopBackOff"
	reasonCreateContainerConfigError = "CreateContainerConfigError"
	reasonCreateContainerError       = "CreateContainerError"
	reasonRunContainerError          = "RunContainerError"
)
