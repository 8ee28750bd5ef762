package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/reference"
	"github.com/vigil-health/vigil/internal/session"
)

const principalKey = "vigil.principal"

// principal is the authenticated caller of a request, from its token; it is
// the only source of "who" for every handler (no endpoint trusts an id sent
// in a body).
func principal(c *gin.Context) *auth.Claims {
	v, _ := c.Get(principalKey)
	p, _ := v.(*auth.Claims)
	return p
}

// requireStaff authenticates a staff access token and, when levels are given,
// requires one of those access levels (admin always passes).
func (s *Server) requireStaff(levels ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		claims, ok := s.verifyAccess(c)
		if !ok {
			return
		}
		if claims.SubjectType != auth.SubjectStaff {
			abortWithError(c, http.StatusForbidden, CodeForbidden, "a staff token is required", "")
			return
		}
		if !hasAccess(claims, levels...) {
			abortWithError(c, http.StatusForbidden, CodeForbidden, "requires "+strings.Join(levels, " or ")+" access", "")
			return
		}
		c.Set(principalKey, claims)
		c.Next()
	}
}

// hasAccess reports whether claims carry one of the access levels (any
// level when none is named); admins have every level.
func hasAccess(claims *auth.Claims, levels ...string) bool {
	return claims != nil && (len(levels) == 0 || claims.Access == auth.AccessAdmin || slices.Contains(levels, claims.Access))
}

// ScopeAll is the scope of system tokens: it grants every other scope.
const ScopeAll = "*"

// requireSubject authenticates an access token whose subject type is one of
// types (patient, clinician, device, system; staff tokens are refused unless
// listed) and that carries every scope in scopes. A token with ScopeAll has
// every scope. The claims become the request's principal.
func (s *Server) requireSubject(types []string, scopes ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		claims, ok := s.verifyAccess(c)
		if !ok {
			return
		}
		if !slices.Contains(types, claims.SubjectType) {
			abortWithError(c, http.StatusForbidden, CodeForbidden, "requires a "+strings.Join(types, " or ")+" token", "")
			return
		}
		if !slices.Contains(claims.Scopes, ScopeAll) {
			for _, scope := range scopes {
				if !slices.Contains(claims.Scopes, scope) {
					abortWithError(c, http.StatusForbidden, CodeForbidden, "the token lacks scope "+scope, "")
					return
				}
			}
		}
		// A device or clinician token also needs its device (and clinician)
		// as they are now.
		if !s.subjectLive(c, claims) {
			return
		}
		c.Set(principalKey, claims)
		c.Next()
	}
}

// verifyAccess checks the request's bearer access token, its session and
// the holder's current rights (see authenticate); on failure it aborts with
// 401 (503 without a signer or database) and returns false. Routes that
// accept device or clinician tokens also check their device and clinician
// rows (subjectLive) once the token's kind and scopes are known.
func (s *Server) verifyAccess(c *gin.Context) (*auth.Claims, bool) {
	token, ok := auth.ParseBearer(c.GetHeader("Authorization"))
	if !ok {
		s.abortUnauthorized(c, "a bearer token is required")
		return nil, false
	}
	if s.Signer == nil {
		abortWithError(c, http.StatusServiceUnavailable, CodeUnavailable, "authentication is not configured", "")
		return nil, false
	}
	claims, err := s.authenticate(c.Request.Context(), token)
	if err != nil {
		s.abortAuthentication(c, err)
		return nil, false
	}
	return claims, true
}

func (s *Server) abortUnauthorized(c *gin.Context, msg string) {
	c.Header("WWW-Authenticate", `Bearer realm="vigil"`)
	abortWithError(c, http.StatusUnauthorized, CodeUnauthorized, msg, "")
}

type loginRequest struct {
	Login    string `json:"login"`
	Password string `json:"password"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// TokenResponse answers a login or refresh.
type TokenResponse struct {
	AccessToken      string    `json:"access_token"`
	TokenType        string    `json:"token_type"`
	ExpiresIn        int       `json:"expires_in"`
	RefreshToken     string    `json:"refresh_token"`
	RefreshExpiresIn int       `json:"refresh_expires_in"`
	Staff            StaffInfo `json:"staff"`
}

// StaffInfo is the public view of a staff member.
type StaffInfo = reference.Account

// maxLoginLength bounds the login name a sign-in accepts.
const maxLoginLength = 200

// checkLoginText validates a sign-in's login and password as text before
// anything reaches the database; field names the form or JSON field.
func checkLoginText(login, password string) *fieldError {
	switch {
	case login == "":
		return invalid("login", "is required")
	case len(login) > maxLoginLength || !validText(login, false):
		return invalid("login", "must be at most 200 characters of text without control characters")
	case password == "":
		return invalid("password", "is required")
	case len(password) > auth.MaxPasswordLength || !utf8.ValidString(password) || strings.ContainsRune(password, 0):
		return invalid("password", "must be at most 72 bytes of UTF-8 text without NUL")
	}
	return nil
}

// login checks a login and password and opens a session: an access and a
// refresh token. Unknown logins and wrong passwords get the same answer, in
// the same time. Guessing is limited per account and per client (429 with
// Retry-After).
func (s *Server) login(c *gin.Context) {
	var req loginRequest
	if !decodeJSON(c, &req, false) {
		return
	}
	login := strings.TrimSpace(req.Login)
	if fe := checkLoginText(login, req.Password); fe != nil {
		abortInvalid(c, fe)
		return
	}
	if ok, wait := s.admitLogin(c, login); !ok {
		s.abortThrottled(c, wait)
		return
	}
	info, ok, err := s.checkStaffPassword(c.Request.Context(), login, req.Password)
	if err != nil {
		s.abortStore(c, "look up staff login", err)
		return
	}
	s.loginResult(c, login, ok)
	if !ok {
		s.Logger.WarnContext(c.Request.Context(), "login refused", "request_id", requestID(c))
		s.auditEvent(c, auditLoginRefused, auth.SubjectStaff, "", "unknown login or wrong password")
		abortWithError(c, http.StatusUnauthorized, CodeUnauthorized, "unknown login or wrong password", "")
		return
	}
	if !info.Active {
		s.auditEvent(c, auditLoginRefused, auth.SubjectStaff, info.ID, "account deactivated")
		abortWithError(c, http.StatusForbidden, CodeForbidden, "the account is deactivated; ask an admin", "")
		return
	}
	access, refresh, err := s.openStaffSession(c, info, session.OriginAPI)
	if err != nil {
		s.abortStore(c, "open session", err)
		return
	}
	s.auditEvent(c, auditLogin, auth.SubjectStaff, info.ID, "signed in through the API")
	s.writeTokens(c, info, access, refresh)
}

// refresh exchanges a refresh token for new tokens of the same session. A
// refresh token works once; presenting a used one again ends the session.
func (s *Server) refresh(c *gin.Context) {
	var req refreshRequest
	if !decodeJSON(c, &req, false) {
		return
	}
	if req.RefreshToken == "" {
		abortInvalid(c, invalid("refresh_token", "is required"))
		return
	}
	info, access, next, reason, err := s.rotateStaffSession(c, req.RefreshToken)
	if err != nil {
		s.abortStore(c, "refresh session", err)
		return
	}
	if reason != "" {
		s.abortUnauthorized(c, reason)
		return
	}
	s.writeTokens(c, info, access, next)
}

func (s *Server) writeTokens(c *gin.Context, info StaffInfo, access, refresh string) {
	noStore(c)
	c.JSON(http.StatusOK, TokenResponse{
		AccessToken: access, TokenType: "Bearer", ExpiresIn: int(s.AccessTTL / time.Second),
		RefreshToken: refresh, RefreshExpiresIn: int(s.RefreshTTL / time.Second), Staff: info,
	})
}

// me returns the caller's staff record.
func (s *Server) me(c *gin.Context) {
	if info, ok := s.currentStaff(c, principal(c).Subject); ok {
		c.JSON(http.StatusOK, info)
	}
}

// currentStaff reads a token subject's staff record; a removed account
// answers 401.
func (s *Server) currentStaff(c *gin.Context, id string) (StaffInfo, bool) {
	info, err := s.staffByID(c.Request.Context(), id)
	if errors.Is(err, reference.ErrNotFound) {
		s.abortUnauthorized(c, "the account no longer exists")
		return info, false
	}
	if err != nil {
		s.abortStore(c, "look up staff", err)
		return info, false
	}
	return info, true
}

// staffByID reads a staff record; reference.ErrNotFound when it no longer
// exists.
func (s *Server) staffByID(ctx context.Context, id string) (StaffInfo, error) {
	return s.referenceStore().Account(ctx, id)
}

// checkStaffPassword returns the staff member with login when password is
// theirs; timing does not reveal which logins exist (see
// reference.Store.CheckPassword).
func (s *Server) checkStaffPassword(ctx context.Context, login, password string) (StaffInfo, bool, error) {
	return s.referenceStore().CheckPassword(ctx, login, password)
}
