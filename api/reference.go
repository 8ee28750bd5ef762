package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/reference"
)

// referenceRoutes registers the reference data: the alert catalogue, roles,
// staff, rotations, on-call overrides and answers, escalation policies and
// the API keys of alert sources. Reading needs any staff token; rotations
// and overrides are written by charge nurses; everything else by admins.
func (s *Server) referenceRoutes(v1 *gin.RouterGroup) {
	anyStaff := s.requireStaff()
	charge := s.requireStaff(auth.AccessCharge)
	admin := s.requireStaff(auth.AccessAdmin)

	v1.GET("/alert-types", anyStaff, s.listAlertTypes)
	v1.GET("/alert-types/:type", anyStaff, s.getAlertType)
	v1.PUT("/alert-types/:type", admin, s.putAlertType)

	v1.GET("/roles", anyStaff, s.listRoles)

	v1.GET("/staff", anyStaff, s.listStaffMembers)
	v1.GET("/staff/:id", anyStaff, s.getStaffMember)
	v1.POST("/staff", admin, s.createStaffMember)
	// Who may change what is decided per field in the handler.
	v1.PATCH("/staff/:id", anyStaff, s.patchStaffMember)
	v1.DELETE("/staff/:id", admin, s.deleteStaffMember)

	v1.GET("/rotations", anyStaff, s.listRotations)
	v1.POST("/rotations", charge, s.createRotation)
	v1.DELETE("/rotations/:id", charge, s.deleteRotation)

	v1.GET("/oncall", anyStaff, s.whoIsOnCall)
	v1.GET("/oncall/overrides", anyStaff, s.listOnCallOverrides)
	v1.POST("/oncall/overrides", charge, s.createOnCallOverride)
	v1.DELETE("/oncall/overrides/:id", charge, s.deleteOnCallOverride)

	v1.GET("/escalation-policies", anyStaff, s.listEscalationPolicies)
	v1.GET("/escalation-policies/:id", anyStaff, s.getEscalationPolicy)
	v1.PUT("/escalation-policies/:id", admin, s.putEscalationPolicy)
	v1.DELETE("/escalation-policies/:id", admin, s.deleteEscalationPolicy)

	v1.GET("/api-keys", admin, s.listAPIKeys)
	v1.POST("/api-keys", admin, s.createAPIKey)
	v1.DELETE("/api-keys/:id", admin, s.revokeAPIKey)
}

// referenceStore is the store behind the reference handlers.
func (s *Server) referenceStore() *reference.Store {
	return s.Stores.Reference
}

// abortReference answers a reference store error as referenceRefusal
// classifies it, and with a 500 (logged) for anything else.
func (s *Server) abortReference(c *gin.Context, what string, err error) {
	r, ok := referenceRefusal(err)
	if !ok {
		s.abortInternal(c, what, err)
		return
	}
	abortWithError(c, r.Status, r.Code, r.Message, r.Field)
}

// refusal is a request refused for the caller's reasons: its status, error
// code, the field concerned (possibly empty) and the message.
type refusal struct {
	Status               int
	Code, Field, Message string
}

// referenceRefusal classifies a reference store error: 400 for a bad field,
// 403 for a refused change, 404 for a missing record, 409 for a clash; ok
// is false for anything else (the server's fault).
func referenceRefusal(err error) (r refusal, ok bool) {
	var fieldErr *reference.FieldError
	var conflictErr *reference.ConflictError
	var forbiddenErr *reference.ForbiddenError
	switch {
	case errors.As(err, &fieldErr):
		return refusal{http.StatusBadRequest, CodeInvalidField, fieldErr.Field, fieldErr.Message}, true
	case errors.As(err, &forbiddenErr):
		return refusal{http.StatusForbidden, CodeForbidden, forbiddenErr.Field, forbiddenErr.Message}, true
	case errors.As(err, &conflictErr):
		return refusal{http.StatusConflict, CodeConflict, conflictErr.Field, conflictErr.Message}, true
	case errors.Is(err, reference.ErrNotFound):
		return refusal{http.StatusNotFound, CodeNotFound, "", err.Error()}, true
	}
	return refusal{}, false
}

// referencePage reads the limit and offset query parameters, answering 400
// when they are bad.
func (s *Server) referencePage(c *gin.Context) (reference.Page, bool) {
	p, err := reference.ParsePage(c.Query("limit"), c.Query("offset"))
	if err != nil {
		s.abortReference(c, "parse page", err)
		return reference.Page{}, false
	}
	return p, true
}

// referenceNumericID reads the numeric :id path parameter, answering 400
// when it is not a positive integer.
func (s *Server) referenceNumericID(c *gin.Context) (int64, bool) {
	id, err := reference.ParseID("id", c.Param("id"))
	if err != nil {
		s.abortReference(c, "parse id", err)
		return 0, false
	}
	return id, true
}

// listReference answers a GET of a reference listing: it reads the page
// (400 when bad) and answers list's page (200) or the store's refusal.
func listReference[T any](s *Server, c *gin.Context, what string, list func(context.Context, reference.Page) (reference.List[T], error)) {
	page, ok := s.referencePage(c)
	if !ok {
		return
	}
	out, err := list(c.Request.Context(), page)
	if err != nil {
		s.abortReference(c, what, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

// withFilter binds the filter of a filtered listing, for listReference.
func withFilter[F, T any](f F, list func(context.Context, F, reference.Page) (reference.List[T], error)) func(context.Context, reference.Page) (reference.List[T], error) {
	return func(ctx context.Context, page reference.Page) (reference.List[T], error) {
		return list(ctx, f, page)
	}
}

// getReference answers a GET of the reference record at key: 200 with it,
// or the store's refusal.
func getReference[K, T any](s *Server, c *gin.Context, what string, key K, get func(context.Context, K) (T, error)) {
	out, err := get(c.Request.Context(), key)
	if err != nil {
		s.abortReference(c, what, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

// deleteReference answers a DELETE of the reference record at key: 204, or
// the store's refusal.
func deleteReference[K any](s *Server, c *gin.Context, what string, key K, del func(context.Context, K) error) {
	if err := del(c.Request.Context(), key); err != nil {
		s.abortReference(c, what, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// writeReference decodes the JSON body into an In and hands it to write,
// returning what write returns. ok is false when it has answered: a bad
// body, or the store's refusal.
func writeReference[In, Out any](s *Server, c *gin.Context, what string, write func(context.Context, In) (Out, error)) (out Out, ok bool) {
	var in In
	if !decodeJSON(c, &in, false) {
		return out, false
	}
	out, err := write(c.Request.Context(), in)
	if err != nil {
		s.abortReference(c, what, err)
		return out, false
	}
	return out, true
}

// putReference answers a PUT of the reference record at key from the JSON
// body: 201 with its location when put created it, 200 when put replaced
// it, or the refusal of the body or by the store.
func putReference[K, In, T any](s *Server, c *gin.Context, what string, key K, put func(context.Context, K, In) (T, bool, error), location func(T) string) {
	var created bool
	out, ok := writeReference(s, c, what, func(ctx context.Context, in In) (out T, err error) {
		out, created, err = put(ctx, key, in)
		return out, err
	})
	if ok {
		answerStored(c, created, location(out), out)
	}
}
