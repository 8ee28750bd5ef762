package api

import (
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
	listReference(s, c, "list escalation policies", s.referenceStore().ListPolicies)
}

// getEscalationPolicy returns one escalation policy.
func (s *Server) getEscalationPolicy(c *gin.Context) {
	if id, ok := s.referencePolicyID(c); ok {
		getReference(s, c, "get escalation policy", id, s.referenceStore().GetPolicy)
	}
}

// putEscalationPolicy creates (201) or replaces (200) a severity's default
// policy or an alert type's own.
func (s *Server) putEscalationPolicy(c *gin.Context) {
	if id, ok := s.referencePolicyID(c); ok {
		putReference(s, c, "put escalation policy", id, s.referenceStore().PutPolicy,
			func(p reference.Policy) string { return "/v1/escalation-policies/" + p.ID })
	}
}

// deleteEscalationPolicy deletes an alert type's own policy; a severity's
// default cannot be deleted (409).
func (s *Server) deleteEscalationPolicy(c *gin.Context) {
	if id, ok := s.referencePolicyID(c); ok {
		deleteReference(s, c, "delete escalation policy", id, s.referenceStore().DeletePolicy)
	}
}
