package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/cleantext"
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

// decodeChecked reads the request body like decodeJSON, then checks it
// with check (usually a method expression such as (*deviceRequest).check),
// answering 400 naming the field when it refuses. It returns the body and
// whether it was decoded and accepted.
func decodeChecked[T any](c *gin.Context, allowEmpty bool, check func(*T) *fieldError) (T, bool) {
	var req T
	if !decodeJSON(c, &req, allowEmpty) {
		return req, false
	}
	if fe := check(&req); fe != nil {
		abortInvalid(c, fe)
		return req, false
	}
	return req, true
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
	if re := checkJSONText(body); re != nil {
		re.abort(c)
		return nil, false
	}
	return body, true
}

// decodeStrict decodes exactly one JSON value from r into dst, refusing
// unknown fields and strings that are not valid text (checkJSONText); an
// empty body decodes as {} when allowEmpty is set. A refusal names the
// field where one is known.
func decodeStrict(r io.Reader, dst any, allowEmpty bool) *requestError {
	raw, err := io.ReadAll(r)
	if err != nil {
		return describeDecodeError(err)
	}
	if re := checkJSONText(raw); re != nil {
		return re
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err = dec.Decode(dst)
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

// jsonTextMessage explains a refused JSON string.
const jsonTextMessage = "must be valid UTF-8 text without NUL characters"

// checkJSONText refuses, naming its field path, a JSON body with a string
// (key or value, at any depth) that holds U+0000, invalid UTF-8 or a lone
// surrogate escape. Postgres cannot store NUL in text, and encoding/json
// would silently turn the others into U+FFFD, so every text that reaches
// the database is checked here, at the edge, before any handler sees it.
func checkJSONText(raw []byte) *requestError {
	path, bad := jsonTextFault(raw)
	switch {
	case !bad:
		return nil
	case path == "":
		return malformed("the body's string must be valid UTF-8 text without NUL characters")
	default:
		return &requestError{Status: http.StatusBadRequest, Code: CodeInvalidField, Message: jsonTextMessage, Field: path}
	}
}

// jsonTextFault finds the first string in the JSON document raw, object key
// or value at any depth, that Postgres cannot store or that encoding/json
// would silently alter: one holding U+0000 (raw or escaped), invalid UTF-8
// (which encoding/json replaces with U+FFFD) or an escaped lone UTF-16
// surrogate (likewise replaced). It returns the field path of the string,
// such as login or alerts[2].labels.room (a key is named by its object's
// path and the key quoted), and true; false when every string is valid text
// or raw is not well-formed JSON (the decoder reports that).
func jsonTextFault(raw []byte) (string, bool) {
	sc := jsonTextScanner{raw: raw}
	sc.space()
	path, found := sc.value("", 0)
	return path, found && sc.err == nil
}

// jsonMaxDepth bounds the scanner's nesting, as encoding/json's own limit.
const jsonMaxDepth = 10000

// jsonTextScanner is a minimal JSON reader that checks strings only; any
// syntax problem stops it with err set.
type jsonTextScanner struct {
	raw []byte
	pos int
	err error
}

var errJSONSyntax = errors.New("malformed JSON")

func (sc *jsonTextScanner) space() {
	for sc.pos < len(sc.raw) {
		switch sc.raw[sc.pos] {
		case ' ', '\t', '\n', '\r':
			sc.pos++
		default:
			return
		}
	}
}

// more reads what follows a member of an object or array: true after a
// comma (another member follows), false after close (the container ended)
// or on a syntax error (sc.err set).
func (sc *jsonTextScanner) more(close byte) bool {
	sc.space()
	switch {
	case sc.pos < len(sc.raw) && sc.raw[sc.pos] == ',':
		sc.pos++
		sc.space()
		return true
	case sc.pos < len(sc.raw) && sc.raw[sc.pos] == close:
		sc.pos++
	default:
		sc.err = errJSONSyntax
	}
	return false
}

// openEmpty steps over the opening bracket at sc.pos and the white space
// after it, and over close when it follows at once: true for an empty
// object or array.
func (sc *jsonTextScanner) openEmpty(close byte) bool {
	sc.pos++
	sc.space()
	if sc.pos < len(sc.raw) && sc.raw[sc.pos] == close {
		sc.pos++
		return true
	}
	return false
}

// value scans one value at path; it returns the path of a faulty string.
func (sc *jsonTextScanner) value(path string, depth int) (string, bool) {
	if sc.pos >= len(sc.raw) || depth > jsonMaxDepth {
		sc.err = errJSONSyntax
		return "", false
	}
	switch sc.raw[sc.pos] {
	case '{':
		if sc.openEmpty('}') {
			return "", false
		}
		for sc.err == nil {
			key, ok := sc.str()
			if sc.err != nil {
				return "", false
			}
			if !ok {
				return joinJSONPath(path, strconv.QuoteToASCII(key)), true
			}
			sc.space()
			if sc.pos >= len(sc.raw) || sc.raw[sc.pos] != ':' {
				sc.err = errJSONSyntax
				return "", false
			}
			sc.pos++
			sc.space()
			if p, bad := sc.value(joinJSONPath(path, key), depth+1); bad || sc.err != nil {
				return p, bad
			}
			if !sc.more('}') {
				return "", false
			}
		}
		return "", false
	case '[':
		if sc.openEmpty(']') {
			return "", false
		}
		for i := 0; sc.err == nil; i++ {
			if p, bad := sc.value(path+"["+strconv.Itoa(i)+"]", depth+1); bad || sc.err != nil {
				return p, bad
			}
			if !sc.more(']') {
				return "", false
			}
		}
		return "", false
	case '"':
		if _, ok := sc.str(); !ok && sc.err == nil {
			return path, true
		}
		return "", false
	default:
		// A number, true, false or null: skip to the next delimiter; the
		// decoder checks its syntax.
		for sc.pos < len(sc.raw) {
			switch sc.raw[sc.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return "", false
			case '"', '{', '[', ':':
				sc.err = errJSONSyntax
				return "", false
			}
			sc.pos++
		}
		return "", false
	}
}

// str scans a string at sc.pos and returns its text as far as it is
// readable and whether it is valid text: valid UTF-8, no U+0000, no lone
// surrogate escape.
func (sc *jsonTextScanner) str() (string, bool) {
	if sc.pos >= len(sc.raw) || sc.raw[sc.pos] != '"' {
		sc.err = errJSONSyntax
		return "", false
	}
	sc.pos++
	var b strings.Builder
	valid := true
	for sc.pos < len(sc.raw) {
		c := sc.raw[sc.pos]
		switch {
		case c == '"':
			sc.pos++
			return b.String(), valid
		case c == '\\':
			if sc.pos+1 >= len(sc.raw) {
				sc.err = errJSONSyntax
				return "", false
			}
			e := sc.raw[sc.pos+1]
			if e != 'u' {
				if r, ok := jsonEscapes[e]; ok {
					b.WriteByte(r)
					sc.pos += 2
					continue
				}
				sc.err = errJSONSyntax
				return "", false
			}
			r, ok := sc.hex4(sc.pos + 2)
			if !ok {
				sc.err = errJSONSyntax
				return "", false
			}
			sc.pos += 6
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(-1), false
				if sc.pos+1 < len(sc.raw) && sc.raw[sc.pos] == '\\' && sc.raw[sc.pos+1] == 'u' {
					r2, ok2 = sc.hex4(sc.pos + 2)
				}
				if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
					sc.pos += 6
					r = dec
				} else {
					valid, r = false, utf8.RuneError
				}
			}
			if r == 0 {
				valid = false
			}
			b.WriteRune(r)
		case c < 0x20:
			// A raw control character is a syntax error for the decoder.
			sc.err = errJSONSyntax
			return "", false
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			sc.pos++
		default:
			r, size := utf8.DecodeRune(sc.raw[sc.pos:])
			if r == utf8.RuneError && size == 1 {
				valid = false
			}
			b.WriteRune(r)
			sc.pos += size
		}
	}
	sc.err = errJSONSyntax
	return "", false
}

// hex4 reads the four hex digits of a \u escape at i.
func (sc *jsonTextScanner) hex4(i int) (rune, bool) {
	if i+4 > len(sc.raw) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(sc.raw[i:i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}

// jsonEscapes are JSON's one-character escapes.
var jsonEscapes = map[byte]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// joinJSONPath names a member of the object at path.
func joinJSONPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
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
	if multiline {
		return cleantext.Valid(s, "\t\n\r")
	}
	return cleantext.Valid(s, "\t")
}
