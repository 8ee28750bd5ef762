package api

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/vigil-health/vigil/internal/activation"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/session"
	"github.com/vigil-health/vigil/workflows"
)

// ClinicianView is an external clinician who logs in through ward devices.
type ClinicianView struct {
	ClinicianID           string    `json:"clinician_id"`
	SendEntryIdentifier   *string   `json:"send_entry_identifier"`
	LoginActive           bool      `json:"login_active"`
	Groups                []string  `json:"groups"`
	LocationIDs           []string  `json:"location_ids"`
	ContractExpiryEODDate *string   `json:"contract_expiry_eod_date"`
	CreatedBy             string    `json:"created_by"`
	CreatedAt             time.Time `json:"created_at"`
	UpdatedAt             time.Time `json:"updated_at"`
}

// clinicianView renders a clinician.
func clinicianView(r activation.Clinician) ClinicianView {
	v := ClinicianView{ClinicianID: r.ClinicianID, SendEntryIdentifier: r.SendEntryIdentifier, LoginActive: r.LoginActive,
		Groups: nonNil(r.Groups), LocationIDs: nonNil(r.LocationIDs), CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if r.ContractExpiry != nil {
		d := r.ContractExpiry.Format(time.DateOnly)
		v.ContractExpiryEODDate = &d
	}
	return v
}

// clinicianRequest is the body of POST /v1/clinicians and PATCH
// /v1/clinicians/{id}. An empty send_entry_identifier or
// contract_expiry_eod_date clears it.
type clinicianRequest struct {
	ClinicianID           *string   `json:"clinician_id"`
	SendEntryIdentifier   *string   `json:"send_entry_identifier"`
	LoginActive           *bool     `json:"login_active"`
	Groups                *[]string `json:"groups"`
	LocationIDs           *[]string `json:"location_ids"`
	ContractExpiryEODDate *string   `json:"contract_expiry_eod_date"`
}

var sendEntryIdentifierPattern = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)

// clinicianFields are a validated request's values.
type clinicianFields struct {
	identifier *string // nil: unchanged; "" clears
	expiry     *string // nil: unchanged; "" clears
	groups     []string
	locations  []string
}

// check validates the fields present; create requires clinician_id and
// login_active. Groups are lower-cased.
func (r *clinicianRequest) check(create bool) (clinicianFields, *fieldError) {
	var f clinicianFields
	switch {
	case create && r.ClinicianID == nil:
		return f, invalid("clinician_id", "is required")
	case create && !workflows.ValidSubjectID(*r.ClinicianID):
		return f, invalid("clinician_id", "must be 1 to 64 letters, digits, '_' or '-'")
	case !create && r.ClinicianID != nil:
		return f, invalid("clinician_id", "cannot change")
	case create && r.LoginActive == nil:
		return f, invalid("login_active", "is required")
	}
	if r.SendEntryIdentifier != nil {
		if *r.SendEntryIdentifier != "" && !sendEntryIdentifierPattern.MatchString(*r.SendEntryIdentifier) {
			return f, invalid("send_entry_identifier", "must be 1 to 64 letters, digits, '_', '.', '@' or '-'")
		}
		f.identifier = r.SendEntryIdentifier
	}
	var fe *fieldError
	if r.Groups != nil {
		if f.groups, fe = distinctValues("groups", *r.Groups, 20, "at most 20 groups", cleanGroup,
			"each group must be 1 to 64 characters of text"); fe != nil {
			return f, fe
		}
	}
	if r.LocationIDs != nil {
		if f.locations, fe = distinctValues("location_ids", *r.LocationIDs, 100, "at most 100 locations", cleanLocationID,
			"must be location ids (1 to 64 letters, digits, '_', '.', ':' or '-')"); fe != nil {
			return f, fe
		}
	}
	if r.ContractExpiryEODDate != nil {
		if d := *r.ContractExpiryEODDate; d != "" {
			if _, err := time.Parse(time.DateOnly, d); err != nil {
				return f, invalid("contract_expiry_eod_date", "must be a date such as 2027-03-31")
			}
		}
		f.expiry = r.ContractExpiryEODDate
	}
	if !create && r.SendEntryIdentifier == nil && r.LoginActive == nil && r.Groups == nil && r.LocationIDs == nil && r.ContractExpiryEODDate == nil {
		return f, invalid("body", "give at least one field to change")
	}
	return f, nil
}

// distinctValues checks the values of a list field: at most most of them
// (else tooMany), each as clean makes it (clean refuses it with bad),
// repeats dropped. A list given empty stays empty, not nil.
func distinctValues(field string, values []string, most int, tooMany string, clean func(string) (string, bool), bad string) ([]string, *fieldError) {
	if len(values) > most {
		return nil, invalid(field, tooMany)
	}
	out := []string{}
	for _, v := range values {
		v, ok := clean(v)
		if !ok {
			return nil, invalid(field, bad)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// cleanGroup lower-cases a clinician group, refusing an empty or overlong
// one.
func cleanGroup(g string) (string, bool) {
	g = strings.ToLower(strings.TrimSpace(g))
	return g, g != "" && validText(g, false) && utf8.RuneCountInString(g) <= 64
}

// cleanLocationID takes a location id as it is, refusing a malformed one.
func cleanLocationID(l string) (string, bool) {
	return l, locationIDPattern.MatchString(l)
}

// decodeClinician reads and checks a clinician body, answering 4xx naming
// the field when it is bad.
func decodeClinician(c *gin.Context, create bool) (clinicianRequest, clinicianFields, bool) {
	var req clinicianRequest
	if !decodeJSON(c, &req, false) {
		return req, clinicianFields{}, false
	}
	f, fe := req.check(create)
	if fe != nil {
		abortInvalid(c, fe)
		return req, f, false
	}
	return req, f, true
}

// createClinician registers a clinician (admin); a clinician id or send
// entry identifier already in use is 409.
func (s *Server) createClinician(c *gin.Context) {
	req, f, ok := decodeClinician(c, true)
	if !ok {
		return
	}
	row, err := s.activationStore().CreateClinician(c.Request.Context(), activation.NewClinician{
		ClinicianID: *req.ClinicianID, SendEntryIdentifier: deref(f.identifier), LoginActive: *req.LoginActive,
		Groups: f.groups, LocationIDs: f.locations, ContractExpiryEODDate: deref(f.expiry), CreatedBy: actor(c),
	})
	if s.abortClinicianConflict(c, err) {
		return
	}
	answerCreated(c, "/v1/clinicians/"+row.ClinicianID, clinicianView(row))
}

// deref is *p, or "" for nil.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// abortClinicianConflict answers a failed clinician write.
func (s *Server) abortClinicianConflict(c *gin.Context, err error) bool {
	if err == nil {
		return false
	}
	var conflict *activation.ConflictError
	if errors.As(err, &conflict) {
		abortWithError(c, http.StatusConflict, CodeConflict, conflict.Error(), conflict.Field)
		return true
	}
	s.abortInternal(c, "store clinician", err)
	return true
}

func (s *Server) getClinician(c *gin.Context) {
	id, ok := subjectIDParam(c)
	if !ok {
		return
	}
	row, err := s.activationStore().Clinician(c.Request.Context(), id)
	if errors.Is(err, activation.ErrNotFound) {
		abortWithError(c, http.StatusNotFound, CodeNotFound, "no clinician "+id, "")
		return
	}
	if err != nil {
		s.abortInternal(c, "load clinician", err)
		return
	}
	c.JSON(http.StatusOK, clinicianView(row))
}

func (s *Server) listClinicians(c *gin.Context) {
	listByOffset(s, c, "list clinicians", s.activationStore().ListClinicians, clinicianView)
}

// patchClinician changes the fields given (admin).
func (s *Server) patchClinician(c *gin.Context) {
	id, ok := subjectIDParam(c)
	if !ok {
		return
	}
	req, f, ok := decodeClinician(c, false)
	if !ok {
		return
	}
	row, err := s.activationStore().PatchClinician(c.Request.Context(), id, activation.ClinicianPatch{
		SendEntryIdentifier: f.identifier, LoginActive: req.LoginActive, Groups: f.groups, LocationIDs: f.locations,
		ContractExpiryEODDate: f.expiry,
	})
	if errors.Is(err, activation.ErrNotFound) {
		abortWithError(c, http.StatusNotFound, CodeNotFound, "no clinician "+id, "")
		return
	}
	if s.abortClinicianConflict(c, err) {
		return
	}
	// This process's token checks see the change at once, others within
	// liveCheckTTL.
	s.act.clinicians.drop(id)
	c.JSON(http.StatusOK, clinicianView(row))
}

// clinicianToken mints a clinician token for a device's user, found by the
// send entry identifier: only when the clinician is login-active, in an
// allowed group, and their contract has not ended (an ended contract also
// turns login_active off). The token is tied to the device: it carries the
// device's id (and stops working with the device's tokens, see
// subjectLive) and, as its locations, the device's ward, which must be one
// of the clinician's; only a clinician of an all-wards group (send
// superclinician) logs in anywhere, with all the wards of their record.
// Locations never come from the client. Every refusal is audited with its
// reason.
func (s *Server) clinicianToken(c *gin.Context) {
	ident, ok := c.GetQuery("send_entry_identifier")
	if !ok || ident == "" {
		abortInvalid(c, invalid("send_entry_identifier", "is required"))
		return
	}
	if !sendEntryIdentifierPattern.MatchString(ident) {
		abortInvalid(c, invalid("send_entry_identifier", "must be 1 to 64 letters, digits, '_', '.', '@' or '-'"))
		return
	}
	deviceID := principal(c).Subject
	ctx := c.Request.Context()
	row, err := s.activationStore().ClinicianBySendEntryIdentifier(ctx, ident)
	if errors.Is(err, activation.ErrNotFound) {
		s.auditRefusal(c, auth.SubjectClinician, "send_entry_identifier:"+ident, deviceID, "unknown send_entry_identifier")
		abortWithError(c, http.StatusNotFound, CodeNotFound, "no clinician with that send_entry_identifier", "send_entry_identifier")
		return
	}
	if err != nil {
		s.abortInternal(c, "load clinician", err)
		return
	}
	refuse := func(code, reason string) {
		s.auditRefusal(c, auth.SubjectClinician, row.ClinicianID, deviceID, reason)
		abortWithError(c, http.StatusForbidden, code, "login refused: "+reason, "")
	}
	if row.ContractExpiry != nil && time.Now().After(endOfDay(*row.ContractExpiry, s.HospitalTZ)) {
		if row.LoginActive {
			if err := s.activationStore().EndClinicianLogin(ctx, row.ClinicianID); err != nil {
				s.abortInternal(c, "deactivate clinician", err)
				return
			}
		}
		refuse(CodeContractExpired, "contract expired on "+row.ContractExpiry.Format(time.DateOnly))
		return
	}
	if !row.LoginActive {
		refuse(CodeLoginInactive, "login inactive")
		return
	}
	if !inGroup(row.Groups, s.ClinicianLoginGroups) {
		refuse(CodeNotInGroup, "not in an allowed group ("+strings.Join(s.ClinicianLoginGroups, ", ")+")")
		return
	}
	ward := ""
	if dev := liveDevice(c); dev != nil {
		ward = dev.LocationID
	} else if p := principal(c); len(p.LocationIDs) == 1 {
		ward = p.LocationIDs[0]
	}
	locations := nonNil(row.LocationIDs)
	if !inGroup(row.Groups, s.act.allWardsGroups) {
		if ward == "" || !slices.Contains(row.LocationIDs, ward) {
			refuse(CodeWardNotAllowed, "not a clinician of the device's ward "+ward+" (an all-wards group is "+
				strings.Join(s.act.allWardsGroups, ", ")+")")
			return
		}
		locations = []string{ward}
	}
	s.issueSubjectToken(c, auth.Claims{Subject: row.ClinicianID, SubjectType: auth.SubjectClinician, Scopes: clinicianTokenScopes,
		LocationIDs: locations, DeviceID: deviceID}, s.ClinicianTokenTTL, deviceID, "via device "+deviceID+" at "+ward)
}

// endOfDay is the last instant of a calendar date in loc.
func endOfDay(date time.Time, loc *time.Location) time.Time {
	return time.Date(date.Year(), date.Month(), date.Day(), 23, 59, 59, int(999*time.Millisecond), loc)
}

// systemTokenRequest is the body of POST /v1/auth/system-token.
type systemTokenRequest struct {
	SystemID   string `json:"system_id"`
	TTLSeconds *int   `json:"ttl_seconds"`
}

var systemIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Bounds of system tokens' lifetime.
const (
	defaultSystemTokenTTL = 15 * time.Minute
	maxSystemTokenTTL     = time.Hour
)

// check validates a system token request and returns the TTL.
func (r *systemTokenRequest) check() (time.Duration, *fieldError) {
	if !systemIDPattern.MatchString(r.SystemID) {
		return 0, invalid("system_id", "must be 1 to 64 letters, digits, '_', '.' or '-'")
	}
	if r.TTLSeconds == nil {
		return defaultSystemTokenTTL, nil
	}
	if *r.TTLSeconds < 60 || *r.TTLSeconds > int(maxSystemTokenTTL/time.Second) {
		return 0, invalid("ttl_seconds", "must be 60 to 3600")
	}
	return time.Duration(*r.TTLSeconds) * time.Second, nil
}

// decodeSystemToken reads and checks a system token request, answering 4xx
// naming the field when it is bad.
func decodeSystemToken(c *gin.Context) (systemTokenRequest, time.Duration, bool) {
	var req systemTokenRequest
	if !decodeJSON(c, &req, false) {
		return req, 0, false
	}
	ttl, fe := req.check()
	if fe != nil {
		abortInvalid(c, fe)
		return req, 0, false
	}
	return req, ttl, true
}

// systemToken mints a short-lived token with every scope for an internal
// service (admin), audited.
func (s *Server) systemToken(c *gin.Context) {
	req, ttl, ok := decodeSystemToken(c)
	if !ok {
		return
	}
	// The token belongs to a session, so an admin can revoke it before it
	// expires (DELETE /v1/auth/sessions/{id}).
	opened, err := s.sessionStore().Open(c.Request.Context(), session.Open{
		SubjectType: auth.SubjectSystem, SubjectID: req.SystemID, Origin: session.OriginSystemToken, Lifetime: ttl,
		ClientIP: c.ClientIP(), UserAgent: c.Request.UserAgent(),
	})
	if err != nil {
		s.abortStore(c, "open system token session", err)
		return
	}
	s.issueSubjectToken(c, auth.Claims{Subject: req.SystemID, SubjectType: auth.SubjectSystem, Scopes: []string{ScopeAll},
		SessionID: opened.ID}, ttl, actor(c), "ttl "+strconv.Itoa(int(ttl/time.Second))+"s, session "+opened.ID)
}

// AuthAuditEntry is one auth_audit row.
type AuthAuditEntry = activation.AuditEntry

var authAuditEvents = []string{auditActivationCreated, "attempt_failed", "locked", "completed", "expired",
	auditTokenIssued, auditDeviceUpdated, auditLoginRefused, auditSystemToken,
	auditLogin, auditLoginThrottled, auditLogout, auditSessionRevoked, auditRefreshReused, auditPasswordChanged,
	auditPasswordReset, auditStaffAccessChanged, auditSourceActionRefused, auditActivationRecreated, auditDeviceCodeLocked,
	auditRateLimited}

// listAuthAudit pages through the auth audit, newest first (admin); before
// is the id cursor from the previous page.
func (s *Server) listAuthAudit(c *gin.Context) {
	limit, before, fe := idPage(c)
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	events, fe := enumListParam(c, "event", authAuditEvents)
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	subjectType := c.Query("subject_type")
	if subjectType != "" && !slices.Contains([]string{auth.SubjectPatient, auth.SubjectDevice, auth.SubjectClinician, auth.SubjectSystem}, subjectType) {
		abortInvalid(c, invalid("subject_type", "must be patient, device, clinician or system"))
		return
	}
	subjectID := c.Query("subject_id")
	if !validText(subjectID, false) || len(subjectID) > 200 {
		abortInvalid(c, invalid("subject_id", "must be at most 200 characters of text"))
		return
	}
	items, err := s.activationStore().ListAuthAudit(c.Request.Context(), activation.AuditFilter{
		Before: before, Events: events, SubjectType: subjectType, SubjectID: subjectID, Limit: limit,
	})
	if err != nil {
		s.abortInternal(c, "list auth audit", err)
		return
	}
	c.JSON(http.StatusOK, idPageBody(items, limit, func(e activation.AuditEntry) int64 { return e.ID }))
}
