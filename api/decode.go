package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// maxBodyBytes bounds every JSON request body.
const maxBodyBytes = 1 << 20

// decodeJSON reads the request body into dst strictly: one JSON value, no
// unknown fields, bounded size. An empty body decodes as {} when
// allowEmpty is set. On failure it answers the request with a 4xx that names
// the field and returns false.
func decodeJSON(c *gin.Context, dst any, allowEmpty bool) bool {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			abortWithError(c, http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "send the body as application/json", "")
			return false
		}
	}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if errors.Is(err, io.EOF) {
		if allowEmpty {
			return true
		}
		abortWithError(c, http.StatusBadRequest, CodeInvalidJSON, "a JSON body is required", "")
		return false
	}
	if err == nil {
		// Exactly one value: trailing data means a malformed request.
		if _, extra := dec.Token(); extra != io.EOF {
			abortWithError(c, http.StatusBadRequest, CodeInvalidJSON, "the body must hold exactly one JSON object", "")
			return false
		}
		return true
	}
	status, code, msg, field := describeDecodeError(err)
	abortWithError(c, status, code, msg, field)
	return false
}

// describeDecodeError turns encoding/json's errors into an answer that names
// the field where one is known.
func describeDecodeError(err error) (status int, code, message, field string) {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, CodeBodyTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxBodyBytes), ""
	case errors.As(err, &syntax):
		return http.StatusBadRequest, CodeInvalidJSON, fmt.Sprintf("malformed JSON at byte %d", syntax.Offset), ""
	case errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest, CodeInvalidJSON, "the JSON body ends early", ""
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return http.StatusBadRequest, CodeInvalidJSON, "the body must be a JSON object", ""
		}
		return http.StatusBadRequest, CodeInvalidField, fmt.Sprintf("must be a JSON %s", jsonKind(typeErr.Type.Kind().String())), typeErr.Field
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return http.StatusBadRequest, CodeUnknownField, "unknown field", name
	default:
		// Errors from a field type's own UnmarshalJSON (time.Time and the
		// like) carry no field name in encoding/json; say what failed.
		return http.StatusBadRequest, CodeInvalidJSON, "the body could not be decoded: " + err.Error(), ""
	}
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
