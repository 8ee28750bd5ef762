package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/activation"
	"github.com/vigil-health/vigil/internal/activation/credential"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/workflows"
)

// Activations: a patient or a ward device is activated once with a short
// code, exchanges it for a single-use authorisation code, and that for a
// token. Each activation is a workflow (activation:<kind>:<id>) that holds
// only hashes; Postgres holds the code's lookup digest so the API can find
// it, and the auth_audit trail.

// AuthorisationCodeHeader carries the authorisation code on token requests.
const AuthorisationCodeHeader = "X-Authorisation-Code"

// Scopes of subject tokens (message scopes are in messages.go).
const (
	// ScopeWriteActivation lets clinician and system tokens create patient
	// activations.
	ScopeWriteActivation = "write:activation"
	// ScopeClinicianLogin lets a device token mint clinician tokens.
	ScopeClinicianLogin = "login:clinician"
)

// Error codes of the activation and token endpoints.
const (
	CodeActivationExpired = "activation_expired"
	CodeActivationLocked  = "activation_locked"
	CodeActivationUsed    = "activation_used"
	CodeActivationChanged = "activation_changed"
	CodeWrongPIN          = "wrong_pin"
	CodeRateLimited       = "rate_limited"
	CodeDeviceInactive    = "device_inactive"
	CodeContractExpired   = "contract_expired"
	CodeLoginInactive     = "login_inactive"
	CodeNotInGroup        = "not_in_group"
	CodeWardNotAllowed    = "ward_not_allowed"
)

// Audit events (auth_audit.event).
const (
	auditActivationCreated = "activation_created"
	auditTokenIssued       = "token_issued"
	auditDeviceUpdated     = activation.AuditDeviceUpdated
	auditLoginRefused      = "login_refused"
	auditSystemToken       = "system_token_issued"
)

var (
	patientTokenScopes   = []string{ScopeReadMessage, ScopeWriteMessage}
	clinicianTokenScopes = []string{ScopeReadMessage, ScopeWriteMessage, ScopeWriteActivation}
	deviceTokenScopes    = []string{ScopeClinicianLogin}
)

// activationSettings are what activations and subject tokens need beside
// their settings (Deps.Activation): keys, a rate limit and caches.
type activationSettings struct {
	// keys is nil when no activation secret is configured: the activation
	// endpoints then answer 503.
	keys *credential.Keys
	// allWardsGroups are the clinician groups whose members may log in
	// through a device of any ward (see clinicianToken).
	allWardsGroups []string
	// limiter bounds unauthenticated code and token requests per client IP.
	limiter *ipLimiter
	// devices and clinicians cache the rows that every request with a
	// device or clinician token is checked against (see subjectLive).
	devices    *ttlCache[activation.DeviceState]
	clinicians *ttlCache[*activation.Clinician]
}

// liveCheckTTL is how long a device or clinician row is trusted by the
// per-request token checks: a change made through another API process
// takes effect within it (this process drops its copy at once).
const liveCheckTTL = 3 * time.Second

// defaultAllWardsGroups may log in through any ward's device.
var defaultAllWardsGroups = []string{"send superclinician"}

// activationDefaults fills a's zero (or, for the PIN length, out of range)
// fields with the defaults and lower-cases ClinicianLoginGroups into a
// slice of its own.
func activationDefaults(a config.Activation) config.Activation {
	if a.ActivationPINLength < credential.MinPINLength || a.ActivationPINLength > credential.MaxPINLength {
		a.ActivationPINLength = credential.DefaultPINLength
	}
	if a.ActivationExpiryDays <= 0 {
		a.ActivationExpiryDays = workflows.DefaultActivationExpiryDays
	}
	if a.ActivationMaxAttempts <= 0 {
		a.ActivationMaxAttempts = workflows.DefaultActivationMaxAttempts
	}
	if a.PatientTokenTTL <= 0 {
		a.PatientTokenTTL = config.DefaultPatientTokenTTL
	}
	if a.DeviceTokenTTL <= 0 {
		a.DeviceTokenTTL = config.DefaultDeviceTokenTTL
	}
	if a.ClinicianTokenTTL <= 0 {
		a.ClinicianTokenTTL = config.DefaultClinicianTokenTTL
	}
	groups := a.ClinicianLoginGroups
	a.ClinicianLoginGroups = nil
	for _, g := range groups {
		if g = strings.ToLower(strings.TrimSpace(g)); g != "" {
			a.ClinicianLoginGroups = append(a.ClinicianLoginGroups, g)
		}
	}
	if len(a.ClinicianLoginGroups) == 0 {
		a.ClinicianLoginGroups = []string{"send clinician", "send superclinician"}
	}
	return a
}

func newActivationSettings(d Deps) *activationSettings {
	a := &activationSettings{
		allWardsGroups: defaultAllWardsGroups,
		devices:        newTTLCache[activation.DeviceState](liveCheckTTL), clinicians: newTTLCache[*activation.Clinician](liveCheckTTL),
	}
	if len(d.ActivationSecret) > 0 {
		// A short secret leaves activations off (503) rather than weak;
		// config.Load refuses it before it gets here.
		a.keys, _ = credential.NewKeys(d.ActivationSecret)
	}
	perMinute := d.ActivationRatePerMinute
	if perMinute <= 0 {
		perMinute = 10
	}
	a.limiter = newIPLimiter(perMinute, perMinute)
	return a
}

// activationRoutes registers activations, subject tokens, devices,
// clinicians and the auth audit.
func (s *Server) activationRoutes(v1 *gin.RouterGroup) {
	staff, admin := s.requireStaff(), s.requireStaff(auth.AccessAdmin)
	limited := s.rateLimitByIP()
	keys := s.requireActivationKeys()
	v1.POST("/patients/:id/activation", s.requireActivationWriter(), keys, s.createPatientActivation)
	v1.GET("/patients/:id/activations", s.requireActivationWriter(), s.listPatientActivations)
	v1.GET("/patients/:id/token", limited, keys, s.patientToken)
	v1.POST("/activations/:code", limited, keys, s.completeActivation)

	v1.POST("/devices", admin, s.createDevice)
	v1.GET("/devices", staff, s.listDevices)
	v1.GET("/devices/:id", staff, s.getDevice)
	v1.PATCH("/devices/:id", admin, s.patchDevice)
	v1.POST("/devices/:id/activation", admin, keys, s.createDeviceActivation)
	v1.GET("/devices/:id/token", limited, keys, s.deviceToken)

	v1.POST("/clinicians", admin, s.createClinician)
	v1.GET("/clinicians", staff, s.listClinicians)
	v1.GET("/clinicians/token", s.requireSubject([]string{auth.SubjectDevice}, ScopeClinicianLogin), s.clinicianToken)
	v1.GET("/clinicians/:id", staff, s.getClinician)
	v1.PATCH("/clinicians/:id", admin, s.patchClinician)

	v1.POST("/auth/system-token", admin, s.systemToken)
	v1.GET("/auth/audit", admin, s.listAuthAudit)
}

// requireActivationWriter lets staff (any level), and clinician or system
// tokens with ScopeWriteActivation, manage patient activations (re-creating
// one needs more: see mayRecreateActivation). A clinician token must still
// be live (see subjectLive).
func (s *Server) requireActivationWriter() gin.HandlerFunc {
	return func(c *gin.Context) {
		claims, ok := s.verifyAccess(c)
		if !ok {
			return
		}
		switch claims.SubjectType {
		case auth.SubjectStaff:
		case auth.SubjectClinician, auth.SubjectSystem:
			if !hasScope(claims, ScopeWriteActivation) {
				abortWithError(c, http.StatusForbidden, CodeForbidden, "the token lacks scope "+ScopeWriteActivation, "")
				return
			}
			if !s.subjectLive(c, claims) {
				return
			}
		default:
			abortWithError(c, http.StatusForbidden, CodeForbidden, "requires a staff, clinician or system token", "")
			return
		}
		c.Set(principalKey, claims)
		c.Next()
	}
}

func hasScope(claims *auth.Claims, scope string) bool {
	return slices.Contains(claims.Scopes, ScopeAll) || slices.Contains(claims.Scopes, scope)
}

// rateLimitByIP answers 429 with Retry-After when the client IP has used up
// its budget of unauthenticated code and token requests.
func (s *Server) rateLimitByIP() gin.HandlerFunc {
	return func(c *gin.Context) {
		ok, wait := s.act.limiter.allow(c.ClientIP(), time.Now())
		if !ok {
			c.Header("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
			abortWithError(c, http.StatusTooManyRequests, CodeRateLimited, "too many attempts from this address; retry later", "")
			return
		}
		c.Next()
	}
}

// requireActivationKeys answers 503 to the routes that issue or check
// activation and authorisation codes when no activation secret is
// configured.
func (s *Server) requireActivationKeys() gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.act.keys == nil {
			abortWithError(c, http.StatusServiceUnavailable, CodeUnavailable, "activations are not configured (VIGIL_ACTIVATION_SECRET)", "")
		}
	}
}

// activationStore is the store of activations, devices, clinicians and
// the auth audit.
func (s *Server) activationStore() *activation.Store {
	return s.Stores.Activations
}

// audit writes one auth_audit row with the request's id and client IP. It
// never receives a secret.
func (s *Server) audit(ctx context.Context, c *gin.Context, event, subjectType, subjectID, actor, reason string) error {
	return s.activationStore().Audit(ctx, activation.AuthAuditEvent{Event: event, SubjectType: subjectType, SubjectID: subjectID,
		Actor: actor, Reason: reason, RequestID: requestID(c), ClientIP: c.ClientIP()})
}

// requester names the request's caller for a store's audit event.
func requester(c *gin.Context) activation.Requester {
	return activation.Requester{Actor: actor(c), RequestID: requestID(c), ClientIP: c.ClientIP()}
}

// auditRefusal records a refused login or token request; a failed write is
// logged, and the refusal stands.
func (s *Server) auditRefusal(c *gin.Context, subjectType, subjectID, actor, reason string) {
	if err := s.audit(context.WithoutCancel(c.Request.Context()), c, auditLoginRefused, subjectType, subjectID, actor, reason); err != nil {
		s.Logger.ErrorContext(c.Request.Context(), "audit login refusal", "err", err, "request_id", requestID(c))
	}
}

func actor(c *gin.Context) string {
	if p := principal(c); p != nil {
		return p.Subject
	}
	return ""
}

func requestMeta(c *gin.Context) workflows.RequestMeta {
	return workflows.RequestMeta{RequestID: requestID(c), ClientIP: c.ClientIP(), Actor: actor(c)}
}

// noStore marks a response that carries a secret as uncacheable.
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
}

// PatientActivationCreated answers POST /v1/patients/{id}/activation: the
// PIN and the code are shown this once and never stored in clear.
type PatientActivationCreated struct {
	PIN            string    `json:"pin"`
	ActivationCode string    `json:"activation_code"`
	ExpiresAt      time.Time `json:"expires_at"`
}

// DeviceActivationCreated answers POST /v1/devices/{id}/activation.
type DeviceActivationCreated struct {
	Code      string    `json:"code"`
	ExpiresAt time.Time `json:"expires_at"`
}

// subjectIDParam reads the :id path parameter as a patient's or a
// clinician's id, answering 400 when it is malformed.
func subjectIDParam(c *gin.Context) (string, bool) {
	return pathIDParam(c, workflows.ValidSubjectID, "must be 1 to 64 letters, digits, '_' or '-'")
}

// newHashedSecret makes a secret (a PIN, an authorisation code) with
// generate and hashes it with a new salt; ok is false when it has answered
// a failure (500).
func (s *Server) newHashedSecret(c *gin.Context, what string, generate func() (string, error)) (secret, hash, salt string, ok bool) {
	secret, err := generate()
	if err != nil {
		s.abortInternal(c, "new "+what, err)
		return "", "", "", false
	}
	if hash, salt, err = credential.Hash(secret); err != nil {
		s.abortInternal(c, "hash "+what, err)
		return "", "", "", false
	}
	return secret, hash, salt, true
}

// createPatientActivation issues a new PIN for the patient: a new
// activation (201), or the pending one re-created with the same code, its
// attempts reset and its expiry pushed (200).
func (s *Server) createPatientActivation(c *gin.Context) {
	pid, ok := subjectIDParam(c)
	if !ok {
		return
	}
	pin, pinHash, pinSalt, ok := s.newHashedSecret(c, "pin", func() (string, error) { return credential.NewPIN(s.ActivationPINLength) })
	if !ok {
		return
	}
	res, created, ok := s.openActivation(c, workflows.ActivationKindPatient, pid, pinHash, pinSalt)
	if !ok {
		return
	}
	noStore(c)
	c.JSON(createdStatus(created), PatientActivationCreated{PIN: pin, ActivationCode: res.code, ExpiresAt: res.expiresAt})
}

type openedActivation struct {
	code      string
	expiresAt time.Time
}

// errActivationRace means another request changed the subject's activation
// meanwhile: look again.
var errActivationRace = errors.New("activation changed concurrently")

// openActivation creates the subject's activation, or re-creates its
// pending one. Re-creating a patient's activation (a new PIN for the pending
// one, or a new activation once one has been completed) is refused unless
// mayRecreateActivation, and is audited as activation_recreated. It answers
// the request itself when it fails.
func (s *Server) openActivation(c *gin.Context, kind, subjectID, pinHash, pinSalt string) (openedActivation, bool, bool) {
	ctx := c.Request.Context()
	for range 5 {
		live, err := s.activationStore().LiveActivation(ctx, kind, subjectID)
		var res openedActivation
		created := false
		// recreated is the audit reason when this re-creates the subject's
		// activation.
		recreated := ""
		switch {
		case errors.Is(err, activation.ErrNotFound):
			if kind == workflows.ActivationKindPatient {
				redeemed, err := s.activationStore().PatientRedeemed(ctx, subjectID)
				if err != nil {
					s.abortInternal(c, "look up activations", err)
					return res, false, false
				}
				if redeemed {
					recreated = "a new activation after a completed one"
				}
			}
			if recreated != "" && !mayRecreateActivation(c, kind) {
				return res, false, false
			}
			res, err = s.startActivation(c, kind, subjectID, pinHash, pinSalt)
			created = true
		case err != nil:
			s.abortInternal(c, "look up activation", err)
			return res, false, false
		case live.State == workflows.ActivationActivated:
			abortWithError(c, http.StatusConflict, CodeActivationUsed, "the current activation was completed and its authorisation code "+
				"has not been exchanged yet; try again in "+workflows.AuthorisationCodeTTL.String(), "")
			return res, false, false
		default:
			recreated = "a new PIN for the pending activation"
			if kind == workflows.ActivationKindDevice {
				recreated = "a new code for the pending activation"
			}
			if !mayRecreateActivation(c, kind) {
				return res, false, false
			}
			// The stored workflow ID: a run started before patient ids were
			// pseudonymised keeps its old ID.
			res, err = s.recreateActivation(c, kind, live.WorkflowID, live.ID, pinHash, pinSalt)
		}
		if errors.Is(err, errActivationRace) {
			select {
			case <-ctx.Done():
				abortWithError(c, http.StatusGatewayTimeout, CodeTimeout, "the request ended", "")
				return res, false, false
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return res, false, false // answered
		}
		if recreated != "" {
			s.auditEvent(c, auditActivationRecreated, kind, subjectID, recreated)
		}
		return res, created, true
	}
	abortWithError(c, http.StatusConflict, CodeActivationChanged, "the activation is changing; retry", "")
	return openedActivation{}, false, false
}

// mayRecreateActivation reports whether the caller may re-create a
// patient's activation, and otherwise answers 403. Whoever re-creates it
// gets the new PIN and with it the patient's token and messages, so only
// charge and admin staff and system tokens may; plain staff and clinician
// tokens may create a patient's first activation only (no patient record
// ties patients to wards, so a ward's clinicians cannot be told apart).
// Device activations are admin-only already.
func mayRecreateActivation(c *gin.Context, kind string) bool {
	p := principal(c)
	if kind != workflows.ActivationKindPatient || p == nil {
		return true
	}
	switch {
	case p.SubjectType == auth.SubjectSystem:
		return true
	case p.SubjectType == auth.SubjectStaff && (p.Access == auth.AccessCharge || p.Access == auth.AccessAdmin):
		return true
	}
	abortWithError(c, http.StatusForbidden, CodeForbidden, "re-creating a patient's activation (a new PIN while one is pending, "+
		"or a new activation after a completed one) requires charge or admin access or a system token", "")
	return false
}

// activationWorkflowID is the workflow ID of a new activation of the
// subject: for a patient it holds a keyed pseudonym of the patient id
// (HMAC-SHA256 under the activation secret's lookup key, 128 bits), never
// the id, which is often guessable; for a device its id.
func (s *Server) activationWorkflowID(kind, subjectID string) string {
	if kind == workflows.ActivationKindPatient {
		return workflows.ActivationWorkflowID(kind, s.act.keys.Digest("activation-subject:patient:" + subjectID)[:32])
	}
	return workflows.ActivationWorkflowID(kind, subjectID)
}

// codeMaterial makes the code of an activation: derived from its id for a
// patient (so it survives re-creation without being stored), random for a
// device.
func (s *Server) codeMaterial(kind, activationID string) (code, digest, hash, salt string, err error) {
	if kind == workflows.ActivationKindPatient {
		code = s.act.keys.PatientActivationCode(activationID)
	} else if code, err = credential.NewDeviceCode(); err != nil {
		return "", "", "", "", err
	}
	hash, salt, err = credential.Hash(code)
	return code, s.act.keys.Digest(code), hash, salt, err
}

// startActivation stores a new activation and starts its workflow; if the
// workflow cannot start, the row is removed again.
func (s *Server) startActivation(c *gin.Context, kind, subjectID, pinHash, pinSalt string) (openedActivation, error) {
	ctx := c.Request.Context()
	id := uuid.NewString()
	code, digest, codeHash, codeSalt, err := s.codeMaterial(kind, id)
	if err != nil {
		s.abortInternal(c, "activation code", err)
		return openedActivation{}, err
	}
	expires := workflows.ActivationExpiry(time.Now(), s.HospitalTZ, s.ActivationExpiryDays)
	wfID := s.activationWorkflowID(kind, subjectID)
	err = s.activationStore().InsertActivation(ctx, activation.NewActivation{ID: id, Kind: kind, SubjectID: subjectID, WorkflowID: wfID,
		CodeDigest: digest, CodeHash: codeHash, CodeSalt: codeSalt, PinSalt: pinSalt, ExpiresAt: expires, CreatedBy: actor(c)})
	if errors.Is(err, activation.ErrActivationClash) {
		return openedActivation{}, errActivationRace // a concurrent creation, or a device code collision
	}
	if err != nil {
		s.abortInternal(c, "store activation", err)
		return openedActivation{}, err
	}
	_, err = s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       wfID,
		TaskQueue:                                s.TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(workflows.VigilKindKey.ValueSet(workflows.KindActivation)),
		// Kind and device id only: a patient is never named in a run.
		StaticSummary: workflows.ActivationSummary(kind, workflowSubject(kind, subjectID)),
		StaticDetails: workflows.ActivationDetails(kind, expires, s.ActivationMaxAttempts),
	}, workflows.Activation, &workflows.ActivationInput{
		ActivationID: id, Kind: kind, SubjectID: workflowSubject(kind, subjectID), ExpiresAt: expires, MaxAttempts: s.ActivationMaxAttempts,
		Hashes: workflows.ActivationHashes{CodeHash: codeHash, CodeSalt: codeSalt, PinHash: pinHash, PinSalt: pinSalt},
	})
	if err != nil {
		if derr := s.activationStore().DeleteActivation(context.WithoutCancel(ctx), id); derr != nil {
			s.Logger.ErrorContext(ctx, "remove unstarted activation", "err", derr, "request_id", requestID(c))
		}
		if workflowAlreadyStarted(err) {
			return openedActivation{}, errActivationRace // the previous run is still finishing
		}
		s.abortTemporal(c, "start activation", err)
		return openedActivation{}, err
	}
	if err := s.audit(ctx, c, auditActivationCreated, kind, subjectID, actor(c), "created"); err != nil {
		s.Logger.ErrorContext(ctx, "audit activation", "err", err, "request_id", requestID(c))
	}
	return openedActivation{code: code, expiresAt: expires}, nil
}

// workflowSubject is the subject id an activation workflow is given: the
// device id, and nothing for a patient (patient ids stay out of workflow
// histories).
func workflowSubject(kind, subjectID string) string {
	if kind == workflows.ActivationKindPatient {
		return ""
	}
	return subjectID
}

// recreateActivation sends the pending activation (workflow wfID) a new PIN
// (patient) or code (device) and a later expiry.
func (s *Server) recreateActivation(c *gin.Context, kind, wfID, activationID, pinHash, pinSalt string) (openedActivation, error) {
	ctx := c.Request.Context()
	code, digest, codeHash, codeSalt, err := s.codeMaterial(kind, activationID)
	if err != nil {
		s.abortInternal(c, "activation code", err)
		return openedActivation{}, err
	}
	expires := workflows.ActivationExpiry(time.Now(), s.HospitalTZ, s.ActivationExpiryDays)
	err = s.updateActivation(ctx, wfID, workflows.ActivationUpdateRecreate, &workflows.RecreateRequest{
		ActivationID: activationID, CodeDigest: digest, ExpiresAt: expires, Meta: requestMeta(c),
		Hashes: workflows.ActivationHashes{CodeHash: codeHash, CodeSalt: codeSalt, PinHash: pinHash, PinSalt: pinSalt},
	}, nil)
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return openedActivation{code: code, expiresAt: expires}, nil
	case workflowGone(err):
		// No workflow behind the row (a crash between insert and start):
		// retire the row and start afresh.
		if err := s.activationStore().RetireOrphanActivation(ctx, activationID); err != nil {
			s.abortInternal(c, "retire orphan activation", err)
			return openedActivation{}, err
		}
		return openedActivation{}, errActivationRace
	case rejectedAs(err, workflows.RejectActivationUsed):
		s.abortActivation(c, err)
		return openedActivation{}, err
	case errors.As(err, &appErr) && slices.Contains([]string{workflows.RejectActivationExpired, workflows.RejectActivationLocked,
		workflows.RejectActivationStale, activation.ErrTypeCodeCollision}, appErr.Type()):
		// Ending (its final state is being recorded), replaced, or a code
		// collision: look again.
		return openedActivation{}, errActivationRace
	default:
		s.abortActivation(c, err)
		return openedActivation{}, err
	}
}

// updateActivation sends an Update and waits for its result.
func (s *Server) updateActivation(ctx context.Context, workflowID, name string, arg, out any) error {
	h, err := s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflowID, UpdateName: name, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return err
	}
	return h.Get(ctx, out)
}

// abortActivation answers an activation workflow's rejection.
func (s *Server) abortActivation(c *gin.Context, err error) {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		s.abortTemporal(c, "activation update", err)
		return
	}
	switch appErr.Type() {
	case workflows.RejectActivationExpired:
		abortWithError(c, http.StatusGone, CodeActivationExpired, "the activation has expired; ask for a new one", "")
	case workflows.RejectActivationLocked:
		abortWithError(c, http.StatusForbidden, CodeActivationLocked, "the activation is locked after too many wrong PINs or codes; ask for a new one", "")
	case workflows.RejectActivationUsed:
		abortWithError(c, http.StatusConflict, CodeActivationUsed, appErr.Message(), "")
	case workflows.RejectActivationStale, activation.ErrTypeCodeCollision:
		abortWithError(c, http.StatusConflict, CodeActivationChanged, "the activation changed meanwhile; retry", "")
	case workflows.RejectInvalid:
		abortWithError(c, http.StatusBadRequest, CodeInvalidField, appErr.Message(), "")
	default:
		s.abortInternal(c, "activation update", err)
	}
}

// abortActivationState answers for an activation that is no longer pending.
func abortActivationState(c *gin.Context, state string) {
	switch state {
	case workflows.ActivationExpired:
		abortWithError(c, http.StatusGone, CodeActivationExpired, "the activation has expired; ask for a new one", "")
	case workflows.ActivationLocked:
		abortWithError(c, http.StatusForbidden, CodeActivationLocked, "the activation is locked after too many wrong PINs or codes; ask for a new one", "")
	default:
		abortWithError(c, http.StatusConflict, CodeActivationUsed, "the activation has already been used", "")
	}
}

// activationAttempt is the body of POST /v1/activations/{code}.
type activationAttempt struct {
	PIN *string `json:"pin"`
}

// activationKind reads ?type: patient (the default) or device.
func activationKind(c *gin.Context) (string, *fieldError) {
	switch t := c.Query("type"); t {
	case "", workflows.ActivationKindPatient:
		return workflows.ActivationKindPatient, nil
	case workflows.ActivationKindDevice:
		return workflows.ActivationKindDevice, nil
	default:
		return "", invalid("type", "must be patient or device")
	}
}

// decodeActivationAttempt reads ?type, the path's code and the body, and
// answers 4xx naming the field when one is bad. It touches no store.
func decodeActivationAttempt(c *gin.Context, pinLength int) (kind, code, pin string, ok bool) {
	kind, fe := activationKind(c)
	if fe != nil {
		abortInvalid(c, fe)
		return "", "", "", false
	}
	var req activationAttempt
	if !decodeJSON(c, &req, true) {
		return "", "", "", false
	}
	code, pin, fe = checkActivationAttempt(kind, c.Param("code"), req, pinLength)
	if fe != nil {
		abortInvalid(c, fe)
		return "", "", "", false
	}
	return kind, code, pin, true
}

// checkActivationAttempt validates an attempt's code and PIN (already
// decoded); it never touches a store, so fuzz tests drive it directly.
func checkActivationAttempt(kind, rawCode string, req activationAttempt, pinLength int) (code, pin string, fe *fieldError) {
	code = credential.NormalizeCode(rawCode)
	switch kind {
	case workflows.ActivationKindDevice:
		if !credential.Valid(code, credential.Digits, credential.DeviceCodeLength) {
			return "", "", invalid("code", "must be the 9-digit device code")
		}
		if req.PIN != nil {
			return "", "", invalid("pin", "devices are activated without a PIN")
		}
		return code, "", nil
	default:
		if !credential.Valid(code, credential.CodeAlphabet, credential.ActivationCodeLength) {
			return "", "", invalid("code", "must be the 30-character activation code")
		}
		if req.PIN == nil || *req.PIN == "" {
			return "", "", invalid("pin", "is required")
		}
		pin = credential.NormalizeCode(*req.PIN)
		if !credential.Valid(pin, credential.PINAlphabet, pinLength) {
			return "", "", invalid("pin", "must be the "+strconv.Itoa(pinLength)+"-character PIN")
		}
		return code, pin, nil
	}
}

// ActivationCompleted answers a successful POST /v1/activations/{code}: the
// authorisation code is shown this once.
type ActivationCompleted struct {
	AuthorisationCode string `json:"authorisation_code"`
	PatientID         string `json:"patient_id,omitempty"`
	DeviceID          string `json:"device_id,omitempty"`
}

// completeActivation checks an activation code (and a patient's PIN) and
// answers a single-use authorisation code. An unknown code gets 404; a
// known one that can no longer be used says why (410 expired, 403 locked,
// 409 used); a wrong PIN is 403 with the attempts left.
func (s *Server) completeActivation(c *gin.Context) {
	kind, code, pin, ok := decodeActivationAttempt(c, s.ActivationPINLength)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	row, err := s.activationStore().ActivationByCode(ctx, kind, s.act.keys.Digest(code))
	if errors.Is(err, activation.ErrNotFound) || (err == nil && !credential.Verify(code, row.CodeHash, row.CodeSalt)) {
		s.activationStep(kind, "attempt", "refused")
		abortWithError(c, http.StatusNotFound, CodeNotFound, "unknown activation code", "")
		return
	}
	if err != nil {
		s.abortInternal(c, "look up activation", err)
		return
	}
	if row.State != workflows.ActivationPending {
		s.activationStep(kind, "attempt", stateOutcome(row.State))
		abortActivationState(c, row.State)
		return
	}
	if time.Now().After(row.ExpiresAt) {
		s.activationStep(kind, "attempt", "expired")
		abortActivationState(c, workflows.ActivationExpired)
		return
	}
	authCode, authHash, authSalt, ok := s.newHashedSecret(c, "authorisation code", credential.NewAuthorisationCode)
	if !ok {
		return
	}
	att := &workflows.AttemptRequest{AuthCodeHash: authHash, AuthCodeSalt: authSalt, Meta: requestMeta(c), PinSalt: row.PinSalt}
	// Verify succeeded with this salt, so these cannot fail.
	att.CodeHash, _ = credential.HashWithSalt(code, row.CodeSalt)
	if kind == workflows.ActivationKindPatient {
		if att.PinHash, err = credential.HashWithSalt(pin, row.PinSalt); err != nil {
			s.abortInternal(c, "hash pin", err)
			return
		}
	}
	var res workflows.AttemptResult
	err = s.updateActivation(ctx, row.WorkflowID, workflows.ActivationUpdateAttempt, att, &res)
	if workflowGone(err) {
		// The workflow ended since the row was read: say how.
		state, err := s.activationStore().ActivationState(ctx, row.ID)
		if err != nil {
			s.abortInternal(c, "re-read activation", err)
			return
		}
		s.activationStep(kind, "attempt", stateOutcome(state))
		abortActivationState(c, state)
		return
	}
	if err != nil {
		s.abortActivation(c, err)
		return
	}
	switch res.Outcome {
	case workflows.AttemptActivated:
		s.activationStep(kind, "attempt", "ok")
		noStore(c)
		out := ActivationCompleted{AuthorisationCode: authCode}
		if kind == workflows.ActivationKindPatient {
			out.PatientID = row.SubjectID
		} else {
			out.DeviceID = row.SubjectID
		}
		c.JSON(http.StatusOK, out)
	case workflows.AttemptLocked:
		s.activationStep(kind, "attempt", "locked")
		abortWithError(c, http.StatusForbidden, CodeActivationLocked, "wrong PIN; the activation is now locked; ask for a new one", "pin")
	default:
		s.activationStep(kind, "attempt", "refused")
		abortWithError(c, http.StatusForbidden, CodeWrongPIN, "wrong PIN; "+strconv.Itoa(res.AttemptsLeft)+" attempts left", "pin")
	}
}

// SubjectToken answers a patient, device, clinician or system token request.
type SubjectToken struct {
	Token       string    `json:"token"`
	TokenType   string    `json:"token_type"`
	ExpiresAt   time.Time `json:"expires_at"`
	ExpiresIn   int       `json:"expires_in"`
	Subject     string    `json:"sub"`
	SubjectType string    `json:"sub_type"`
}

// authorisationCodeHeader reads and checks X-Authorisation-Code.
func authorisationCodeHeader(c *gin.Context) (string, *fieldError) {
	raw := c.GetHeader(AuthorisationCodeHeader)
	if raw == "" {
		return "", invalid(AuthorisationCodeHeader, "the header is required")
	}
	code := credential.NormalizeCode(raw)
	if !credential.Valid(code, credential.CodeAlphabet, credential.AuthorisationCodeLength) {
		return "", invalid(AuthorisationCodeHeader, "must be the 32-character authorisation code")
	}
	return code, nil
}

// authorisationCode is authorisationCodeHeader for a handler: it answers
// 400 itself, and ok is false, when the header is missing or malformed.
func authorisationCode(c *gin.Context) (code string, ok bool) {
	code, fe := authorisationCodeHeader(c)
	if fe != nil {
		abortInvalid(c, fe)
		return "", false
	}
	return code, true
}

// redeemAuthorisationCode exchanges the subject's authorisation code, once.
// A wrong code for a device whose activation is waiting for it counts, in
// the workflow, and the MaxAttempts-th locks the activation (403, audited
// as device_code_locked). It answers the request itself when it refuses.
func (s *Server) redeemAuthorisationCode(c *gin.Context, kind, subjectID, code string) bool {
	ctx := c.Request.Context()
	row, err := s.activationStore().LatestAuthorised(ctx, kind, subjectID)
	wrong := err == nil && !credential.Verify(code, row.AuthCodeHash, row.AuthCodeSalt)
	counted := wrong && kind == workflows.ActivationKindDevice && row.State == workflows.ActivationActivated
	if errors.Is(err, activation.ErrNotFound) || (wrong && !counted) {
		s.activationStep(kind, "exchange", "refused")
		s.auditRefusal(c, kind, subjectID, "", "unknown or wrong authorisation code")
		abortWithError(c, http.StatusNotFound, CodeNotFound, "unknown "+kind+" or authorisation code", "")
		return false
	}
	if err != nil {
		s.abortInternal(c, "look up authorisation code", err)
		return false
	}
	refuse := func(state string) bool {
		s.activationStep(kind, "exchange", stateOutcome(state))
		reason := "authorisation code " + state
		if state == workflows.ActivationRedeemed {
			reason = "authorisation code already used"
		}
		s.auditRefusal(c, kind, subjectID, "", reason)
		if state == workflows.ActivationRedeemed {
			abortWithError(c, http.StatusConflict, CodeActivationUsed, "the authorisation code has already been used", "")
		} else {
			abortActivationState(c, state)
		}
		return false
	}
	if row.State != workflows.ActivationActivated {
		return refuse(row.State)
	}
	// A wrong code is sent too (a device's), as its hash under the stored
	// salt: the workflow counts it.
	hash, _ := credential.HashWithSalt(code, row.AuthCodeSalt)
	var res workflows.RedeemResult
	err = s.updateActivation(ctx, row.WorkflowID, workflows.ActivationUpdateRedeem,
		&workflows.RedeemRequest{AuthCodeHash: hash, Meta: requestMeta(c)}, &res)
	switch {
	case workflowGone(err):
		state, err := s.activationStore().ActivationState(ctx, row.ID)
		if err != nil {
			s.abortInternal(c, "re-read activation", err)
			return false
		}
		return refuse(state)
	case rejectedAs(err, workflows.RejectActivationUsed):
		return refuse(workflows.ActivationRedeemed)
	case rejectedAs(err, workflows.RejectActivationExpired):
		return refuse(workflows.ActivationExpired)
	case rejectedAs(err, workflows.RejectActivationLocked):
		return refuse(workflows.ActivationLocked)
	case err != nil:
		s.abortActivation(c, err)
		return false
	case res.Locked:
		s.activationStep(kind, "exchange", "locked")
		s.auditRefusal(c, kind, subjectID, "", "wrong authorisation code; activation locked")
		abortWithError(c, http.StatusForbidden, CodeActivationLocked, "wrong authorisation code; the activation is now locked "+
			"after too many wrong codes; create a new one", "")
		return false
	case !res.Redeemed:
		s.activationStep(kind, "exchange", "refused")
		s.auditRefusal(c, kind, subjectID, "", "wrong authorisation code")
		abortWithError(c, http.StatusNotFound, CodeNotFound, "unknown "+kind+" or authorisation code", "")
		return false
	}
	s.activationStep(kind, "exchange", "ok")
	return true
}

// activationStep counts one activation step's outcome (metrics.AccessMetrics).
func (s *Server) activationStep(kind, step, outcome string) {
	s.Metrics.Access().ActivationStep(kind, step, outcome)
}

// stateOutcome is the metrics outcome of a refusal for an activation's
// state: expired, locked, or used (activated or redeemed already).
func stateOutcome(state string) string {
	switch state {
	case workflows.ActivationExpired:
		return "expired"
	case workflows.ActivationLocked:
		return "locked"
	}
	return "used"
}

// issueSubjectToken signs a token, audits it first (no audit, no token) and
// answers it.
func (s *Server) issueSubjectToken(c *gin.Context, claims auth.Claims, ttl time.Duration, auditActor, reason string) {
	if s.Signer == nil {
		abortWithError(c, http.StatusServiceUnavailable, CodeUnavailable, "authentication is not configured", "")
		return
	}
	claims.TokenType = auth.TokenAccess
	event := auditTokenIssued
	if claims.SubjectType == auth.SubjectSystem {
		event = auditSystemToken
	}
	if err := s.audit(c.Request.Context(), c, event, claims.SubjectType, claims.Subject, auditActor, reason); err != nil {
		s.abortInternal(c, "audit token", err)
		return
	}
	token, exp, err := s.Signer.Issue(claims, ttl)
	if err != nil {
		s.abortInternal(c, "issue token", err)
		return
	}
	s.Metrics.Access().TokenIssued(claims.SubjectType)
	noStore(c)
	c.JSON(http.StatusOK, SubjectToken{Token: token, TokenType: "Bearer", ExpiresAt: exp, ExpiresIn: int(time.Until(exp) / time.Second),
		Subject: claims.Subject, SubjectType: claims.SubjectType})
}

// patientToken exchanges the patient's authorisation code for a patient
// token, once.
func (s *Server) patientToken(c *gin.Context) {
	pid, ok := subjectIDParam(c)
	if !ok {
		return
	}
	code, ok := authorisationCode(c)
	if !ok {
		return
	}
	if !s.redeemAuthorisationCode(c, workflows.ActivationKindPatient, pid, code) {
		return
	}
	s.issueSubjectToken(c, auth.Claims{Subject: pid, SubjectType: auth.SubjectPatient, Scopes: patientTokenScopes},
		s.PatientTokenTTL, "", "activation")
}

// ActivationView is an activation without its secrets.
type ActivationView = activation.Summary

// listPatientActivations lists a patient's activations, newest first.
func (s *Server) listPatientActivations(c *gin.Context) {
	pid, ok := subjectIDParam(c)
	if !ok {
		return
	}
	limit, fe := intParam(c, "limit", 20, 1, 100)
	if fe != nil {
		abortInvalid(c, fe)
		return
	}
	items, err := s.activationStore().PatientActivations(c.Request.Context(), pid, limit)
	s.answerOK(c, "list activations", gin.H{"items": items}, err)
}
