package api

import (
	"fmt"
	"net/url"
	"strconv"
)

// Paths of `moor exec`. Like `moor logs` it travels through the node
// sessions (PathNodeSessions, PathNodeSession): the server queues an exec
// session for the pod's node, the agent picks it up, reads the client's
// stdin from PathNodeSessionStdin (only when ExecRequest.Stdin is set)
// and uploads the command's output, an exec stream, to PathNodeSession;
// the server relays that stream to the client unchanged.
const (
	// PathExec runs a command in a container (admin): POST with the query
	// of ExecRequest.Query. With stdin=true the request body is the
	// command's stdin, streamed for as long as the command runs (the
	// client must send the body while it reads the answer: HTTP/2, or an
	// HTTP/1.1 client that does so); its end closes the command's stdin.
	// 200 answers with an exec stream (Content-Type ContentTypeExecStream,
	// see ExecStreamWriter) flushed as the node sends it; errors before
	// the command started are the usual {"error": ...} bodies, 504 when
	// the node did not pick the session up in time.
	PathExec = "/v1/exec"
	// PathNodeSessionStdin is where the agent reads the stdin of an exec
	// session (node mTLS, own sessions only): GET answers 200 with the
	// client's stdin as it arrives (application/octet-stream); a clean end
	// of the body is the end of stdin. Only one read per session; 400 for
	// a session that asked for no stdin.
	PathNodeSessionStdin = "/v1/nodes/{name}/sessions/{id}/stdin"
)

// SessionKindExec is the kind of a session that runs a command in a
// container; its request is SessionRequest.Exec.
const SessionKindExec = "exec"

// ContentTypeExecStream is the Content-Type of the answer of PathExec,
// an exec stream. The agent uploads that stream to PathNodeSession as
// ContentTypeSessionStream, as every session stream: the session's kind
// says what the bytes are.
const ContentTypeExecStream = "application/vnd.moor.exec-stream"

// ExecRequest asks to run a command in a running container of a pod, as
// `kubectl exec` does (without a terminal).
type ExecRequest struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	// Container may be empty when the pod has one container (or names a
	// default one in the kubectl.kubernetes.io/default-container
	// annotation).
	Container string `json:"container,omitempty"`
	// Command is the argv; Command[0] is looked up in the container's
	// PATH. It must not be empty.
	Command []string `json:"command"`
	// Stdin passes the client's stdin to the command; without it the
	// command's stdin is empty.
	Stdin bool `json:"stdin,omitempty"`
}

// Query encodes r as the query of PathExec: one command parameter per
// argument, in order.
func (r ExecRequest) Query() url.Values {
	q := url.Values{"namespace": {r.Namespace}, "pod": {r.Pod}, "command": r.Command}
	if r.Container != "" {
		q.Set("container", r.Container)
	}
	if r.Stdin {
		q.Set("stdin", "true")
	}
	return q
}

// ParseExecRequest decodes the query of PathExec. Namespace defaults to
// "default"; pod and at least one command parameter are required.
func ParseExecRequest(q url.Values) (ExecRequest, error) {
	r := ExecRequest{Namespace: q.Get("namespace"), Pod: q.Get("pod"), Container: q.Get("container"), Command: q["command"]}
	if r.Namespace == "" {
		r.Namespace = "default"
	}
	if r.Pod == "" {
		return ExecRequest{}, fmt.Errorf("exec: the pod query parameter is required")
	}
	if len(r.Command) == 0 || r.Command[0] == "" {
		return ExecRequest{}, fmt.Errorf("exec: the command query parameter is required (one per argument, the program first)")
	}
	if v := q.Get("stdin"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return ExecRequest{}, fmt.Errorf("exec: stdin=%q: want true or false", v)
		}
		r.Stdin = b
	}
	return r, nil
}
