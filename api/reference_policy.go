package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/reference"
)

// referencePolicyID reads the :id path parameter as an escalation policy
// id, answering 400 when it is malformed.
func (s *Server) referencePolicyID(c *gin.Context) (reference.PolicyID, bool) {
	id, err := reference.ParsePolicyID(c.Param("id"))
	if err != nil {
		s.abortReference(c, "parse policy id", err)
		return reference.PolicyID{}, false
	}
	return id, true
}

// listEscalationPolicies returns a page of escalation policies.
func (s *Server) listEscalationPolicies(c *gin.Context) {
	page, ok := s.referencePage(c)
	if !ok {
		return
	}
	list, err := s.referenceStore().ListPolicies(c.Request.Context(), page)
	if err != nil {
		s.abortReference(c, "list escalation policies", err)
		return
	}
	c.JSON(http.StatusOK, list)
}

// getEscalationPolicy returns one escalation policy.
func (s *Server) getEscalationPolicy(c *gin.Context) {
	id, ok := s.referencePolicyID(c)
	if !ok {
		return
	}
	p, err := s.referenceStore().GetPolicy(c.Request.Context(), id)
	if err != nil {
		s.abortReference(c, "get escalation policy", err)
		return
	}
	c.JSON(http.StatusOK, p)
}

// putEscalationPolicy creates (201) or replaces (200) a severity's default
// policy or an alert type's own.
func (s *Server) putEscalationPolicy(c *gin.Context) {
	id, ok := s.referencePolicyID(c)
	if !ok {
		return
	}
	var in reference.PolicyInput
	if !decodeJSON(c, &in, false) {
		return
	}
	p, created, err := s.referenceStore().PutPolicy(c.Request.Context(), id, in)
	if err != nil {
		s.abortReference(c, "put escalation policy", err)
		return
	}
	if created {
		c.Header("Location", "/v1/escalation-policies/"+p.ID)
		c.JSON(http.StatusCreated, p)
		return
	}
	c.JSON(http.StatusOK, p)
}

// deleteEscalationPolicy deletes an alert type's own policy; a severity's
// default cannot be deleted (409).
func (s *Server) deleteEscalationPolicy(c *gin.Context) {
	id, ok := s.referencePolicyID(c)
	if !ok {
		return
	}
	if err := s.referenceStore().DeletePolicy(c.Request.Context(), id); err != nil {
		s.abortReference(c, "delete escalation policy", err)
		return
	}
	c.Status(http.StatusNoContent)
}
