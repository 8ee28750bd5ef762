package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// RequestIDHeader carries the request id in both directions.
const RequestIDHeader = "X-Request-ID"

const requestIDKey = "vigil.request_id"

// requestIDMiddleware takes the caller's X-Request-ID when it is sane (1 to
// 128 visible ASCII characters) or makes one, and echoes it in the response.
func requestIDMiddleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
		}
		c.Set(requestIDKey, id)
		c.Header(RequestIDHeader, id)
		c.Next()
	}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestID returns the id requestIDMiddleware gave this request.
func requestID(c *gin.Context) string {
	return c.GetString(requestIDKey)
}

// routeLabel is the matched route template, or a fixed label for requests
// that matched none, so raw paths never become metric labels.
func routeLabel(c *gin.Context) string {
	if r := c.FullPath(); r != "" {
		return r
	}
	return "unmatched"
}

// logPath is the request's path as the access log shows it: the matched
// route's template with {name} for each parameter (/v1/patients/{id}/token),
// never the raw path, whose segments may be patient ids, codes or other
// identifiers. A request that matched no route keeps only /v1 and a
// resource-like next segment (lower-case words); every other segment
// becomes {redacted}.
func logPath(c *gin.Context) string {
	if r := c.FullPath(); r != "" {
		segs := strings.Split(r, "/")
		for i, seg := range segs {
			if seg != "" && (seg[0] == ':' || seg[0] == '*') {
				segs[i] = "{" + seg[1:] + "}"
			}
		}
		return strings.Join(segs, "/")
	}
	segs := strings.Split(strings.TrimPrefix(c.Request.URL.Path, "/"), "/")
	if len(segs) > 32 {
		segs = segs[:32]
	}
	for i, seg := range segs {
		switch {
		case seg == "":
		case i == 0 && seg == "v1":
		case i == 1 && segs[0] == "v1" && resourceSegment.MatchString(seg):
		default:
			segs[i] = "{redacted}"
		}
	}
	return "/" + strings.Join(segs, "/")
}

// resourceSegment is the shape of a resource name (patients, auth,
// system-token), kept in the log path of an unmatched request.
var resourceSegment = regexp.MustCompile(`^[a-z]{1,32}(-[a-z]{1,32}){0,3}$`)

// accessLogMiddleware writes one structured line per request and observes its
// duration. The path is logged as its route template (see logPath), and
// query strings are left out: they may carry tokens.
func (s *Server) accessLogMiddleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		elapsed := time.Since(start)
		status := c.Writer.Status()
		route := routeLabel(c)
		s.Metrics.HTTPDuration.WithLabelValues(c.Request.Method, route, strconv.Itoa(status)).Observe(elapsed.Seconds())

		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelError
		case status >= 400:
			level = slog.LevelWarn
		}
		s.Logger.LogAttrs(c.Request.Context(), level, "http request",
			slog.String("request_id", requestID(c)),
			slog.String("method", c.Request.Method),
			slog.String("route", route),
			slog.String("path", logPath(c)),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.Int("bytes", max(c.Writer.Size(), 0)),
			slog.String("client_ip", c.ClientIP()),
		)
	}
}

// recoveryMiddleware turns a panic into a logged stack trace and a JSON 500.
func (s *Server) recoveryMiddleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if err, ok := rec.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(rec)
			}
			s.Logger.ErrorContext(c.Request.Context(), "panic in handler",
				"request_id", requestID(c), "panic", rec, "stack", string(debug.Stack()))
			if c.Writer.Written() {
				c.Abort()
				return
			}
			abortWithError(c, http.StatusInternalServerError, CodeInternal, "internal error; quote the request id when reporting it", "")
		}()
		c.Next()
	}
}
