package api

import (
	"context"

	"github.com/gin-gonic/gin"
)

// Security audit events (auth_audit.event) beyond the activation ones.
const (
	auditLogin               = "login"
	auditLoginThrottled      = "login_throttled"
	auditLogout              = "logout"
	auditSessionRevoked      = "session_revoked"
	auditRefreshReused       = "refresh_reused"
	auditPasswordChanged     = "password_changed"
	auditPasswordReset       = "password_reset"
	auditStaffAccessChanged  = "staff_access_changed"
	auditSourceActionRefused = "source_action_refused"
	auditActivationRecreated = "activation_recreated"
	auditDeviceCodeLocked    = "device_code_locked"
	auditRateLimited         = "rate_limited"
)

// auditEvent records a security decision in auth_audit, with the request's
// id, client IP and authenticated caller. A failed write is logged and the
// decision stands. It must never be given a secret.
func (s *Server) auditEvent(c *gin.Context, event, subjectType, subjectID, reason string) {
	if err := s.audit(context.WithoutCancel(c.Request.Context()), c, event, subjectType, subjectID, actor(c), reason); err != nil {
		s.Logger.ErrorContext(c.Request.Context(), "write security audit", "event", event, "err", err, "request_id", requestID(c))
	}
}
