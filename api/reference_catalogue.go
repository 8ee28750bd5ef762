package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/reference"
)

// listAlertTypes returns a page of the alert catalogue, optionally of one
// severity or category.
func (s *Server) listAlertTypes(c *gin.Context) {
	page, ok := s.referencePage(c)
	if !ok {
		return
	}
	f := reference.AlertTypeFilter{Severity: c.Query("severity"), Category: c.Query("category")}
	list, err := s.referenceStore().ListAlertTypes(c.Request.Context(), f, page)
	if err != nil {
		s.abortReference(c, "list alert types", err)
		return
	}
	c.JSON(http.StatusOK, list)
}

// getAlertType returns one alert type.
func (s *Server) getAlertType(c *gin.Context) {
	name := c.Param("type")
	if !reference.ValidAlertTypeName(name) {
		abortInvalid(c, invalid("type", "is not an alert type name"))
		return
	}
	t, err := s.referenceStore().GetAlertType(c.Request.Context(), name)
	if err != nil {
		s.abortReference(c, "get alert type", err)
		return
	}
	c.JSON(http.StatusOK, t)
}

// putAlertType creates (201) or replaces (200) an alert type.
func (s *Server) putAlertType(c *gin.Context) {
	name := c.Param("type")
	if !reference.ValidAlertTypeName(name) {
		abortInvalid(c, invalid("type", "must be upper-case letters, digits and '_', 2 to 64 long, starting with a letter"))
		return
	}
	var in reference.AlertTypeInput
	if !decodeJSON(c, &in, false) {
		return
	}
	t, created, err := s.referenceStore().PutAlertType(c.Request.Context(), name, in)
	if err != nil {
		s.abortReference(c, "put alert type", err)
		return
	}
	if created {
		c.Header("Location", "/v1/alert-types/"+t.AlertType)
		c.JSON(http.StatusCreated, t)
		return
	}
	c.JSON(http.StatusOK, t)
}

// listRoles returns a page of the clinical roles.
func (s *Server) listRoles(c *gin.Context) {
	page, ok := s.referencePage(c)
	if !ok {
		return
	}
	list, err := s.referenceStore().ListRoles(c.Request.Context(), page)
	if err != nil {
		s.abortReference(c, "list roles", err)
		return
	}
	c.JSON(http.StatusOK, list)
}
