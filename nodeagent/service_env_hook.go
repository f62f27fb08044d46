package nodeagent

import (
	"context"
	"strconv"
	"strings"

	"github.com/moor-dev/moor/api"
)

// serviceEnvHook gives each container the Kubernetes service variables
// of the services in its pod's namespace that exist when it is created:
// {SVC}_SERVICE_HOST, {SVC}_SERVICE_PORT (the first port) and
// {SVC}_SERVICE_PORT_{PORT} per named port, with names upper-cased and
// dashes turned into underscores. Headless services get none. They come
// before the container's own env, which therefore wins on a clash.
type serviceEnvHook struct {
	// services returns the service table of the applied desired state.
	services func() []api.Service
}

var _ prestartHook = (*serviceEnvHook)(nil)

func (h *serviceEnvHook) Name() string { return "service-env" }

func (h *serviceEnvHook) Prestart(_ context.Context, req *prestartRequest, _ *prestartResponse) error {
	if req.Pod.Spec.EnableServiceLinks != nil && !*req.Pod.Spec.EnableServiceLinks {
		return nil
	}
	req.Spec.Env = append(req.Spec.Env, serviceEnv(req.Pod.Namespace, h.services())...)
	return nil
}

// serviceEnv returns the variables for the services of namespace ns, in
// the services' order.
func serviceEnv(ns string, svcs []api.Service) []string {
	var env []string
	for i := range svcs {
		s := &svcs[i]
		if s.Namespace != ns || !s.ClusterIP.IsValid() || len(s.Ports) == 0 {
			continue
		}
		name := envName(s.Name)
		env = append(env,
			name+"_SERVICE_HOST="+s.ClusterIP.String(),
			name+"_SERVICE_PORT="+strconv.Itoa(int(s.Ports[0].Port)))
		for _, p := range s.Ports {
			if p.Name != "" {
				env = append(env, name+"_SERVICE_PORT_"+envName(p.Name)+"="+strconv.Itoa(int(p.Port)))
			}
		}
	}
	return env
}

func envName(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }
