package nodeagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/moor-dev/moor/api"
)

// stateFileName is the agent's persisted state inside DataDir.
const stateFileName = "state.json"

// stateVersion is the version of the state.json layout.
const stateVersion = 1

// agentState is what survives an agent restart: the last applied desired
// document (so pods keep running while the server is unreachable) and what
// the runtime cannot tell us (restart counts, the last exit of a replaced
// container, backoff).
type agentState struct {
	Version int `json:"version"`
	// Desired is the applied NodeDesired document byte for byte; Digest is
	// its digest, checked again on load.
	Desired []byte `json:"desired,omitempty"`
	Digest  string `json:"digest,omitempty"`
	// Containers are keyed by container ID.
	Containers map[string]containerRecord `json:"containers,omitempty"`
	// Pods are keyed by pod UID.
	Pods map[string]podRecord `json:"pods,omitempty"`
}

// containerRecord is the agent's memory of one container of one pod
// incarnation (UID and spec hash); a record for another incarnation is
// ignored and replaced.
type containerRecord struct {
	PodUID       string `json:"podUID"`
	SpecHash     string `json:"specHash"`
	GraceSeconds int64  `json:"graceSeconds"`
	// RestartCount is the number of restarts so far; CrashCount the number
	// of consecutive ones, which sets the backoff and resets after a long
	// enough run.
	RestartCount    int32        `json:"restartCount"`
	CrashCount      int          `json:"crashCount"`
	LastTermination *termination `json:"lastTermination,omitempty"`
	// Failures counts consecutive failed attempts to create and start the
	// container; the next one waits until NextAttempt. Waiting is the
	// reason shown meanwhile (ErrImagePull, CreateContainerError, ...).
	Failures       int       `json:"failures,omitempty"`
	NextAttempt    time.Time `json:"nextAttempt,omitzero"`
	WaitingReason  string    `json:"waitingReason,omitempty"`
	WaitingMessage string    `json:"waitingMessage,omitempty"`
	// Probe holds the published probe results of the run that started at
	// Probe.StartedAt, so status and a restarted agent see them.
	Probe *probeRecord `json:"probe,omitempty"`
	// Killed says why the agent killed the run that started at
	// Killed.StartedAt (a failed liveness or startup probe); it becomes
	// that run's termination reason.
	Killed *killRecord `json:"killed,omitempty"`
}

// probeRecord is the published probe state of one run of a container.
type probeRecord struct {
	StartedAt time.Time `json:"startedAt"`
	// Started: the startup probe has passed. Ready: and the readiness
	// probe passes.
	Started bool `json:"started"`
	Ready   bool `json:"ready"`
	// ReadyAt is when the readiness probe last started to pass in this run
	// (the Ready condition's transition time, which minReadySeconds counts
	// from); zero while not ready.
	ReadyAt time.Time `json:"readyAt,omitzero"`
}

// forRun reports whether r describes the run that started at startedAt.
func (r *probeRecord) forRun(startedAt time.Time) bool {
	return r != nil && r.StartedAt.Equal(startedAt)
}

// killRecord is why the agent killed one run of a container.
type killRecord struct {
	StartedAt time.Time `json:"startedAt"`
	Reason    string    `json:"reason"`
	Message   string    `json:"message"`
}

// applyTo gives t, the termination of the run that started at
// t.StartedAt, the kill's reason when it is that run's.
func (k *killRecord) applyTo(t *termination) {
	if k != nil && k.StartedAt.Equal(t.StartedAt) {
		t.Reason, t.Message = k.Reason, k.Message
	}
}

// matches reports whether r belongs to the incarnation (uid, specHash).
func (r containerRecord) matches(uid, specHash string) bool {
	return r.PodUID == uid && r.SpecHash == specHash
}

// termination is a finished run of a container.
type termination struct {
	ExitCode   int32     `json:"exitCode"`
	Reason     string    `json:"reason"`
	Message    string    `json:"message,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}

// podRecord is the agent's memory of one pod.
type podRecord struct {
	StartTime time.Time `json:"startTime"`
	// IP is the pod's address on the pod network, once attached.
	IP netip.Addr `json:"ip,omitzero"`
}

func newState() *agentState {
	return &agentState{
		Version:    stateVersion,
		Containers: map[string]containerRecord{},
		Pods:       map[string]podRecord{},
	}
}

// desired decodes the applied document, nil when there is none.
func (s *agentState) desired() (*api.NodeDesired, error) {
	if len(s.Desired) == 0 {
		return nil, nil
	}
	d, err := api.DecodeNodeDesired(s.Desired, s.Digest)
	if err != nil {
		return nil, fmt.Errorf("applied desired state: %w", err)
	}
	return d, nil
}

// decodeState parses state.json and checks the applied document's digest.
func decodeState(b []byte) (*agentState, error) {
	s := newState()
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("decode agent state: %w", err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("decode agent state: version %d, want %d", s.Version, stateVersion)
	}
	if s.Containers == nil {
		s.Containers = map[string]containerRecord{}
	}
	if s.Pods == nil {
		s.Pods = map[string]podRecord{}
	}
	if _, err := s.desired(); err != nil {
		return nil, err
	}
	return s, nil
}

// loadState reads DataDir/state.json; a missing file is an empty state.
func loadState(dir string) (*agentState, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return newState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read agent state: %w", err)
	}
	s, err := decodeState(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFileName), err)
	}
	return s, nil
}

// encode returns the state.json bytes of s.
func (s *agentState) encode() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode agent state: %w", err)
	}
	return b, nil
}

// writeState writes encoded state to DataDir/state.json atomically.
func writeState(dir string, b []byte) error {
	return writeFileAtomic(filepath.Join(dir, stateFileName), b, 0o600)
}

// writeFileAtomic writes b to a temporary file beside path, fsyncs it,
// renames it over path and fsyncs the directory, so a crash leaves either
// the old or the new content, never a torn file.
func writeFileAtomic(path string, b []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	return nil
}
