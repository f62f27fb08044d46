package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/containerd/errdefs"

	"github.com/moor-dev/moor/api"
)

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
}

// httpStatus maps an error's class (containerd errdefs) to an HTTP status.
// This is the only place classes become statuses.
func httpStatus(err error) int {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	case errdefs.IsInvalidArgument(err), errdefs.IsOutOfRange(err):
		return http.StatusBadRequest
	case errdefs.IsUnauthorized(err):
		return http.StatusUnauthorized
	case errdefs.IsPermissionDenied(err):
		return http.StatusForbidden
	case errdefs.IsNotFound(err):
		return http.StatusNotFound
	case errdefs.IsAlreadyExists(err), errdefs.IsConflict(err), errdefs.IsFailedPrecondition(err), errdefs.IsAborted(err):
		return http.StatusConflict
	case errdefs.IsResourceExhausted(err):
		return http.StatusTooManyRequests
	case errdefs.IsNotImplemented(err):
		return http.StatusNotImplemented
	case errdefs.IsUnavailable(err), errdefs.IsCanceled(err):
		return http.StatusServiceUnavailable
	case errdefs.IsDeadlineExceeded(err):
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}

// decodeJSON decodes exactly one JSON value from r into v, rejecting
// unknown fields and trailing data. Errors wrap errdefs.ErrInvalidArgument,
// or *http.MaxBytesError when r is capped and the body is larger.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("more than one JSON value")
		}
		return bodyError(err)
	}
	return nil
}

func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return fmt.Errorf("request body is larger than %d bytes: %w", tooBig.Limit, err)
	}
	return fmt.Errorf("%w: request body: %w", errdefs.ErrInvalidArgument, err)
}

// decodeStatus decodes a node's status report strictly. apiVersion and
// kind may be omitted but must be right when given; the node name is
// checked against the caller's identity by the handler.
func decodeStatus(r io.Reader) (api.NodeStatus, error) {
	var s api.NodeStatus
	if err := decodeJSON(r, &s); err != nil {
		return api.NodeStatus{}, fmt.Errorf("node status: %w", err)
	}
	if (s.APIVersion != "" && s.APIVersion != api.Version) || (s.Kind != "" && s.Kind != api.KindNodeStatus) {
		return api.NodeStatus{}, fmt.Errorf("node status: %w: got apiVersion %q kind %q, want %s %s",
			errdefs.ErrInvalidArgument, s.APIVersion, s.Kind, api.Version, api.KindNodeStatus)
	}
	if s.Node == "" {
		return api.NodeStatus{}, fmt.Errorf("node status: %w: node is empty", errdefs.ErrInvalidArgument)
	}
	return s, nil
}
