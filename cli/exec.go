package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/moor-dev/moor/api"
)

// execClient is what `moor exec` needs of the server: the pod lookup of
// `moor logs`, and Exec.
type execClient interface {
	logsClient
	Exec(ctx context.Context, req api.ExecRequest, stdin io.Reader, stdout, stderr io.Writer) (exitCode int, err error)
}

var _ execClient = (*Client)(nil)

// ExitError is the non-zero exit code of a command `moor exec` ran; moor
// exits with it.
type ExitError struct {
	Code int
	// quiet: nothing to tell (Ctrl-C interrupted the command).
	quiet bool
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("command terminated with exit code %d", e.Code)
}

// ExitCode is the exit status for a verb that returned err: 0 for nil, an
// ExitError's code, else 1. cmd/moor exits with it.
func ExitCode(err error) int {
	var ee *ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Code
	}
	return 1
}

// exitInterrupted is moor's exit code when Ctrl-C ends `moor exec`, as a
// shell reports a process SIGINT killed.
const exitInterrupted = 130

// Exec runs req's command as the server relays it to and from the pod's
// node: with req.Stdin, stdin is streamed as the request body while the
// command runs (the client's HTTP/2 connection carries both directions at
// once); the command's stdout and stderr are written to stdout and
// stderr. It returns the command's exit code. A failure on the node
// before or while the command ran is an *APIError; a stream cut off
// midway an error; ctx's end kills the command and returns ctx's error.
func (c *Client) Exec(ctx context.Context, req api.ExecRequest, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	u := c.base.JoinPath(api.PathExec)
	u.RawQuery = req.Query().Encode()
	// Ends the stdin reader when the command has ended while stdin is
	// still open.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var body io.Reader = http.NoBody
	if req.Stdin {
		if stdin == nil {
			stdin = strings.NewReader("")
		}
		body = newStdinReader(ctx, stdin)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), body)
	if err != nil {
		return -1, fmt.Errorf("POST %s: %w", u, err)
	}
	if req.Stdin {
		hreq.ContentLength = -1 // streamed
	}
	hreq.Header.Set("Accept", api.ContentTypeExecStream)
	resp, err := c.http.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return -1, ctx.Err()
		}
		return -1, fmt.Errorf("POST %s: %w%s", u, err, connectHint(err, c.base.Host))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		return -1, decodeError(resp.StatusCode, b)
	}
	code, err := api.DemuxExecStream(resp.Body, stdout, stderr)
	var se *api.ExecStreamError
	switch {
	case err == nil:
		return code, nil
	case ctx.Err() != nil:
		return -1, ctx.Err()
	case errors.As(err, &se):
		return -1, &APIError{StatusCode: se.Status, Message: se.Message}
	}
	return -1, fmt.Errorf("the exec stream of pod %s broke off: %w", req.Pod, err)
}

// stdinReader passes stdin through until ctx ends, and then fails at once
// although a Read of stdin may still be pending (a terminal's cannot be
// interrupted): the HTTP client stops sending the body, and so resets the
// stream, only when a Read returns. The goroutine reading stdin ends with
// the Read pending at ctx's end; the data it returns is dropped.
type stdinReader struct {
	ctx   context.Context
	src   io.Reader
	once  sync.Once
	data  chan stdinChunk
	rest  []byte
	err   error
	chunk int
}

type stdinChunk struct {
	b   []byte
	err error
}

func newStdinReader(ctx context.Context, src io.Reader) *stdinReader {
	return &stdinReader{ctx: ctx, src: src, data: make(chan stdinChunk), chunk: 32 << 10}
}

// Read implements io.Reader.
func (r *stdinReader) Read(p []byte) (int, error) {
	if len(r.rest) > 0 {
		n := copy(p, r.rest)
		r.rest = r.rest[n:]
		return n, nil
	}
	if r.err != nil {
		return 0, r.err
	}
	r.once.Do(func() { go r.pump() })
	select {
	case c := <-r.data:
		n := copy(p, c.b)
		r.rest, r.err = c.b[n:], c.err
		if len(r.rest) == 0 && r.err != nil {
			return n, r.err
		}
		return n, nil
	case <-r.ctx.Done():
		r.err = r.ctx.Err()
		return 0, r.err
	}
}

// pump reads src until it fails or ctx ends.
func (r *stdinReader) pump() {
	for {
		b := make([]byte, r.chunk)
		n, err := r.src.Read(b)
		select {
		case r.data <- stdinChunk{b[:n], err}:
		case <-r.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// execOptions are the flags of `moor exec`.
type execOptions struct {
	Container string
	Stdin     bool
	TTY       bool
}

// NewExecCommand returns `moor exec`.
func NewExecCommand(s Streams) *cobra.Command {
	return newExecCommand(s, connectAs[execClient])
}

func newExecCommand(s Streams, connect func(Options) (execClient, string, error)) *cobra.Command {
	var eo execOptions
	cmd := &cobra.Command{
		Use:   "exec (POD | TYPE/NAME) [-c CONTAINER] [-i] -- COMMAND [args...]",
		Short: "Run a command in a container",
		Long: "Run a command in a running container, like kubectl exec. The server relays it to the node the pod runs on;\n" +
			"the command's stdout and stderr arrive apart, and moor exits with the command's exit code.\n" +
			"deployment/NAME picks the Deployment's first running pod (ready ones first), job/NAME the Job's newest pod.\n" +
			"Without -c, the pod's only container, its kubectl.kubernetes.io/default-container, or else its first one.\n" +
			"-t/--tty is not supported yet: commands run without a terminal, so programs that need one (an interactive\n" +
			"shell's prompt and line editing, top, vi) do not work; pass input with -i instead.",
		Example: "  moor exec web-7d9f-abcde -- ls /\n  moor exec deployment/web -c sidecar -- sh -c 'echo $HOSTNAME'\n" +
			"  echo 'SELECT 1;' | moor exec -i db-0 -- psql",
		Args: func(cmd *cobra.Command, args []string) error {
			if eo.TTY {
				return errors.New("-t/--tty is not supported yet: moor exec runs commands without a terminal; drop -t (keep -i to pass stdin)")
			}
			dash := cmd.ArgsLenAtDash()
			switch {
			case dash < 0 && len(args) > 0:
				return fmt.Errorf("put the command after --: moor exec %s -- COMMAND [args...]", args[0])
			case dash <= 0:
				return fmt.Errorf("want one POD or TYPE/NAME and a command after --: moor %s", cmd.Use)
			case dash > 1:
				return fmt.Errorf("want one POD or TYPE/NAME before --, got %d: %s", dash, strings.Join(args[:dash], " "))
			case len(args) == dash:
				return fmt.Errorf("want a command after --: moor exec %s -- COMMAND [args...]", args[0])
			}
			return nil
		},
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			o, target, err := startPodVerb(cmd, args[0], execVerb)
			if err != nil {
				return err
			}
			c, ns, err := connect(o)
			if err != nil {
				return err
			}
			err = runExec(cmd.Context(), c, o, ns, target, eo, args[1:], s)
			var ee *ExitError
			if errors.As(err, &ee) {
				// The command's own failure: kubectl's words, no "Error:".
				cmd.SilenceErrors = true
				if !ee.quiet {
					fmt.Fprintln(s.ErrOut, ee.Error())
				}
				return err
			}
			return reportError(cmd, err)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&eo.Container, "container", "c", "", "the container to run the command in (default: the pod's only, default or first container)")
	f.BoolVarP(&eo.Stdin, "stdin", "i", false, "pass stdin to the command; its end closes the command's stdin")
	f.BoolVarP(&eo.TTY, "tty", "t", false, "not supported yet: commands run without a terminal")
	return cmd
}

// execVerb is how `moor exec` names its targets.
var execVerb = podVerb{
	name:     "exec",
	examples: "pod/web-7d9f-abcde or deployment/web",
	refuse:   "cannot exec into a %s: name a pod, deployment/NAME or job/NAME",
}

// runExec resolves the pod and container and runs the command; a
// non-zero exit code is an *ExitError.
func runExec(ctx context.Context, c execClient, o Options, ns string, t podTarget, eo execOptions, command []string, s Streams) error {
	sel, err := findLogsPod(ctx, c, o, ns, t)
	if err != nil {
		return err
	}
	container, note := pickExecContainer(sel.Pod, eo.Container)
	if note != "" {
		fmt.Fprintln(s.ErrOut, note)
	}
	req := api.ExecRequest{Namespace: ns, Pod: sel.Pod.Name, Container: container, Command: command, Stdin: eo.Stdin}
	ctx, cancel := streamContext(ctx, o)
	defer cancel()
	var stdin io.Reader
	if eo.Stdin {
		stdin = s.In
	}
	code, err := c.Exec(ctx, req, stdin, s.Out, s.ErrOut)
	switch {
	case errors.Is(err, context.Canceled):
		return &ExitError{Code: exitInterrupted, quiet: true} // Ctrl-C: the command was killed
	case err != nil:
		return err
	case code != 0:
		return &ExitError{Code: code}
	}
	return nil
}

// pickExecContainer returns the container to run in, as kubectl exec
// picks it: the one asked for, else the pod's only one, else its default
// one, else its first one, with a note saying so. A named container the
// pod lacks is left for the node to refuse.
func pickExecContainer(p *corev1.Pod, want string) (name, note string) {
	if want != "" {
		return want, ""
	}
	var names []string
	for _, c := range p.Spec.Containers {
		names = append(names, c.Name)
	}
	switch {
	case len(names) == 0:
		return "", "" // the node says what is wrong
	case len(names) == 1:
		return names[0], ""
	}
	if d := p.Annotations[defaultContainerAnnotation]; d != "" && slices.Contains(names, d) {
		return d, ""
	}
	return names[0], fmt.Sprintf("Defaulted container %q out of: %s", names[0], strings.Join(names, ", "))
}
