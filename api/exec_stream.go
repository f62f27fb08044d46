package api

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// An exec stream carries a command's stdout and stderr apart, and its end:
// the agent uploads one to PathNodeSession and the server relays it, as
// it is, as the answer of PathExec. It is a sequence of frames, each a
// 5-byte header and a payload:
//
//	byte 0      the frame's kind (ExecFrameKind): 1 stdout, 2 stderr,
//	            3 exit, 4 error
//	bytes 1..4  the payload's length, a big-endian uint32, at most
//	            MaxExecFramePayload
//	bytes 5..   the payload
//
// Stdout and stderr frames carry output bytes, in the order the command
// wrote them to that stream (frames of the two streams interleave as the
// agent read them); they are never empty. The stream ends with exactly
// one exit frame, whose payload is an ExecExit in JSON, or one error
// frame, whose payload is a SessionError in JSON (the command could not
// run to its end, e.g. its container stopped); nothing follows it. A
// stream that ends without either was cut off. Readers skip frames of
// kinds they do not know, so that kinds can be added.

// ExecFrameKind is the kind of an exec stream frame.
type ExecFrameKind byte

// Kinds of exec stream frames.
const (
	ExecFrameStdout ExecFrameKind = 1
	ExecFrameStderr ExecFrameKind = 2
	ExecFrameExit   ExecFrameKind = 3
	ExecFrameError  ExecFrameKind = 4
)

// MaxExecFramePayload bounds a frame's payload; writers split longer
// output into several frames and readers reject longer frames.
const MaxExecFramePayload = 64 << 10

// execFrameHeader is the length of a frame's header.
const execFrameHeader = 5

// ExecExit is the payload of an exit frame.
type ExecExit struct {
	// ExitCode is the command's exit status (128+N when signal N killed
	// it, as a shell reports it).
	ExitCode int `json:"exitCode"`
}

// ExecStreamError is the error frame of an exec stream: the command
// could not run to its end. Status is the HTTP status the agent gave
// the failure's class (see SessionError).
type ExecStreamError struct {
	Status  int
	Message string
}

func (e *ExecStreamError) Error() string { return e.Message }

// ErrExecStreamEnded is returned by writes to an ExecStreamWriter after
// its exit or error frame.
var ErrExecStreamEnded = errors.New("exec stream: written after its end")

// ExecStreamWriter writes an exec stream to an io.Writer, one Write per
// frame. It is safe for concurrent use: the command's stdout and stderr
// are copied by different goroutines. An error of the underlying writer
// is returned by that write and every later one.
type ExecStreamWriter struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	ended bool
	err   error
}

// NewExecStreamWriter returns a writer of an exec stream to w.
func NewExecStreamWriter(w io.Writer) *ExecStreamWriter {
	return &ExecStreamWriter{w: w}
}

// Stdout returns a writer that sends the command's stdout.
func (w *ExecStreamWriter) Stdout() io.Writer { return execOutput{w, ExecFrameStdout} }

// Stderr returns a writer that sends the command's stderr.
func (w *ExecStreamWriter) Stderr() io.Writer { return execOutput{w, ExecFrameStderr} }

// Exit ends the stream with the command's exit code.
func (w *ExecStreamWriter) Exit(code int) error {
	b, err := json.Marshal(ExecExit{ExitCode: code})
	if err != nil {
		return fmt.Errorf("exec stream: %w", err)
	}
	return w.end(ExecFrameExit, b)
}

// Fail ends the stream with an error frame.
func (w *ExecStreamWriter) Fail(e SessionError) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("exec stream: %w", err)
	}
	if len(b) > MaxExecFramePayload {
		e.Error = e.Error[:MaxExecFramePayload/8] + "..." // escaped, at most 6 bytes a byte
		if b, err = json.Marshal(e); err != nil {
			return fmt.Errorf("exec stream: %w", err)
		}
	}
	return w.end(ExecFrameError, b)
}

// end writes the final frame.
func (w *ExecStreamWriter) end(kind ExecFrameKind, payload []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.frameLocked(kind, payload); err != nil {
		return err
	}
	w.ended = true
	return nil
}

// frameLocked writes one frame. w.mu must be held.
func (w *ExecStreamWriter) frameLocked(kind ExecFrameKind, payload []byte) error {
	switch {
	case w.err != nil:
		return w.err
	case w.ended:
		return ErrExecStreamEnded
	}
	w.buf = AppendExecFrame(w.buf[:0], kind, payload)
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = fmt.Errorf("exec stream: %w", err)
		return w.err
	}
	return nil
}

// AppendExecFrame appends one frame to b. The payload must not be longer
// than MaxExecFramePayload.
func AppendExecFrame(b []byte, kind ExecFrameKind, payload []byte) []byte {
	b = append(b, byte(kind))
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// execOutput sends what is written to it as frames of one kind.
type execOutput struct {
	w    *ExecStreamWriter
	kind ExecFrameKind
}

// Write implements io.Writer.
func (o execOutput) Write(p []byte) (int, error) {
	o.w.mu.Lock()
	defer o.w.mu.Unlock()
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), MaxExecFramePayload)]
		if err := o.w.frameLocked(o.kind, chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// ExecFrame is one frame of an exec stream.
type ExecFrame struct {
	Kind    ExecFrameKind
	Payload []byte
}

// ExecStreamReader reads the frames of an exec stream.
type ExecStreamReader struct {
	r   io.Reader
	buf []byte
}

// NewExecStreamReader returns a reader of the exec stream r.
func NewExecStreamReader(r io.Reader) *ExecStreamReader {
	return &ExecStreamReader{r: r}
}

// Next returns the next frame; its Payload is valid until the next call.
// At the end of r between frames it returns io.EOF, inside a frame
// io.ErrUnexpectedEOF; a frame longer than MaxExecFramePayload is an
// error.
func (r *ExecStreamReader) Next() (ExecFrame, error) {
	var hdr [execFrameHeader]byte
	if _, err := io.ReadFull(r.r, hdr[:]); err != nil {
		return ExecFrame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxExecFramePayload {
		return ExecFrame{}, fmt.Errorf("exec stream: a frame of kind %d claims %d bytes, more than the limit of %d", hdr[0], n, MaxExecFramePayload)
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	if _, err := io.ReadFull(r.r, r.buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return ExecFrame{}, err
	}
	return ExecFrame{Kind: ExecFrameKind(hdr[0]), Payload: r.buf}, nil
}

// DemuxExecStream copies the output frames of the exec stream r to stdout
// and stderr until its final frame and returns the command's exit code.
// An error frame is returned as an *ExecStreamError; a stream that ends
// before its final frame is an error wrapping io.ErrUnexpectedEOF.
func DemuxExecStream(r io.Reader, stdout, stderr io.Writer) (exitCode int, err error) {
	fr := NewExecStreamReader(r)
	for {
		f, err := fr.Next()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return -1, fmt.Errorf("exec stream: it ended before the command's exit status: %w", io.ErrUnexpectedEOF)
		}
		if err != nil {
			return -1, err
		}
		switch f.Kind {
		case ExecFrameStdout, ExecFrameStderr:
			w := stdout
			if f.Kind == ExecFrameStderr {
				w = stderr
			}
			if _, err := w.Write(f.Payload); err != nil {
				return -1, fmt.Errorf("exec stream: write the command's output: %w", err)
			}
		case ExecFrameExit:
			var e ExecExit
			if err := json.Unmarshal(f.Payload, &e); err != nil {
				return -1, fmt.Errorf("exec stream: exit frame: %w", err)
			}
			return e.ExitCode, nil
		case ExecFrameError:
			var e SessionError
			if err := json.Unmarshal(f.Payload, &e); err != nil {
				return -1, fmt.Errorf("exec stream: error frame: %w", err)
			}
			if e.Error == "" {
				e.Error = "the command failed on the node"
			}
			return -1, &ExecStreamError{Status: e.Status, Message: e.Error}
		}
	}
}
