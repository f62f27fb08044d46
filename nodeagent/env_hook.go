package nodeagent

import (
	"context"
	"fmt"
)

// envHook sets the container's environment from its literal env entries.
// valueFrom (secrets, config maps, field refs) and envFrom are not supported
// yet: such containers wait with CreateContainerConfigError, whose message
// says which variable to change. A secrets hook placed before this one is
// where they would be resolved.
type envHook struct{}

var _ prestartHook = (*envHook)(nil)

func (h *envHook) Name() string { return "env" }

func (h *envHook) Prestart(_ context.Context, req *prestartRequest, _ *prestartResponse) error {
	c := req.Container
	if len(c.EnvFrom) > 0 {
		return &waitingError{Reason: reasonCreateContainerConfigError,
			Err: fmt.Errorf("container %q: envFrom is not supported yet; list the variables under env with literal values", c.Name)}
	}
	env := make([]string, 0, len(c.Env))
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			return &waitingError{Reason: reasonCreateContainerConfigError,
				Err: fmt.Errorf("container %q: env %s uses valueFrom, which is not supported yet; give it a literal value", c.Name, e.Name)}
		}
		env = append(env, e.Name+"="+e.Value)
	}
	req.Spec.Env = append(req.Spec.Env, env...)
	return nil
}
