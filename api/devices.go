package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/vigil-health/vigil/internal/activation"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/workflows"
)

// locationIDPattern is the shape of ward and location ids.
var locationIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// DeviceView is a ward device.
type DeviceView = activation.Device

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
	return decodeChecked(c, false, func(r *deviceRequest) *fieldError { return r.check(create) })
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
	v, err := s.activationStore().CreateDevice(c.Request.Context(), *req.LocationID, desc, actor(c))
	if err != nil {
		s.abortInternal(c, "store device", err)
		return
	}
	answerCreated(c, "/v1/devices/"+v.ID, v)
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
	items, err := s.activationStore().ListDevices(c.Request.Context(),
		activation.DeviceFilter{Active: active, LocationIDs: locations, Limit: limit, Offset: offset})
	if err != nil {
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

// loadDevice reads the :id path parameter's device, answering 400/404
// itself.
func (s *Server) loadDevice(c *gin.Context) (DeviceView, bool) {
	id, ok := deviceIDParam(c)
	if !ok {
		return DeviceView{}, false
	}
	v, err := s.activationStore().Device(c.Request.Context(), id)
	if !s.deviceFound(c, id, err) {
		return v, false
	}
	return v, true
}

// deviceFound reports whether a device read or write succeeded; otherwise
// it answers 404 for a missing device and 500 (or 503) for anything else.
func (s *Server) deviceFound(c *gin.Context, id string, err error) bool {
	switch {
	case errors.Is(err, activation.ErrNotFound):
		abortWithError(c, http.StatusNotFound, CodeNotFound, "no device "+id, "")
		return false
	case err != nil:
		s.abortInternal(c, "load device", err)
		return false
	}
	return true
}

func (s *Server) getDevice(c *gin.Context) {
	if v, ok := s.loadDevice(c); ok {
		c.JSON(http.StatusOK, v)
	}
}

// patchDevice changes a device's location, description or active flag
// (admin), with an audit event. Deactivating a device or moving it to
// another location revokes every token it holds.
func (s *Server) patchDevice(c *gin.Context) {
	id, ok := deviceIDParam(c)
	if !ok {
		return
	}
	req, ok := decodeDevice(c, false)
	if !ok {
		return
	}
	v, changed, err := s.activationStore().PatchDevice(c.Request.Context(), id,
		activation.DevicePatch{LocationID: req.LocationID, Description: req.Description, Active: req.Active}, requester(c))
	if !s.deviceFound(c, id, err) {
		return
	}
	if changed {
		s.act.devices.drop(v.ID)
	}
	c.JSON(http.StatusOK, v)
}

// createDeviceActivation issues a 9-digit activation code for an active
// device: a new activation (201), or the pending one with a new code (200).
func (s *Server) createDeviceActivation(c *gin.Context) {
	v, ok := s.loadDevice(c)
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
	c.JSON(createdStatus(created), DeviceActivationCreated{Code: res.code, ExpiresAt: res.expiresAt})
}

// deviceToken exchanges the device's authorisation code for a device token
// carrying its location, once. A deactivated device gets 403.
func (s *Server) deviceToken(c *gin.Context) {
	v, ok := s.loadDevice(c)
	if !ok {
		return
	}
	code, ok := authorisationCode(c)
	if !ok {
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
		LocationIDs: []string{v.LocationID}}, s.DeviceTokenTTL, "", "activation")
}

const deviceLiveKey = "vigil.device"

// liveDevice is the device row subjectLive checked for this request (nil
// for principals without a device).
func liveDevice(c *gin.Context) *activation.DeviceState {
	v, _ := c.Get(deviceLiveKey)
	d, _ := v.(*activation.DeviceState)
	return d
}

// subjectLive checks that a device or clinician token still works, and
// otherwise answers 401 and audits the refusal. A device token's device,
// and the device a clinician token was minted through (its dev claim), must
// exist, be active, and not have had its tokens revoked (deactivation,
// move) since the token was issued; a clinician token's clinician must
// still be login-active, in an allowed group, within their contract and
// hold every ward the token names. (A clinician token without a device,
// which the API no longer mints, is held to its clinician's row when there
// is one.) The rows are cached for liveCheckTTL. Other principals pass.
func (s *Server) subjectLive(c *gin.Context, p *auth.Claims) bool {
	refusal, device, err := s.subjectRefusal(c.Request.Context(), p)
	if err != nil {
		s.abortStore(c, "check token subject", err)
		return false
	}
	if refusal == nil {
		if device != nil {
			c.Set(deviceLiveKey, device)
		}
		return true
	}
	s.auditRefusal(c, p.SubjectType, p.Subject, p.Subject, refusal.audit)
	c.Header("WWW-Authenticate", `Bearer realm="vigil"`)
	abortWithError(c, http.StatusUnauthorized, refusal.code, refusal.message, "")
	return false
}

// subjectRefused says why a device or clinician token no longer works.
type subjectRefused struct {
	code, message, audit string
}

// subjectRefusal is subjectLive's check without a request: nil when the
// token still works (with the device row checked, if any), else why not.
// Open streams call it again as they go.
func (s *Server) subjectRefusal(ctx context.Context, p *auth.Claims) (*subjectRefused, *activation.DeviceState, error) {
	var device *activation.DeviceState
	switch p.SubjectType {
	case auth.SubjectDevice:
		return s.deviceRefusal(ctx, p, p.Subject)
	case auth.SubjectClinician:
		if p.DeviceID != "" {
			refused, d, err := s.deviceRefusal(ctx, p, p.DeviceID)
			if err != nil || refused != nil {
				return refused, nil, err
			}
			device = d
		}
		refused, err := s.clinicianRefusal(ctx, p)
		return refused, device, err
	}
	return nil, nil, nil
}

// deviceRefusal checks the device deviceID of a device or clinician token.
func (s *Server) deviceRefusal(ctx context.Context, p *auth.Claims, deviceID string) (*subjectRefused, *activation.DeviceState, error) {
	row, ok := s.act.devices.get(deviceID, time.Now())
	if _, err := uuid.Parse(deviceID); err != nil {
		ok, row = true, activation.DeviceState{} // no such device can exist
	}
	if !ok {
		var err error
		if row, err = s.activationStore().DeviceState(ctx, deviceID); err != nil {
			return nil, nil, fmt.Errorf("check device: %w", err)
		}
		s.act.devices.put(deviceID, row, time.Now())
	}
	// iat has whole seconds: a token from the second of the revocation is
	// revoked too.
	revoked := row.RevokedAt != nil && !p.IssuedAt.After(row.RevokedAt.Truncate(time.Second))
	if row.Found && row.Active && !revoked {
		return nil, &row, nil
	}
	reason := "device inactive"
	if row.Active {
		reason = "device token revoked"
	}
	if p.SubjectType != auth.SubjectDevice {
		reason = "device " + deviceID + ": " + reason
	}
	return &subjectRefused{code: CodeDeviceInactive, message: "the device's tokens no longer work (" + reason + ")", audit: reason}, nil, nil
}

// clinicianRefusal checks a clinician token's clinician.
func (s *Server) clinicianRefusal(ctx context.Context, p *auth.Claims) (*subjectRefused, error) {
	row, err := s.cachedClinician(ctx, p.Subject)
	if err != nil {
		return nil, err
	}
	code, reason := CodeUnauthorized, ""
	switch {
	case row == nil && p.DeviceID == "":
		return nil, nil
	case row == nil:
		reason = "clinician removed"
	case row.ContractExpiry != nil && time.Now().After(endOfDay(*row.ContractExpiry, s.HospitalTZ)):
		code, reason = CodeContractExpired, "contract expired on "+row.ContractExpiry.Format(time.DateOnly)
	case !row.LoginActive:
		code, reason = CodeLoginInactive, "login inactive"
	case !inGroup(row.Groups, s.ClinicianLoginGroups):
		code, reason = CodeNotInGroup, "no longer in an allowed group"
	case slices.ContainsFunc(p.LocationIDs, func(l string) bool { return !slices.Contains(row.LocationIDs, l) }):
		reason = "no longer at every ward of the token"
	default:
		return nil, nil
	}
	return &subjectRefused{code: code, message: "the clinician token no longer works (" + reason + "); log in again",
		audit: "token refused: " + reason}, nil
}

// cachedClinician is the clinician with id (nil when there is none), read
// through the short-lived cache of the live checks.
func (s *Server) cachedClinician(ctx context.Context, id string) (*activation.Clinician, error) {
	row, ok := s.act.clinicians.get(id, time.Now())
	if !ok {
		r, err := s.activationStore().Clinician(ctx, id)
		if err != nil && !errors.Is(err, activation.ErrNotFound) {
			return nil, fmt.Errorf("check clinician: %w", err)
		}
		if err == nil {
			row = &r
		}
		s.act.clinicians.put(id, row, time.Now())
	}
	return row, nil
}

// inGroup reports whether any of groups is one of allowed (lower-case).
func inGroup(groups, allowed []string) bool {
	return slices.ContainsFunc(groups, func(g string) bool { return slices.Contains(allowed, strings.ToLower(g)) })
}

// ttlCache keeps values for a short time; a full cache drops what has
// expired, and then everything.
type ttlCache[V any] struct {
	mu  sync.Mutex
	ttl time.Duration
	m   map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v  V
	at time.Time
}

// maxTTLCacheEntries bounds a ttlCache.
const maxTTLCacheEntries = 10000

func newTTLCache[V any](ttl time.Duration) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, m: map[string]ttlEntry[V]{}}
}

func (t *ttlCache[V]) get(key string, now time.Time) (V, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[key]
	if !ok || now.Sub(e.at) >= t.ttl {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (t *ttlCache[V]) put(key string, v V, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= maxTTLCacheEntries {
		for k, e := range t.m {
			if now.Sub(e.at) >= t.ttl {
				delete(t.m, k)
			}
		}
		if len(t.m) >= maxTTLCacheEntries {
			clear(t.m)
		}
	}
	t.m[key] = ttlEntry[V]{v: v, at: now}
}

// drop forgets key: this process changed its row.
func (t *ttlCache[V]) drop(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, key)
}
