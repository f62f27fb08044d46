// Package nodeagent is moor's node agent: it joins the server, long-polls the
// node's desired state, runs the pods through a Runtime, reports their status
// and keeps local state (DataDir/state.json and the node's credentials) that
// survives restarts.
//
// It owns the agent's data directory (including DataDir/pods/<uid>/, each
// pod's resolv.conf and hosts) and the containers the Runtime lists for
// moor. It must not import the reconciler (the two meet only in package
// api), containerd, any concrete Runtime or the kernel network pieces:
// those are injected (Runtime; Network, implemented by podnetwork). Stopping
// the agent leaves containers running; only a changed desired state stops
// them.
//
// The pieces, each a thin shell around a pure core:
//   - client.go: join (pinned to the token's CA hash), mTLS pull and report.
//   - state.go: the persisted applied document and per-container records.
//   - pods.go: plan, the pure diff from desired pods and actual containers to
//     actions; runner.go executes actions through lifecycle hooks (hooks.go,
//     *_hook.go).
//   - status.go: the pure status builder.
//   - probe.go: the pure prober (thresholds, periods, startup gating);
//     probe_check.go makes exec, httpGet and tcpSocket checks;
//     probe_hook.go runs each container's probes, started by a poststart
//     hook and by reconcile for adopted containers; agent_probe.go records
//     readiness (reported at once) and kills containers whose liveness or
//     startup probe fails.
//   - agent.go: the run loop wiring them together; agent_network.go syncs
//     the document's network and service table before any container is
//     stopped, and tears down the attachments of pods that are gone.
package nodeagent
