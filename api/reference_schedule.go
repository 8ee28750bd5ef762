package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/reference"
)

// listRotations returns a page of rotations, optionally of one role or
// staff member.
func (s *Server) listRotations(c *gin.Context) {
	f := reference.RotationFilter{Role: c.Query("role"), StaffID: c.Query("staff_id")}
	listReference(s, c, "list rotations", withFilter(f, s.referenceStore().ListRotations))
}

// createRotation adds a rotation.
func (s *Server) createRotation(c *gin.Context) {
	if r, ok := writeReference(s, c, "create rotation", s.referenceStore().CreateRotation); ok {
		c.JSON(http.StatusCreated, r)
	}
}

// deleteRotation removes a rotation.
func (s *Server) deleteRotation(c *gin.Context) {
	if id, ok := s.referenceNumericID(c); ok {
		deleteReference(s, c, "delete rotation", id, s.referenceStore().DeleteRotation)
	}
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
	create := func(ctx context.Context, in reference.OverrideInput) (reference.Override, error) {
		return s.referenceStore().CreateOverride(ctx, in, principal(c).Subject)
	}
	if o, ok := writeReference(s, c, "create override", create); ok {
		c.JSON(http.StatusCreated, o)
	}
}

// deleteOnCallOverride removes an override.
func (s *Server) deleteOnCallOverride(c *gin.Context) {
	if id, ok := s.referenceNumericID(c); ok {
		deleteReference(s, c, "delete override", id, s.referenceStore().DeleteOverride)
	}
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
	ans, err := s.referenceStore().OnCall(c.Request.Context(), s.HospitalTZ, c.Query("role"), at)
	if err != nil {
		s.abortReference(c, "who is on call", err)
		return
	}
	c.JSON(http.StatusOK, ans)
}
