package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/loginguard"
)

// loginLimitKey holds, on a refused sign-in's context, the limit that
// refused it ("account" or "client"), for abortThrottled's message.
const loginLimitKey = "vigil.login_limit"

// auditSubjectClient is the auth_audit subject type of a client address.
const auditSubjectClient = "client"

// admitLogin decides, before any password is checked, whether a sign-in
// attempt for login from this client may proceed. When it may not, it
// returns false and how long the caller must wait; the caller answers 429
// with Retry-After (or the sign-in page with the same status). An admitted
// attempt must be followed by loginResult.
//
// The first refused attempt of each lock is audited (login_throttled), so
// refusals cannot flood the audit table.
func (s *Server) admitLogin(c *gin.Context, login string) (bool, time.Duration) {
	d := s.loginGuard.Admit(login, c.ClientIP())
	if d.Allowed {
		return true, 0
	}
	c.Set(loginLimitKey, d.Limit)
	s.Logger.WarnContext(c.Request.Context(), "sign-in throttled", "limit", string(d.Limit),
		"retry_after", retryAfterSeconds(d.Wait), "client_ip", c.ClientIP(), "request_id", requestID(c))
	if d.FirstRefusal {
		subjectType, subjectID := throttleSubject(c, d.Limit, login)
		s.auditEvent(c, auditLoginThrottled, subjectType, subjectID,
			fmt.Sprintf("refused: %s locked for %ds more", d.Limit, retryAfterSeconds(d.Wait)))
	}
	return false, d.Wait
}

// loginResult records the outcome of a checked sign-in attempt for login
// from this client: failures grow the back-off, a success clears the
// account's failures (not the client's). Each lock a failure starts is
// audited (login_throttled); at most one a lock period per key.
func (s *Server) loginResult(c *gin.Context, login string, ok bool) {
	for _, l := range s.loginGuard.Result(login, c.ClientIP(), ok) {
		subjectType, subjectID := throttleSubject(c, l.Limit, login)
		s.auditEvent(c, auditLoginThrottled, subjectType, subjectID,
			fmt.Sprintf("locked: %s has %d failed sign-ins; back-off %ds", l.Limit, l.Failures, retryAfterSeconds(l.For)))
	}
}

// abortThrottled answers a refused sign-in: 429 with Retry-After and a JSON
// error naming the limit that refused it. (admitLogin has already audited
// it.)
func (s *Server) abortThrottled(c *gin.Context, wait time.Duration) {
	setRetryAfter(c, wait)
	msg := "too many failed sign-ins"
	switch v, _ := c.Get(loginLimitKey); v {
	case loginguard.LimitAccount:
		msg = "too many failed sign-ins for this account"
	case loginguard.LimitClient:
		msg = "too many failed sign-ins from this address"
	}
	abortWithError(c, http.StatusTooManyRequests, CodeRateLimited,
		fmt.Sprintf("%s; retry in %d s", msg, retryAfterSeconds(wait)), "")
}

// setRetryAfter sets Retry-After to wait in whole seconds, rounded up.
func setRetryAfter(c *gin.Context, wait time.Duration) {
	c.Header("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
}

// retryAfterSeconds is wait in whole seconds, rounded up, at least 1.
func retryAfterSeconds(wait time.Duration) int {
	return max(1, int((wait+time.Second-1)/time.Second))
}

// throttleSubject is the audit subject of a limit: the staff login for an
// account, the client address for a client.
func throttleSubject(c *gin.Context, limit loginguard.Limit, login string) (subjectType, subjectID string) {
	if limit == loginguard.LimitClient {
		return auditSubjectClient, c.ClientIP()
	}
	login = strings.ToLower(strings.TrimSpace(login))
	if len(login) > 200 {
		login = strings.ToValidUTF8(login[:200], "")
	}
	return auth.SubjectStaff, "login:" + login
}
