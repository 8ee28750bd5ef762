package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/reference"
	"github.com/vigil-health/vigil/internal/session"
)

// Sessions: every staff sign-in opens a revocable session; its access tokens
// carry the session id (sid) and every request checks, through a cache of a
// few seconds, that the session is live and what its holder may do now.

func (s *Server) sessionStore() *session.Store { return s.Stores.Sessions }

// RightsChecker answers, per request, whether a session is live and what
// its holder may do now; *session.Checker is the implementation.
type RightsChecker interface {
	Check(ctx context.Context, sid, subjectType, subjectID string) (session.Rights, error)
	CheckCookie(ctx context.Context, cookie string) (sid, subjectType, subjectID string, r session.Rights, err error)
	Forget(sid string)
	ForgetSubject(subjectType, subjectID string)
}

// rightsChecker is the per-request session and rights check, shared by the
// server's handlers (its cache makes the check cost one query per session
// every few seconds).
func (s *Server) rightsChecker() RightsChecker {
	s.rightsOnce.Do(func() {
		if s.Rights == nil {
			s.Rights = s.Stores.RightsChecker()
		}
	})
	return s.Rights
}

// errSessionRefused marks a token that verifies but whose session or rights
// no longer hold; its message says why.
type errSessionRefused struct{ reason string }

func (e *errSessionRefused) Error() string { return e.reason }

// authenticate verifies an access token and then checks it is still good:
// a staff token must belong to a live session of an existing, active
// account, and its access level and role become the account's current
// ones; any other token that names a session must name a live one. It
// returns an *errSessionRefused (401) or a database error (503/500).
func (s *Server) authenticate(ctx context.Context, token string) (*auth.Claims, error) {
	claims, err := s.Signer.Verify(token, auth.TokenAccess)
	if err != nil {
		msg := "the token is invalid"
		if errors.Is(err, auth.ErrTokenExpired) {
			msg = "the token has expired; refresh it"
		}
		return nil, &errSessionRefused{reason: msg}
	}
	if claims.SessionID == "" {
		if claims.SubjectType == auth.SubjectStaff {
			return nil, &errSessionRefused{reason: "the token belongs to no session; sign in again"}
		}
		return claims, nil
	}
	rights, err := s.rightsChecker().Check(ctx, claims.SessionID, claims.SubjectType, claims.Subject)
	if err != nil {
		return nil, fmt.Errorf("check session: %w", err)
	}
	if !rights.Live {
		return nil, &errSessionRefused{reason: rights.Reason}
	}
	if claims.SubjectType == auth.SubjectStaff && rights.Access != "" {
		claims.Access, claims.Role = rights.Access, rights.Role
	}
	return claims, nil
}

// abortAuthentication answers an authenticate error: 401 for a refused
// token, else the store error.
func (s *Server) abortAuthentication(c *gin.Context, err error) {
	var refused *errSessionRefused
	if errors.As(err, &refused) {
		s.abortUnauthorized(c, refused.reason)
		return
	}
	s.abortStore(c, "authenticate", err)
}

// abortStore answers a failed store call: 503 with Retry-After when the
// database cannot be reached, else a logged 500 (see abortInternal).
func (s *Server) abortStore(c *gin.Context, what string, err error) {
	s.abortInternal(c, what, err)
}

// openStaffSession starts a session for a signed-in staff member and issues
// its access token and first refresh token.
func (s *Server) openStaffSession(c *gin.Context, info StaffInfo, origin string) (access, refresh string, err error) {
	opened, err := s.sessionStore().Open(c.Request.Context(), session.Open{
		SubjectType: auth.SubjectStaff, SubjectID: info.ID, Origin: origin, Lifetime: s.RefreshTTL,
		WithRefresh: true, ClientIP: c.ClientIP(), UserAgent: c.Request.UserAgent(),
	})
	if err != nil {
		return "", "", err
	}
	access, err = s.staffAccessToken(info, opened.ID)
	if err != nil {
		return "", "", err
	}
	return access, opened.Refresh, nil
}

// staffAccessToken issues a staff access token in session sid.
func (s *Server) staffAccessToken(info StaffInfo, sid string) (string, error) {
	token, _, err := s.Signer.Issue(auth.Claims{
		Subject: info.ID, SubjectType: auth.SubjectStaff, Access: info.Access, Role: info.Role,
		SessionID: sid, TokenType: auth.TokenAccess,
	}, s.AccessTTL)
	if err != nil {
		return "", fmt.Errorf("issue access token: %w", err)
	}
	return token, nil
}

// rotateStaffSession exchanges a refresh token for a new access and refresh
// token of the same session, re-reading the staff member so a changed
// access level, a deactivation or a removal takes effect. A reused refresh
// token revokes its session and is audited. ok false means the caller must
// sign in again; reason says why.
func (s *Server) rotateStaffSession(c *gin.Context, refresh string) (info StaffInfo, access, next, reason string, err error) {
	ctx := c.Request.Context()
	sess, next, err := s.sessionStore().Rotate(ctx, refresh)
	switch {
	case errors.Is(err, session.ErrRefreshReused):
		s.rightsChecker().Forget(sess.ID)
		s.auditEvent(c, auditRefreshReused, sess.SubjectType, sess.SubjectID, "a used refresh token was presented again; session "+sess.ID+" revoked")
		return info, "", "", "the refresh token was already used; the session has been ended for safety — sign in again", nil
	case errors.Is(err, session.ErrInvalidRefresh):
		return info, "", "", "the refresh token is invalid or expired", nil
	case errors.Is(err, session.ErrSessionEnded):
		return info, "", "", "the session has ended; sign in again", nil
	case err != nil:
		return info, "", "", "", err
	}
	if sess.SubjectType != auth.SubjectStaff {
		return info, "", "", "the refresh token is invalid or expired", nil
	}
	info, err = s.staffByID(ctx, sess.SubjectID)
	if err != nil {
		if errors.Is(err, reference.ErrNotFound) {
			return info, "", "", "the account no longer exists", nil
		}
		return info, "", "", "", err
	}
	if !info.Active {
		return info, "", "", "the account is deactivated", nil
	}
	access, err = s.staffAccessToken(info, sess.ID)
	if err != nil {
		return info, "", "", "", err
	}
	return info, access, next, "", nil
}

// revokeStaffSessions ends every session of a staff member after their
// password, rights or account changed (or they asked to sign out
// everywhere), in this process's cache too.
func (s *Server) forgetStaff(id string) {
	s.rightsChecker().ForgetSubject(auth.SubjectStaff, id)
}

func (s *Server) sessionRoutes(v1 *gin.RouterGroup) {
	v1.POST("/auth/logout", s.requireStaff(), s.logout)
	v1.GET("/auth/sessions", s.requireStaff(), s.listSessions)
	v1.DELETE("/auth/sessions/:id", s.requireStaff(), s.revokeSession)
	v1.POST("/staff/:id/password-reset", s.requireStaff(auth.AccessAdmin), s.resetStaffPassword)
}

type logoutRequest struct {
	// Everywhere ends every session of the caller, not only this one.
	Everywhere bool `json:"everywhere"`
}

// logout ends the caller's session (or, with everywhere, all of them). The
// access token stops working at once in this process and within seconds in
// the others; the session's refresh tokens never work again.
func (s *Server) logout(c *gin.Context) {
	var req logoutRequest
	if c.Request.ContentLength != 0 && !decodeJSON(c, &req, false) {
		return
	}
	p := principal(c)
	ctx := c.Request.Context()
	if req.Everywhere {
		n, err := s.sessionStore().RevokeSubject(ctx, auth.SubjectStaff, p.Subject, session.ReasonLogoutAll)
		if err != nil {
			s.abortStore(c, "log out everywhere", err)
			return
		}
		s.forgetStaff(p.Subject)
		s.auditEvent(c, auditLogout, auth.SubjectStaff, p.Subject, fmt.Sprintf("signed out everywhere (%d sessions)", n))
		c.Status(http.StatusNoContent)
		return
	}
	if _, err := s.sessionStore().Revoke(ctx, p.SessionID, session.ReasonLogout); err != nil {
		s.abortStore(c, "log out", err)
		return
	}
	s.rightsChecker().Forget(p.SessionID)
	s.auditEvent(c, auditLogout, auth.SubjectStaff, p.Subject, "signed out session "+p.SessionID)
	c.Status(http.StatusNoContent)
}

// SessionList answers GET /v1/auth/sessions.
type SessionList struct {
	Items []SessionView `json:"items"`
}

// SessionView is one session as its holder (or an admin) sees it.
type SessionView struct {
	session.Session
	Current bool `json:"current"`
	Live    bool `json:"live"`
}

// listSessions lists the caller's sessions; an admin may ask for anyone's
// with ?staff_id=.
func (s *Server) listSessions(c *gin.Context) {
	p := principal(c)
	subject := p.Subject
	if id, ok := c.GetQuery("staff_id"); ok && id != p.Subject {
		if p.Access != auth.AccessAdmin {
			abortWithError(c, http.StatusForbidden, CodeForbidden, "only an admin may list another person's sessions", "staff_id")
			return
		}
		if !reference.ValidStaffID(id) {
			abortInvalid(c, invalid("staff_id", "must be 1 to 32 letters, digits, '_' or '-'"))
			return
		}
		subject = id
	}
	list, err := s.sessionStore().List(c.Request.Context(), auth.SubjectStaff, subject)
	if err != nil {
		s.abortStore(c, "list sessions", err)
		return
	}
	now := time.Now()
	out := SessionList{Items: make([]SessionView, 0, len(list))}
	for _, sess := range list {
		out.Items = append(out.Items, SessionView{Session: sess, Current: sess.ID == p.SessionID, Live: sess.Live(now)})
	}
	c.JSON(http.StatusOK, out)
}

// revokeSession ends one session: the caller's own, or anyone's for an
// admin. An unknown id (or another person's, for a non-admin) is 404.
func (s *Server) revokeSession(c *gin.Context) {
	p := principal(c)
	ctx := c.Request.Context()
	sess, err := s.sessionStore().Get(ctx, c.Param("id"))
	if errors.Is(err, session.ErrNotFound) || (err == nil && p.Access != auth.AccessAdmin &&
		(sess.SubjectType != auth.SubjectStaff || sess.SubjectID != p.Subject)) {
		abortWithError(c, http.StatusNotFound, CodeNotFound, "no such session", "id")
		return
	}
	if err != nil {
		s.abortStore(c, "get session", err)
		return
	}
	if _, err := s.sessionStore().Revoke(ctx, sess.ID, session.ReasonRevoked); err != nil {
		s.abortStore(c, "revoke session", err)
		return
	}
	s.rightsChecker().Forget(sess.ID)
	s.auditEvent(c, auditSessionRevoked, sess.SubjectType, sess.SubjectID, "session "+sess.ID+" revoked")
	c.Status(http.StatusNoContent)
}

// subjectStillAuthorized re-checks what a token's subject kind needs beyond
// its session (a device's or a clinician's device still active): "" while
// it holds, else why not.
func (s *Server) subjectStillAuthorized(ctx context.Context, claims *auth.Claims) (string, error) {
	refused, _, err := s.subjectRefusal(ctx, claims)
	if err != nil || refused == nil {
		return "", err
	}
	return refused.message, nil
}
