package api

import (
	"fmt"
	"net/url"
	"strconv"
)

// Paths of `moor logs` and of the reverse tunnel it travels through. The
// server cannot dial nodes (they may sit behind NAT), so a node agent
// long-polls PathNodeSessions for requests and answers each one by
// uploading to PathNodeSession; the server pipes the upload to the client
// that asked.
const (
	// PathLogs streams a container's log (admin): GET with the query of
	// LogRequest.Query. 200 answers with the raw log bytes
	// (text/plain), flushed as the node sends them; errors are the usual
	// {"error": ...} bodies.
	PathLogs = "/v1/logs"
	// PathNodeSessions is the agent's long-poll (node mTLS, own node
	// only): GET ?wait=<duration> → []SessionRequest, claimed by this
	// answer; [] when none arrived within the wait.
	PathNodeSessions = "/v1/nodes/{name}/sessions"
	// PathNodeSession is where the agent answers one session (node mTLS,
	// own sessions only): POST the stream (Content-Type
	// ContentTypeSessionStream, any length, chunked) or a SessionError
	// (Content-Type ContentTypeSessionError).
	PathNodeSession = "/v1/nodes/{name}/sessions/{id}"
)

// Content types of a session answer.
const (
	ContentTypeSessionStream = "application/octet-stream"
	ContentTypeSessionError  = "application/json"
)

// SessionKindLogs is the kind of a session that asks for a container's log.
const SessionKindLogs = "logs"

// LogRequest asks for the log of one container of a pod, as `kubectl logs`
// does.
type LogRequest struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	// Container may be empty when the pod has one container (or names a
	// default one in the kubectl.kubernetes.io/default-container
	// annotation).
	Container string `json:"container,omitempty"`
	// Follow keeps the stream open while the container runs; it ends once
	// the container has exited and its log is drained.
	Follow bool `json:"follow,omitempty"`
	// TailLines, when set, starts that many lines before the end.
	TailLines *int64 `json:"tailLines,omitempty"`
	// Previous asks for the container's previous instance: the run before
	// its last restart.
	Previous bool `json:"previous,omitempty"`
	// Timestamps prefixes every line with an RFC 3339 time and a space.
	Timestamps bool `json:"timestamps,omitempty"`
}

// Query encodes r as the query of PathLogs.
func (r LogRequest) Query() url.Values {
	q := url.Values{"namespace": {r.Namespace}, "pod": {r.Pod}}
	if r.Container != "" {
		q.Set("container", r.Container)
	}
	if r.Follow {
		q.Set("follow", "true")
	}
	if r.TailLines != nil {
		q.Set("tailLines", strconv.FormatInt(*r.TailLines, 10))
	}
	if r.Previous {
		q.Set("previous", "true")
	}
	if r.Timestamps {
		q.Set("timestamps", "true")
	}
	return q
}

// ParseLogRequest decodes the query of PathLogs. Namespace defaults to
// "default"; pod is required; tailLines must not be negative.
func ParseLogRequest(q url.Values) (LogRequest, error) {
	r := LogRequest{Namespace: q.Get("namespace"), Pod: q.Get("pod"), Container: q.Get("container")}
	if r.Namespace == "" {
		r.Namespace = "default"
	}
	if r.Pod == "" {
		return LogRequest{}, fmt.Errorf("logs: the pod query parameter is required")
	}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"follow", &r.Follow}, {"previous", &r.Previous}, {"timestamps", &r.Timestamps}} {
		v := q.Get(f.name)
		if v == "" {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return LogRequest{}, fmt.Errorf("logs: %s=%q: want true or false", f.name, v)
		}
		*f.dst = b
	}
	if v := q.Get("tailLines"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return LogRequest{}, fmt.Errorf("logs: tailLines=%q: want a number of lines, 0 or more", v)
		}
		r.TailLines = &n
	}
	return r, nil
}

// SessionRequest is one request a node agent picks up from
// PathNodeSessions. The fields of a logs request are inline:
// {"id": ..., "kind": "logs", "namespace": ..., "pod": ..., ...}; an exec
// request is under "exec": {"id": ..., "kind": "exec", "exec": {...}}.
type SessionRequest struct {
	// ID names the session in PathNodeSession; it is random and valid
	// only for the node the request was given to.
	ID   string `json:"id"`
	Kind string `json:"kind"`
	LogRequest
	// Exec is the request of a SessionKindExec session.
	Exec *ExecRequest `json:"exec,omitempty"`
}

// SessionError is an agent's answer to a session it cannot serve: Status
// is the HTTP status the server answers the client with (400–599; others
// become 502), Error the message the client shows.
type SessionError struct {
	Status int    `json:"status"`
	Error  string `json:"error"`
}
