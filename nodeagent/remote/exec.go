package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/moor-dev/moor/api"
)

// ExecSource runs commands in this node's containers.
type ExecSource interface {
	// PrepareExec checks req against the node's pods and finds the running
	// container it names; the returned function runs req.Command there.
	// Errors carry their class (errdefs: not found, invalid argument,
	// failed precondition, ...), which becomes the HTTP status the client
	// sees.
	PrepareExec(ctx context.Context, req api.ExecRequest) (ExecFunc, error)
}

// ExecFunc runs a prepared command with stdio and returns its exit code
// once it has exited and its output has been written. When ctx ends first
// the command is killed and the error wraps ctx.Err(). It may return with
// a Read of stdio.Stdin pending; the caller closes Stdin's source.
type ExecFunc func(ctx context.Context, stdio Stdio) (exitCode int, err error)

// Stdio are a command's standard streams. Stdin is nil when the request
// asked for none; the writers are used from several goroutines, never
// after ExecFunc returns.
type Stdio struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// errUploadEnded stops the writes of a command whose upload is over.
var errUploadEnded = errors.New("the exec stream's upload ended")

// serveExec answers an exec session: it prepares the command, reads the
// client's stdin from the server when asked to, runs the command and
// uploads its output as an exec stream. The upload's end, normal or not,
// ends the command.
func (l *Loop) serveExec(ctx context.Context, sreq api.SessionRequest) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if sreq.Exec == nil {
		l.answerError(ctx, sreq.ID, http.StatusBadRequest, "the exec session carries no exec request; is the server newer than this agent?")
		return
	}
	req := *sreq.Exec
	log := l.log.With("session", sreq.ID, "kind", sreq.Kind, "namespace", req.Namespace, "pod", req.Pod, "container", req.Container)
	run, err := l.cfg.Exec.PrepareExec(ctx, req)
	if err != nil {
		log.Info("cannot exec", "err", err)
		l.answerError(ctx, sreq.ID, statusOf(err), err.Error())
		return
	}
	var stdin io.ReadCloser
	if req.Stdin {
		if stdin, err = l.openStdin(ctx, sreq.ID); err != nil {
			log.Warn("read the client's stdin", "err", err)
			l.answerError(ctx, sreq.ID, http.StatusBadGateway, fmt.Sprintf("node %q could not read the client's stdin: %v", l.cfg.Node, err))
			return
		}
		defer stdin.Close()
	}

	pr, pw := io.Pipe()
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		l.runExec(ctx, log, run, stdin, pw)
	}()
	log.Debug("exec", "command", req.Command, "stdin", req.Stdin)
	switch err := l.upload(ctx, sreq.ID, pr); {
	case err == nil:
		log.Debug("exec output streamed")
	case errors.Is(err, errClientGone):
		log.Info("the client went away; the command is killed")
	case ctx.Err() == nil:
		log.Warn("stream exec output", "err", err)
	}
	// The upload is over: a command still running is killed, and its
	// pending writes and stdin reads return.
	cancel()
	pr.CloseWithError(errUploadEnded)
	if stdin != nil {
		stdin.Close()
	}
	<-ran
}

// runExec runs the command with its output framed into w and ends the
// stream with its exit code, or with an error frame when it could not run
// to its end. A command killed because ctx ended (the client went away)
// breaks the stream off instead: nobody reads it.
func (l *Loop) runExec(ctx context.Context, log *slog.Logger, run ExecFunc, stdin io.Reader, w *io.PipeWriter) {
	sw := api.NewExecStreamWriter(w)
	stdio := Stdio{Stdout: sw.Stdout(), Stderr: sw.Stderr()}
	if stdin != nil {
		stdio.Stdin = stdin
	}
	code, err := run(ctx, stdio)
	switch {
	case ctx.Err() != nil:
		w.CloseWithError(ctx.Err())
		return
	case err != nil:
		log.Info("exec failed", "err", err)
		err = sw.Fail(api.SessionError{Status: statusOf(err), Error: err.Error()})
	default:
		log.Debug("exec ended", "exit_code", code)
		err = sw.Exit(code)
	}
	if err != nil {
		w.CloseWithError(err)
		return
	}
	w.Close()
}

// openStdin starts reading the client's stdin of session id.
func (l *Loop) openStdin(ctx context.Context, id string) (io.ReadCloser, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, l.cfg.Server+l.path(api.PathNodeSessionStdin, id), nil)
	if err != nil {
		return nil, err
	}
	resp, err := l.cfg.Client.Do(hreq)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	return resp.Body, nil
}
