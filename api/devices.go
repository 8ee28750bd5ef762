package api

import (
	"database/sql"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/workflows"
)

// locationIDPattern is the shape of ward and location ids.
var locationIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// DeviceView is a ward device.
type DeviceView struct {
	ID          string    `json:"id" db:"id"`
	LocationID  string    `json:"location_id" db:"location_id"`
	Description string    `json:"description" db:"description"`
	Active      bool      `json:"active" db:"active"`
	CreatedBy   string    `json:"created_by" db:"created_by"`
	CreatedAt   time.Time `json:"created_at" db:"created_at"`
	UpdatedAt   time.Time `json:"updated_at" db:"updated_at"`
}

const deviceColumns = `id, location_id, description, active, created_by, created_at, updated_at`

// deviceRequest is the body of POST /v1/devices and PATCH /v1/devices/{id}.
type deviceRequest struct {
	LocationID  *string `json:"location_id"`
	Description *string `json:"description"`
	Active      *bool   `json:"active"`
}

// check validates the fields present; create also requires location_id and
// refuses active (a new device is active).
func (r *deviceRequest) check(create bool) *fieldError {
	switch {
	case create && r.LocationID == nil:
		return invalid("location_id", "is required")
	case create && r.Active != nil:
		return invalid("active", "a new device is active; deactivate it with PATCH")
	case r.LocationID != nil && !locationIDPattern.MatchString(*r.LocationID):
		return invalid("location_id", "must be 1 to 64 letters, digits, '_', '.', ':' or '-'")
	case r.Description != nil && (!validText(*r.Description, false) || utf8.RuneCountInString(*r.Description) > 200):
		return invalid("description", "must be at most 200 characters of text without control characters")
	case !create && r.LocationID == nil && r.Description == nil && r.Active == nil:
		return invalid("body", "give at least one of location_id, description, active")
	}
	return nil
}

// decodeDevice reads and checks a device body, answering 4xx naming the
// field when it is bad.
func decodeDevice(c *gin.Context, create bool) (deviceRequest, bool) {
	var req deviceRequest
	if !decodeJSON(c, &req, false) {
		return req, false
	}
	if fe := req.check(create); fe != nil {
		abortInvalid(c, fe)
		return req, false
	}
	return req, true
}

// createDevice registers a ward device (admin).
func (s *Server) createDevice(c *gin.Context) {
	req, ok := decodeDevice(c, true)
	if !ok {
		return
	}
	desc := ""
	if req.Description != nil {
		desc = *req.Description
	}
	var v DeviceView
	if err := s.db.GetContext(c.Request.Context(), &v, `
		INSERT INTO devices (id, location_id, description, created_by) VALUES ($1, $2, $3, $4) RETURNING `+deviceColumns,
		uuid.NewString(), *req.LocationID, desc, actor(c)); err != nil {
		s.abortInternal(c, "store device", err)
		return
	}
	c.Header("Location", "/v1/devices/"+v.ID)
	c.JSON(http.StatusCreated, v)
}

// listDevices lists devices, optionally only active (or inactive) ones, or
// those of some locations.
func (s *Server) listDevices(c *gin.Context) {
	var active *bool
	var locations []string
	limit, offset, fe := offsetPage(c)
	if fe == nil {
		active, fe = boolQuery(c, "active")
	}
	if fe == nil {
		locations, fe = locationListQuery(c, "location_id")
	}
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	items := []DeviceView{}
	if err := s.db.SelectContext(c.Request.Context(), &items, `SELECT `+deviceColumns+` FROM devices
		WHERE ($1::boolean IS NULL OR active = $1) AND (cardinality($2::text[]) = 0 OR location_id = ANY($2))
		ORDER BY created_at, id LIMIT $3 OFFSET $4`, active, pq.Array(nonNil(locations)), limit, offset); err != nil {
		s.abortInternal(c, "list devices", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "limit": limit, "offset": offset})
}

// boolQuery reads an optional true/false query parameter.
func boolQuery(c *gin.Context, name string) (*bool, *fieldError) {
	v, ok := c.GetQuery(name)
	if !ok {
		return nil, nil
	}
	switch v {
	case "true":
		b := true
		return &b, nil
	case "false":
		b := false
		return &b, nil
	}
	return nil, invalid(name, "must be true or false")
}

// locationListQuery reads comma-separated location ids.
func locationListQuery(c *gin.Context, name string) ([]string, *fieldError) {
	var out []string
	for _, raw := range c.QueryArray(name) {
		for v := range strings.SplitSeq(raw, ",") {
			v = strings.TrimSpace(v)
			if !locationIDPattern.MatchString(v) {
				return nil, invalid(name, "must be comma-separated location ids")
			}
			out = append(out, v)
		}
	}
	if len(out) > 100 {
		return nil, invalid(name, "at most 100 locations")
	}
	return out, nil
}

// deviceIDParam reads the :id path parameter as a device id.
func deviceIDParam(c *gin.Context) (string, bool) {
	id := c.Param("id")
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		abortInvalid(c, invalid("id", "must be a UUID"))
		return "", false
	}
	return strings.ToLower(id), true
}

// loadDevice reads a device, answering 400/404 itself.
func (s *Server) loadDevice(c *gin.Context, q sqlx.QueryerContext, forUpdate bool) (DeviceView, bool) {
	var v DeviceView
	id, ok := deviceIDParam(c)
	if !ok {
		return v, false
	}
	query := `SELECT ` + deviceColumns + ` FROM devices WHERE id = $1`
	if forUpdate {
		query += ` FOR UPDATE`
	}
	err := sqlx.GetContext(c.Request.Context(), q, &v, query, id)
	if errors.Is(err, sql.ErrNoRows) {
		abortWithError(c, http.StatusNotFound, CodeNotFound, "no device "+id, "")
		return v, false
	}
	if err != nil {
		s.abortInternal(c, "load device", err)
		return v, false
	}
	return v, true
}

func (s *Server) getDevice(c *gin.Context) {
	if v, ok := s.loadDevice(c, s.db, false); ok {
		c.JSON(http.StatusOK, v)
	}
}

// patchDevice changes a device's location, description or active flag
// (admin), with an audit event. Deactivating a device or moving it to
// another location revokes every token it holds.
func (s *Server) patchDevice(c *gin.Context) {
	if _, ok := deviceIDParam(c); !ok {
		return
	}
	req, ok := decodeDevice(c, false)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		s.abortInternal(c, "begin", err)
		return
	}
	defer func() { _ = tx.Rollback() }()
	v, ok := s.loadDevice(c, tx, true)
	if !ok {
		return
	}
	next := v
	var changes []string
	revoke := false
	if req.LocationID != nil && *req.LocationID != v.LocationID {
		next.LocationID = *req.LocationID
		changes = append(changes, "location "+v.LocationID+" -> "+next.LocationID)
		revoke = true
	}
	if req.Description != nil && *req.Description != v.Description {
		next.Description = *req.Description
		changes = append(changes, "description")
	}
	if req.Active != nil && *req.Active != v.Active {
		next.Active = *req.Active
		if next.Active {
			changes = append(changes, "activated")
		} else {
			changes = append(changes, "deactivated")
			revoke = true
		}
	}
	if len(changes) == 0 {
		c.JSON(http.StatusOK, v)
		return
	}
	if err := tx.GetContext(ctx, &next, `
		UPDATE devices SET location_id = $2, description = $3, active = $4, updated_at = now(),
			tokens_revoked_at = CASE WHEN $5 THEN now() ELSE tokens_revoked_at END
		WHERE id = $1 RETURNING `+deviceColumns, v.ID, next.LocationID, next.Description, next.Active, revoke); err != nil {
		s.abortInternal(c, "update device", err)
		return
	}
	reason := strings.Join(changes, "; ")
	if revoke {
		reason += "; tokens revoked"
	}
	if err := audit(ctx, tx, c, auditDeviceUpdated, auth.SubjectDevice, v.ID, actor(c), reason); err != nil {
		s.abortInternal(c, "audit device update", err)
		return
	}
	if err := tx.Commit(); err != nil {
		s.abortInternal(c, "commit device", err)
		return
	}
	c.JSON(http.StatusOK, next)
}

// createDeviceActivation issues a 9-digit activation code for an active
// device: a new activation (201), or the pending one with a new code (200).
func (s *Server) createDeviceActivation(c *gin.Context) {
	if !s.activationsReady(c) {
		return
	}
	v, ok := s.loadDevice(c, s.db, false)
	if !ok {
		return
	}
	if !v.Active {
		abortWithError(c, http.StatusConflict, CodeDeviceInactive, "the device is deactivated; activate it with PATCH first", "")
		return
	}
	res, created, ok := s.openActivation(c, workflows.ActivationKindDevice, v.ID, "", "")
	if !ok {
		return
	}
	noStore(c)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, DeviceActivationCreated{Code: res.code, ExpiresAt: res.expiresAt})
}

// deviceToken exchanges the device's authorisation code for a device token
// carrying its location, once. A deactivated device gets 403.
func (s *Server) deviceToken(c *gin.Context) {
	if !s.activationsReady(c) {
		return
	}
	v, ok := s.loadDevice(c, s.db, false)
	if !ok {
		return
	}
	code, fe := authorisationCodeHeader(c)
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	if !v.Active {
		s.auditRefusal(c, auth.SubjectDevice, v.ID, "", "device inactive")
		abortWithError(c, http.StatusForbidden, CodeDeviceInactive, "the device is deactivated", "")
		return
	}
	if !s.redeemAuthorisationCode(c, workflows.ActivationKindDevice, v.ID, code) {
		return
	}
	s.issueSubjectToken(c, auth.Claims{Subject: v.ID, SubjectType: auth.SubjectDevice, Scopes: deviceTokenScopes,
		LocationIDs: []string{v.LocationID}}, s.act.deviceTTL, "", "activation")
}

// activeDevice checks, after requireSubject, that a device token's device
// still exists, is active, and has not had its tokens revoked since the
// token was issued (deactivation, move). Other principals pass. A token
// that fails gets 401: it no longer works.
func (s *Server) activeDevice(c *gin.Context) {
	p := principal(c)
	if p == nil || p.SubjectType != auth.SubjectDevice {
		c.Next()
		return
	}
	var row struct {
		Active    bool       `db:"active"`
		RevokedAt *time.Time `db:"tokens_revoked_at"`
	}
	err := s.db.GetContext(c.Request.Context(), &row, `SELECT active, tokens_revoked_at FROM devices WHERE id = $1`, p.Subject)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		s.abortInternal(c, "check device", err)
		return
	}
	// iat has whole seconds: a token from the second of the revocation is
	// revoked too.
	revoked := row.RevokedAt != nil && !p.IssuedAt.After(row.RevokedAt.Truncate(time.Second))
	if errors.Is(err, sql.ErrNoRows) || !row.Active || revoked {
		reason := "device inactive"
		if row.Active {
			reason = "device token revoked"
		}
		s.auditRefusal(c, auth.SubjectDevice, p.Subject, p.Subject, reason)
		c.Header("WWW-Authenticate", `Bearer realm="vigil"`)
		abortWithError(c, http.StatusUnauthorized, CodeDeviceInactive, "the device's tokens no longer work ("+reason+")", "")
		return
	}
	c.Next()
}
