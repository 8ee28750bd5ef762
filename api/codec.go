package api

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/payloadcodec"
)

// The codec server. Vigil encrypts every payload it sends to Temporal
// (internal/payloadcodec), so the Temporal Web UI shows ciphertext. The UI
// decodes in the operator's browser by posting the payloads to a codec
// server, Temporal's remote codec protocol:
//
//	POST /codec/decode   {"payloads": [{"metadata": {...}, "data": "..."}]}
//	POST /codec/encode   (the same shape, for input the operator sends)
//
// answered with the same shape. Payloads are patient data, so only an admin
// with a live session gets them: a bearer access token, or the console
// session cookie that /ui/login also sets on /codec (the UI fetches with
// credentials included, so a signed-in operator's browser sends it). The
// Web UI's origin (VIGIL_TEMPORAL_UI_URL) may call it cross-origin with
// credentials; other origins are refused. Each call is logged with who made
// it and how many payloads it carried, never what they hold.

// Codec server paths.
const (
	codecPath       = "/codec"
	codecCookiePath = codecPath
)

// maxCodecBody bounds a codec request: Temporal refuses payloads over 2 MB,
// and the UI sends a few at a time.
const maxCodecBody = 8 << 20

// codecAllowedHeaders are the request headers the Web UI sends.
const codecAllowedHeaders = "Content-Type, X-Namespace, Authorization"

func (s *Server) codecRoutes(r *gin.Engine) {
	g := r.Group(codecPath, s.codecCORS)
	g.OPTIONS("/decode", s.codecPreflight)
	g.OPTIONS("/encode", s.codecPreflight)
	g.POST("/decode", s.requireCodecOperator, s.codec(true))
	g.POST("/encode", s.requireCodecOperator, s.codec(false))
}

// codecCORS lets the Web UI's origin call the codec server with
// credentials. A request from any other origin is refused (403); one
// without an Origin header (curl, tools) passes.
func (s *Server) codecCORS(c *gin.Context) {
	c.Header("Vary", "Origin")
	origin := c.GetHeader("Origin")
	if origin == "" {
		c.Next()
		return
	}
	if !s.codecOrigins[strings.ToLower(origin)] {
		abortWithError(c, http.StatusForbidden, CodeForbidden, "origin "+origin+" may not use the codec server; set VIGIL_TEMPORAL_UI_URL to the Temporal Web UI's URL", "Origin")
		return
	}
	h := c.Writer.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	c.Next()
}

// codecPreflight answers the browser's CORS preflight.
func (s *Server) codecPreflight(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", codecAllowedHeaders)
	h.Set("Access-Control-Max-Age", "600")
	c.Status(http.StatusNoContent)
}

// requireCodecOperator authenticates a codec request: a staff access token
// in the Authorization header, else the console session cookie, each with
// its session live and its holder's current rights. Anything else is 401;
// a non-admin is 403, as is another namespace than Vigil's (X-Namespace).
func (s *Server) requireCodecOperator(c *gin.Context) {
	var claims *auth.Claims
	if c.GetHeader("Authorization") != "" {
		var ok bool
		if claims, ok = s.verifyAccess(c); !ok {
			return
		}
	} else if cookie, err := c.Cookie(pageRefreshCookie); err == nil {
		sid, subjectType, subjectID, rights, err := s.rightsChecker().CheckCookie(c.Request.Context(), cookie)
		if err != nil {
			s.abortStore(c, "check console session", err)
			return
		}
		if !rights.Live || subjectType != auth.SubjectStaff {
			s.abortUnauthorized(c, "the console session has ended; sign in again at /ui/login")
			return
		}
		claims = &auth.Claims{Subject: subjectID, SubjectType: auth.SubjectStaff, Access: rights.Access,
			Role: rights.Role, SessionID: sid, TokenType: auth.TokenAccess}
	} else {
		s.abortUnauthorized(c, "sign in: a bearer token or the console session cookie (/ui/login) is required")
		return
	}
	if claims.SubjectType != auth.SubjectStaff || claims.Access != auth.AccessAdmin {
		abortWithError(c, http.StatusForbidden, CodeForbidden, "only an admin may encode or decode Temporal payloads", "")
		return
	}
	if ns := c.GetHeader("X-Namespace"); ns != "" && ns != s.Namespace {
		abortWithError(c, http.StatusForbidden, CodeForbidden, "this codec server serves namespace "+s.Namespace+" only", "X-Namespace")
		return
	}
	c.Set(principalKey, claims)
	c.Next()
}

// codec decodes (or encodes) the posted payloads.
func (s *Server) codec(decode bool) gin.HandlerFunc {
	action, logMsg := "encode", "temporal payloads encoded"
	if decode {
		action, logMsg = "decode", "temporal payloads decoded"
	}
	return func(c *gin.Context) {
		if s.PayloadCodec == nil {
			abortWithError(c, http.StatusServiceUnavailable, CodeUnavailable, "the payload codec is not configured", "")
			return
		}
		body, ok := readJSONBody(c, maxCodecBody)
		if !ok {
			return
		}
		var in commonpb.Payloads
		if err := protojson.Unmarshal(body, &in); err != nil {
			abortWithError(c, http.StatusBadRequest, CodeInvalidJSON, `the body must be {"payloads": [{"metadata": {…}, "data": "…"}]}`, "")
			return
		}
		encrypted := 0
		for _, p := range in.GetPayloads() {
			if string(p.GetMetadata()[converter.MetadataEncoding]) == payloadcodec.EncodingEncrypted {
				encrypted++
			}
		}
		var out []*commonpb.Payload
		var err error
		if decode {
			out, err = s.PayloadCodec.Decode(in.GetPayloads())
		} else {
			out, err = s.PayloadCodec.Encode(in.GetPayloads())
		}
		p := principal(c)
		if err != nil {
			if errors.Is(err, payloadcodec.ErrUnknownKey) || errors.Is(err, payloadcodec.ErrTampered) {
				s.Logger.WarnContext(c.Request.Context(), "temporal payloads not decoded", "staff_id", p.Subject,
					"payloads", len(in.GetPayloads()), "err", err, "request_id", requestID(c))
				abortWithError(c, http.StatusUnprocessableEntity, CodeInvalidField, err.Error(), "payloads")
				return
			}
			s.abortInternal(c, action+" payloads", err)
			return
		}
		resp, err := protojson.Marshal(&commonpb.Payloads{Payloads: out})
		if err != nil {
			s.abortInternal(c, "marshal payloads", err)
			return
		}
		s.Logger.InfoContext(c.Request.Context(), logMsg, "staff_id", p.Subject, "session_id", p.SessionID,
			"payloads", len(in.GetPayloads()), "encrypted", encrypted, "request_id", requestID(c))
		noStore(c)
		c.Data(http.StatusOK, "application/json", resp)
	}
}

// uiOrigins are the browser origins of the Temporal Web UI at uiURL. A UI
// on a loopback host is reachable as localhost, 127.0.0.1 and [::1] alike
// (`vigil dev` prints 127.0.0.1; people type localhost), so all three are
// allowed on its port.
func uiOrigins(uiURL string) map[string]bool {
	out := map[string]bool{}
	u, err := url.Parse(uiURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return out
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	hosts := []string{host}
	if host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.") {
		hosts = []string{host, "localhost", "127.0.0.1", "::1"}
	}
	for _, h := range hosts {
		if strings.Contains(h, ":") {
			h = "[" + h + "]"
		}
		if port != "" {
			h += ":" + port
		}
		out[scheme+"://"+h] = true
	}
	return out
}
