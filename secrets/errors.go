package secrets

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/containerd/errdefs"
	vaultapi "github.com/hashicorp/vault/api"
)

// class is an error class: a sentinel that also matches an errdefs class.
type class struct {
	name   string
	errdef error
}

func (c *class) Error() string { return c.name }
func (c *class) Unwrap() error { return c.errdef }

// Error classes of this package's errors; test with errors.Is. Each also
// matches the errdefs class in parentheses.
var (
	// ErrNotFound: nothing at the Vault path, or the version asked for is
	// deleted or destroyed (errdefs.ErrNotFound).
	ErrNotFound error = &class{"vault secret not found", errdefs.ErrNotFound}
	// ErrKeyMissing: the secret exists but lacks a key the Secret maps
	// (errdefs.ErrNotFound).
	ErrKeyMissing error = &class{"vault key missing", errdefs.ErrNotFound}
	// ErrPermissionDenied: the node's Vault identity may not read the path,
	// or its login was rejected (errdefs.ErrPermissionDenied).
	ErrPermissionDenied error = &class{"vault permission denied", errdefs.ErrPermissionDenied}
	// ErrUnavailable: Vault is sealed, unreachable or failing (5xx, 429)
	// (errdefs.ErrUnavailable).
	ErrUnavailable error = &class{"vault unavailable", errdefs.ErrUnavailable}
	// ErrInvalid: the Secret reference or the configuration is wrong: a
	// path that is not a KV v2 read path, a key that is not a valid Secret
	// key, an unreadable credentials file (errdefs.ErrInvalidArgument).
	ErrInvalid error = &class{"invalid vault secret reference", errdefs.ErrInvalidArgument}
)

// Error is a failed Vault operation. Its message names the path (and key)
// and says what to fix; it never holds a secret value.
type Error struct {
	// Class is one of the Err* classes above.
	Class error
	// Path is the Vault path involved.
	Path string
	// Key is the missing key, for ErrKeyMissing.
	Key string
	// Msg says what failed and what to fix.
	Msg string
	// Err is the cause, if any.
	Err error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Msg
	}
	return e.Msg + ": " + e.Err.Error()
}

// Unwrap returns the class and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Class}
	}
	return []error{e.Class, e.Err}
}

// httpError is a compact form of a Vault error response: the status and
// Vault's messages, without the request dump of *api.ResponseError.
type httpError struct {
	status int
	errs   []string
	orig   error
}

func (e *httpError) Error() string {
	msg := fmt.Sprintf("HTTP %d", e.status)
	if len(e.errs) > 0 {
		parts := make([]string, len(e.errs))
		for i, s := range e.errs {
			parts[i] = oneLine(s)
		}
		msg += ": " + strings.Join(parts, "; ")
	}
	return msg
}

// multiErrorPrefix is how hashicorp/go-multierror starts a list of one.
var multiErrorPrefix = regexp.MustCompile(`^1 error occurred: \* `)

// oneLine folds a Vault message onto one line: the agent shows it as a
// container's status message.
func oneLine(s string) string {
	return multiErrorPrefix.ReplaceAllString(strings.Join(strings.Fields(s), " "), "")
}

func (e *httpError) Unwrap() error { return e.orig }

// op names what was being done, for messages: "read", "renew the lease of",
// "log in at", ...
type op string

const (
	opRead       op = "reading"
	opRenewLease op = "renewing the lease of"
	opLogin      op = "logging in at"
	opRenewToken op = "renewing the node's token at"
)

// classify turns the outcome of a Vault request into an *Error. status is
// the HTTP status (0 when no response arrived), vaultErrs Vault's error
// messages, err the transport error. sealed reports what sys/seal-status
// said after a 503 (nil: unknown). A cancelled ctx is returned unclassified.
func classify(ctx context.Context, addr string, o op, path string, status int, vaultErrs []string, err error, sealed *bool) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w", o, path, ctx.Err())
	}
	var cause error = &httpError{status: status, errs: vaultErrs, orig: err}
	if status == 0 {
		cause = err
	}
	e := &Error{Path: path, Err: cause}
	switch {
	case status == 0:
		e.Class = ErrUnavailable
		e.Msg = fmt.Sprintf("vault at %s is unreachable while %s %s: check that Vault runs and this node can reach it", addr, o, path)
	case status == http.StatusNotFound:
		e.Class = ErrNotFound
		e.Msg = fmt.Sprintf("vault has no secret at %s: write it to Vault, or fix the %s annotation", path, "vault.moor.dev/path")
		if o == opLogin {
			e.Msg = fmt.Sprintf("vault has no auth method at %s: enable it or fix the agent's Vault auth mount path", path)
		}
	case status == http.StatusForbidden:
		e.Class = ErrPermissionDenied
		e.Msg = fmt.Sprintf("vault denied %s %s: the node's Vault policy must allow it (capability %q)", o, path, capabilityFor(o))
		if o == opLogin {
			e.Msg = fmt.Sprintf("vault rejected the node's login at %s: check its role ID and secret ID files", path)
		}
	case status == http.StatusBadRequest && o == opLogin:
		e.Class = ErrPermissionDenied
		e.Msg = fmt.Sprintf("vault rejected the node's login at %s: check its role ID and secret ID files", path)
	case status == http.StatusServiceUnavailable && sealed != nil && *sealed:
		e.Class = ErrUnavailable
		e.Msg = fmt.Sprintf("vault at %s is sealed while %s %s: unseal it (vault operator unseal)", addr, o, path)
	case status == http.StatusServiceUnavailable, status == http.StatusTooManyRequests, status >= 500:
		e.Class = ErrUnavailable
		e.Msg = fmt.Sprintf("vault at %s is unavailable while %s %s: check Vault's health and logs", addr, o, path)
	case status == http.StatusPreconditionFailed:
		// A performance standby has not caught up yet; retrying helps.
		e.Class = ErrUnavailable
		e.Msg = fmt.Sprintf("vault at %s is not up to date while %s %s: retry later", addr, o, path)
	default:
		e.Class = ErrInvalid
		e.Msg = fmt.Sprintf("vault refused %s %s: check the path and the Secret's vault.moor.dev annotations", o, path)
	}
	return e
}

func capabilityFor(o op) string {
	if o == opRenewLease || o == opRenewToken {
		return "update"
	}
	return "read"
}

// responseStatus extracts the HTTP status and Vault's messages of a
// request's error; status 0 means no response.
func responseStatus(err error) (int, []string) {
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode, re.Errors
	}
	return 0, nil
}

func invalid(path, msg string) error {
	return &Error{Class: ErrInvalid, Path: path, Msg: msg}
}
