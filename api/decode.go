package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// maxBodyBytes bounds every JSON request body.
const maxBodyBytes = 1 << 20

// requestError is a refusal of a request: status, error code, message and
// the field it names.
type requestError struct {
	Status        int
	Code, Message string
	Field         string
}

func (e *requestError) Error() string { return e.Field + ": " + e.Message }

func (e *requestError) abort(c *gin.Context) { abortWithError(c, e.Status, e.Code, e.Message, e.Field) }

// malformed is a 400 invalid_json refusal of the body as a whole.
func malformed(message string) *requestError {
	return &requestError{Status: http.StatusBadRequest, Code: CodeInvalidJSON, Message: message}
}

// decodeJSON reads the request body into dst strictly: one JSON value, no
// unknown fields, bounded size. An empty body decodes as {} when
// allowEmpty is set. On failure it answers the request with a 4xx that names
// the field and returns false.
func decodeJSON(c *gin.Context, dst any, allowEmpty bool) bool {
	if !jsonContentType(c) {
		return false
	}
	if re := decodeStrict(http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes), dst, allowEmpty); re != nil {
		re.abort(c)
		return false
	}
	return true
}

// jsonContentType answers 415 and returns false unless the request's
// Content-Type is absent or JSON.
func jsonContentType(c *gin.Context) bool {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			abortWithError(c, http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "send the body as application/json", "")
			return false
		}
	}
	return true
}

// readJSONBody reads a JSON request body of at most limit bytes, for
// handlers that parse it themselves; on failure (not JSON, too large) it
// answers the request and returns false.
func readJSONBody(c *gin.Context, limit int64) ([]byte, bool) {
	if !jsonContentType(c) {
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		abortWithError(c, http.StatusRequestEntityTooLarge, CodeBodyTooLarge, fmt.Sprintf("the body is larger than %d bytes", limit), "")
		return nil, false
	case err != nil:
		abortWithError(c, http.StatusBadRequest, CodeInvalidJSON, "the body could not be read", "")
		return nil, false
	}
	return body, true
}

// decodeStrict decodes exactly one JSON value from r into dst, refusing
// unknown fields; an empty body decodes as {} when allowEmpty is set. A
// refusal names the field where one is known.
func decodeStrict(r io.Reader, dst any, allowEmpty bool) *requestError {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	switch {
	case errors.Is(err, io.EOF):
		if allowEmpty {
			return nil
		}
		return malformed("a JSON body is required")
	case err != nil:
		return describeDecodeError(err)
	}
	// Exactly one value: trailing data means a malformed request.
	if _, extra := dec.Token(); extra != io.EOF {
		return malformed("the body must hold exactly one JSON value")
	}
	return nil
}

// describeDecodeError turns encoding/json's errors into an answer that names
// the field where one is known.
func describeDecodeError(err error) *requestError {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return &requestError{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge,
			Message: fmt.Sprintf("the body is larger than %d bytes", tooLarge.Limit)}
	case errors.As(err, &syntax):
		return malformed(fmt.Sprintf("malformed JSON at byte %d", syntax.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return malformed("the JSON body ends early")
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return malformed("the body must be a JSON object")
		}
		return &requestError{Status: http.StatusBadRequest, Code: CodeInvalidField,
			Message: fmt.Sprintf("must be a JSON %s", jsonKind(typeErr.Type.Kind().String())), Field: typeErr.Field}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		quoted := strings.TrimPrefix(err.Error(), "json: unknown field ")
		name, uerr := strconv.Unquote(quoted)
		if uerr != nil {
			name = strings.Trim(quoted, `"`)
		}
		return unknownField(name)
	default:
		// Errors from a field type's own UnmarshalJSON (time.Time and the
		// like) carry no field name in encoding/json; say what failed.
		return malformed("the body could not be decoded: " + err.Error())
	}
}

// unknownField refuses a body field the endpoint does not have, naming it.
// No endpoint has a field named "", so a body with one is refused as
// malformed JSON rather than with an unknown field of no name.
func unknownField(name string) *requestError {
	if name == "" {
		return malformed("a field name is empty")
	}
	return &requestError{Status: http.StatusBadRequest, Code: CodeUnknownField, Message: "unknown field", Field: name}
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct":
		return "object"
	default:
		return "number"
	}
}

// validText reports whether s is valid UTF-8 free of NUL and other control
// characters (tab and newlines are allowed where multiline is set). Postgres
// refuses NUL in text, and control characters have no place in clinical
// fields, so they are a 400 at the edge rather than a failure further in.
func validText(s string, multiline bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == '\t' || ((r == '\n' || r == '\r') && multiline):
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return false
		}
	}
	return true
}
