package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/reference"
)

// listRotations returns a page of rotations, optionally of one role or
// staff member.
func (s *Server) listRotations(c *gin.Context) {
	page, ok := s.referencePage(c)
	if !ok {
		return
	}
	f := reference.RotationFilter{Role: c.Query("role"), StaffID: c.Query("staff_id")}
	list, err := s.referenceStore().ListRotations(c.Request.Context(), f, page)
	if err != nil {
		s.abortReference(c, "list rotations", err)
		return
	}
	c.JSON(http.StatusOK, list)
}

// createRotation adds a rotation.
func (s *Server) createRotation(c *gin.Context) {
	var in reference.RotationInput
	if !decodeJSON(c, &in, false) {
		return
	}
	r, err := s.referenceStore().CreateRotation(c.Request.Context(), in)
	if err != nil {
		s.abortReference(c, "create rotation", err)
		return
	}
	c.JSON(http.StatusCreated, r)
}

// deleteRotation removes a rotation.
func (s *Server) deleteRotation(c *gin.Context) {
	id, ok := s.referenceNumericID(c)
	if !ok {
		return
	}
	if err := s.referenceStore().DeleteRotation(c.Request.Context(), id); err != nil {
		s.abortReference(c, "delete rotation", err)
		return
	}
	c.Status(http.StatusNoContent)
}

// referenceTimeQuery reads an optional RFC 3339 query parameter, answering
// 400 naming it when it is malformed.
func (s *Server) referenceTimeQuery(c *gin.Context, name string) (time.Time, bool) {
	v, present := c.GetQuery(name)
	if !present {
		return time.Time{}, true
	}
	t, err := reference.ParseTime(name, v)
	if err != nil && strings.Contains(v, " ") {
		// An unescaped '+' of a UTC offset arrives as a space.
		t, err = reference.ParseTime(name, strings.Replace(v, " ", "+", 1))
	}
	if err != nil {
		s.abortReference(c, "parse "+name, err)
		return time.Time{}, false
	}
	return t, true
}

// listOnCallOverrides returns a page of the overrides overlapping
// [from, to), optionally of one role.
func (s *Server) listOnCallOverrides(c *gin.Context) {
	page, ok := s.referencePage(c)
	if !ok {
		return
	}
	from, ok := s.referenceTimeQuery(c, "from")
	if !ok {
		return
	}
	to, ok := s.referenceTimeQuery(c, "to")
	if !ok {
		return
	}
	f := reference.OverrideFilter{Role: c.Query("role"), From: from, To: to}
	list, err := s.referenceStore().ListOverrides(c.Request.Context(), f, page)
	if err != nil {
		s.abortReference(c, "list overrides", err)
		return
	}
	c.JSON(http.StatusOK, list)
}

// createOnCallOverride puts someone on call for a role over a time slot,
// recorded as created by the caller.
func (s *Server) createOnCallOverride(c *gin.Context) {
	var in reference.OverrideInput
	if !decodeJSON(c, &in, false) {
		return
	}
	o, err := s.referenceStore().CreateOverride(c.Request.Context(), in, principal(c).Subject)
	if err != nil {
		s.abortReference(c, "create override", err)
		return
	}
	c.JSON(http.StatusCreated, o)
}

// deleteOnCallOverride removes an override.
func (s *Server) deleteOnCallOverride(c *gin.Context) {
	id, ok := s.referenceNumericID(c)
	if !ok {
		return
	}
	if err := s.referenceStore().DeleteOverride(c.Request.Context(), id); err != nil {
		s.abortReference(c, "delete override", err)
		return
	}
	c.Status(http.StatusNoContent)
}

// whoIsOnCall answers who is on call at ?at (default now), for ?role or for
// every role, with the shift and the hospital's local time of that instant.
func (s *Server) whoIsOnCall(c *gin.Context) {
	at, ok := s.referenceTimeQuery(c, "at")
	if !ok {
		return
	}
	if at.IsZero() {
		at = time.Now()
	}
	ans, err := s.referenceStore().OnCall(c.Request.Context(), s.hospitalTZ, c.Query("role"), at)
	if err != nil {
		s.abortReference(c, "who is on call", err)
		return
	}
	c.JSON(http.StatusOK, ans)
}
