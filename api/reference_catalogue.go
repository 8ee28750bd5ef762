package api

import (
	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/reference"
)

// listAlertTypes returns a page of the alert catalogue, optionally of one
// severity or category.
func (s *Server) listAlertTypes(c *gin.Context) {
	f := reference.AlertTypeFilter{Severity: c.Query("severity"), Category: c.Query("category")}
	listReference(s, c, "list alert types", withFilter(f, s.referenceStore().ListAlertTypes))
}

// getAlertType returns one alert type.
func (s *Server) getAlertType(c *gin.Context) {
	name := c.Param("type")
	if !reference.ValidAlertTypeName(name) {
		abortInvalid(c, invalid("type", "is not an alert type name"))
		return
	}
	getReference(s, c, "get alert type", name, s.referenceStore().GetAlertType)
}

// putAlertType creates (201) or replaces (200) an alert type.
func (s *Server) putAlertType(c *gin.Context) {
	name := c.Param("type")
	if !reference.ValidAlertTypeName(name) {
		abortInvalid(c, invalid("type", "must be upper-case letters, digits and '_', 2 to 64 long, starting with a letter"))
		return
	}
	putReference(s, c, "put alert type", name, s.referenceStore().PutAlertType,
		func(t reference.AlertType) string { return "/v1/alert-types/" + t.AlertType })
}

// listRoles returns a page of the clinical roles.
func (s *Server) listRoles(c *gin.Context) {
	listReference(s, c, "list roles", s.referenceStore().ListRoles)
}
