package api

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/reference"
)

// referenceStaffID reads the :id path parameter as a staff id, answering 400
// when it is malformed.
func referenceStaffID(c *gin.Context) (string, bool) {
	return pathIDParam(c, reference.ValidStaffID, "must be 1 to 32 letters, digits, '_' or '-'")
}

// listStaffMembers returns a page of staff, optionally of one role.
func (s *Server) listStaffMembers(c *gin.Context) {
	f := reference.StaffFilter{Role: c.Query("role")}
	listReference(s, c, "list staff", withFilter(f, s.referenceStore().ListStaff))
}

// getStaffMember returns one staff member.
func (s *Server) getStaffMember(c *gin.Context) {
	if id, ok := referenceStaffID(c); ok {
		getReference(s, c, "get staff", id, s.referenceStore().GetStaff)
	}
}

// createStaffMember creates a staff member with a password.
func (s *Server) createStaffMember(c *gin.Context) {
	m, ok := writeReference(s, c, "create staff", s.referenceStore().CreateStaff)
	if !ok {
		return
	}
	answerCreated(c, "/v1/staff/"+m.ID, m)
}

// patchStaffMember changes some of a staff member's fields. An admin may
// change everything; a charge nurse anyone's availability; everyone their
// own availability, phone, Slack id and password.
func (s *Server) patchStaffMember(c *gin.Context) {
	id, ok := referenceStaffID(c)
	if !ok {
		return
	}
	var p reference.StaffPatch
	if !decodeJSON(c, &p, false) {
		return
	}
	caller := principal(c)
	// A wrong current password is a guess like a wrong sign-in: the same
	// limits apply, keyed by the account's login.
	var login string
	if p.Password != nil && caller.Subject == id {
		info, err := s.staffByID(c.Request.Context(), id)
		if err != nil {
			s.abortStore(c, "look up staff", err)
			return
		}
		login = info.Login
		if ok, wait := s.admitLogin(c, login); !ok {
			s.abortThrottled(c, wait)
			return
		}
	}
	m, err := s.referenceStore().PatchStaff(c.Request.Context(),
		reference.Caller{ID: caller.Subject, Access: caller.Access}, id, p)
	if login != "" {
		var forbidden *reference.ForbiddenError
		wrong := errors.As(err, &forbidden) && forbidden.Field == "current_password"
		if err == nil || wrong {
			s.loginResult(c, login, !wrong)
		}
		if wrong {
			s.auditEvent(c, auditLoginRefused, auth.SubjectStaff, id, "password change: wrong current password")
		}
	}
	if err != nil {
		s.abortReference(c, "patch staff", err)
		return
	}
	if reason := p.RevokesSessions(); reason != "" {
		s.forgetStaff(id)
		event := auditStaffAccessChanged
		if p.Password != nil {
			event = auditPasswordChanged
		}
		s.auditEvent(c, event, auth.SubjectStaff, id, reason+"; every session ended")
	}
	c.JSON(http.StatusOK, m)
}

type passwordResetRequest struct {
	NewPassword string `json:"new_password"`
}

// resetStaffPassword is an admin's reset of another person's password: a
// separate, audited action that ends every session of that person.
func (s *Server) resetStaffPassword(c *gin.Context) {
	id, ok := referenceStaffID(c)
	if !ok {
		return
	}
	var req passwordResetRequest
	if !decodeJSON(c, &req, false) {
		return
	}
	if req.NewPassword == "" {
		abortInvalid(c, invalid("new_password", "is required"))
		return
	}
	if err := s.referenceStore().ResetStaffPassword(c.Request.Context(), id, req.NewPassword); err != nil {
		s.abortReference(c, "reset password", err)
		return
	}
	s.forgetStaff(id)
	s.auditEvent(c, auditPasswordReset, auth.SubjectStaff, id, "password reset by an admin; every session ended")
	c.Status(http.StatusNoContent)
}

// deleteStaffMember deletes a staff member with their rotations and
// overrides.
func (s *Server) deleteStaffMember(c *gin.Context) {
	id, ok := referenceStaffID(c)
	if !ok {
		return
	}
	if err := s.referenceStore().DeleteStaff(c.Request.Context(), id); err != nil {
		s.abortReference(c, "delete staff", err)
		return
	}
	s.forgetStaff(id)
	s.auditEvent(c, auditStaffAccessChanged, auth.SubjectStaff, id, "account deleted; every session ended")
	c.Status(http.StatusNoContent)
}
