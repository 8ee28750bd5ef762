package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/database"
)

// ErrorBody is the JSON shape of every error the API returns:
// {"error": {"code", "message", "field"?, "request_id"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail describes one error. Code is stable and machine-readable;
// Message is for people; Field names the offending request field, when there
// is one.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Error codes shared by the handlers.
const (
	CodeInvalidJSON      = "invalid_json"
	CodeInvalidField     = "invalid_field"
	CodeUnknownField     = "unknown_field"
	CodeBodyTooLarge     = "body_too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeNotFound         = "not_found"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict"
	CodeNotReady         = "not_ready"
	CodeUnavailable      = "unavailable"
	CodeTimeout          = "timeout"
	CodeInternal         = "internal"
)

// fieldError is a validation failure of one request field.
type fieldError struct {
	Field   string
	Message string
}

func (e *fieldError) Error() string { return e.Field + ": " + e.Message }

// invalid returns a validation failure of field.
func invalid(field, message string) *fieldError {
	return &fieldError{Field: field, Message: message}
}

// abortWithError writes the error body and stops the handler chain.
func abortWithError(c *gin.Context, status int, code, message, field string) {
	c.AbortWithStatusJSON(status, ErrorBody{Error: ErrorDetail{
		Code:      code,
		Message:   message,
		Field:     field,
		RequestID: requestID(c),
	}})
}

// abortInvalid answers 400 naming the field.
func abortInvalid(c *gin.Context, fe *fieldError) {
	abortWithError(c, http.StatusBadRequest, CodeInvalidField, fe.Message, fe.Field)
}

// abortInternal logs err with the request's context and answers a 500 that
// says nothing of the internals, or, when err means a dependency could not be
// reached (Postgres down, refusing connections, or a connection lost), 503
// with Retry-After: the request may be retried as it is.
func (s *Server) abortInternal(c *gin.Context, what string, err error) {
	if database.IsUnavailable(err) {
		s.Logger.WarnContext(c.Request.Context(), what, "err", err, "request_id", requestID(c))
		c.Header("Retry-After", retryAfterUnavailable)
		abortWithError(c, http.StatusServiceUnavailable, CodeUnavailable, "a dependency is unavailable; retry shortly", "")
		return
	}
	s.Logger.ErrorContext(c.Request.Context(), what, "err", err, "request_id", requestID(c))
	abortWithError(c, http.StatusInternalServerError, CodeInternal, "internal error; quote the request id when reporting it", "")
}

// retryAfterUnavailable is the Retry-After (seconds) of a 503 for an
// unreachable dependency.
const retryAfterUnavailable = "5"

// workflowGone reports whether err is Temporal's answer for a workflow
// that does not exist, or whose run has already ended: a signal, query or
// update found nobody to take it.
func workflowGone(err error) bool {
	var notFound *serviceerror.NotFound
	return errors.As(err, &notFound)
}

// workflowAlreadyStarted reports whether err is Temporal's refusal to start
// a workflow whose id is still running (or may not be reused).
func workflowAlreadyStarted(err error) bool {
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	return errors.As(err, &started)
}

// rejectedAs reports whether err is a workflow's refusal of the given type
// (one of workflows.Reject*), such as an update validator's.
func rejectedAs(err error, rejection string) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == rejection
}

// abortTemporal maps a Temporal client error to an HTTP answer.
func (s *Server) abortTemporal(c *gin.Context, what string, err error) {
	var unavailable *serviceerror.Unavailable
	switch {
	case workflowGone(err):
		abortWithError(c, http.StatusNotFound, CodeNotFound, "not found", "")
	case workflowAlreadyStarted(err):
		abortWithError(c, http.StatusConflict, CodeConflict, "already exists", "")
	case errors.As(err, &unavailable):
		c.Header("Retry-After", retryAfterUnavailable)
		abortWithError(c, http.StatusServiceUnavailable, CodeUnavailable, "the workflow service is unavailable; retry shortly", "")
	case errors.Is(err, context.DeadlineExceeded):
		abortWithError(c, http.StatusGatewayTimeout, CodeTimeout, "the workflow service did not answer in time", "")
	default:
		s.abortInternal(c, what, err)
	}
}
