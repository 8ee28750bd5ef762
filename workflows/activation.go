package workflows

import (
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/activation"
)

var activationActivities *activities.Activations

// Activation is one patient or device activation, from its creation to its
// end: a durable timer expires it at the end of its last day; attempts
// (Updates) check the code and PIN hashes, and the MaxAttempts-th wrong PIN
// locks it; success stores a single-use authorisation code's hash, which a
// redeem Update exchanges once within AuthorisationCodeTTL (for a device,
// the MaxAttempts-th wrong authorisation code locks it too). Every change is
// recorded in Postgres with an audit event. The workflow only ever holds
// hashes, salts and digests, and never a patient id.
func Activation(ctx workflow.Context, in *ActivationInput) (*ActivationResult, error) {
	if in == nil || in.ActivationID == "" || in.Hashes.CodeHash == "" || in.ExpiresAt.IsZero() ||
		(in.Kind != ActivationKindPatient && in.Kind != ActivationKindDevice) ||
		(in.Kind == ActivationKindPatient && in.Hashes.PinHash == "") ||
		(in.Kind == ActivationKindDevice && in.SubjectID == "") {
		return nil, temporal.NewNonRetryableApplicationError("activation id, kind, device id, hashes and expiry are required", "InvalidInput", nil)
	}
	a := &activationRun{in: in, hashes: in.Hashes, st: ActivationState{
		ActivationID: in.ActivationID, Kind: in.Kind, SubjectID: in.SubjectID, State: ActivationPending,
		MaxAttempts: in.MaxAttempts, ExpiresAt: in.ExpiresAt,
	}}
	if a.st.MaxAttempts <= 0 {
		a.st.MaxAttempts = DefaultActivationMaxAttempts
	}
	a.mu = workflow.NewMutex(ctx)
	if err := a.setup(ctx); err != nil {
		return nil, err
	}
	return a.run(ctx)
}

type activationRun struct {
	in       *ActivationInput
	st       ActivationState
	hashes   ActivationHashes
	authHash string
	// changes counts handled updates, to wake the main loop's timer.
	changes int
	// seq numbers recorded events, for their idempotency keys.
	seq int
	// mu serialises the handlers: each records its change before it applies
	// it, and two attempts must not both count from the same number.
	mu workflow.Mutex
}

func (a *activationRun) final() bool {
	switch a.st.State {
	case ActivationRedeemed, ActivationExpired, ActivationLocked:
		return true
	}
	return false
}

// deadline is when the current stage ends: the activation's expiry while
// pending, the authorisation code's once activated.
func (a *activationRun) deadline() time.Time {
	if a.st.State == ActivationActivated {
		return a.st.ActivatedAt.Add(AuthorisationCodeTTL)
	}
	return a.st.ExpiresAt
}

func (a *activationRun) expired(ctx workflow.Context) bool {
	return workflow.Now(ctx).After(a.deadline())
}

func rejectActivation(kind, msg string) error { return temporal.NewApplicationError(msg, kind) }

// usable rejects any update once the activation has ended.
func (a *activationRun) usable(ctx workflow.Context) error {
	switch {
	case a.st.State == ActivationLocked:
		return rejectActivation(RejectActivationLocked, "the activation is locked after too many wrong PINs or codes")
	case a.st.State == ActivationExpired || (!a.final() && a.expired(ctx)):
		return rejectActivation(RejectActivationExpired, "the activation has expired")
	case a.st.State == ActivationRedeemed:
		return rejectActivation(RejectActivationUsed, "the authorisation code has been used")
	}
	return nil
}

func (a *activationRun) setup(ctx workflow.Context) error {
	if err := workflow.SetQueryHandlerWithOptions(ctx, ActivationQueryState, func() (ActivationState, error) { return a.st, nil },
		workflow.QueryHandlerOptions{Description: "The activation's stage, attempts and expiry (no secrets)."}); err != nil {
		return fmt.Errorf("register query: %w", err)
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, ActivationUpdateRecreate, serialised(a, a.validateRecreate, a.recreate),
		workflow.UpdateHandlerOptions{Validator: a.validateRecreate,
			Description: "Re-issue a pending activation: a new PIN (patient) or code (device), attempts reset, a later expiry."}); err != nil {
		return fmt.Errorf("register update: %w", err)
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, ActivationUpdateAttempt, serialised(a, a.validateAttempt, a.attempt),
		workflow.UpdateHandlerOptions{Validator: a.validateAttempt,
			Description: "Present the code (and a patient's PIN) as hashes; success stores a single-use authorisation code's hash, wrong PINs count towards the lock."}); err != nil {
		return fmt.Errorf("register update: %w", err)
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, ActivationUpdateRedeem, serialised(a, a.validateRedeem, a.redeem),
		workflow.UpdateHandlerOptions{Validator: a.validateRedeem,
			Description: "Exchange the authorisation code (as its hash) for a token, once."}); err != nil {
		return fmt.Errorf("register update: %w", err)
	}
	a.details(ctx)
	return workflow.UpsertTypedSearchAttributes(ctx, VigilKindKey.ValueSet(KindActivation))
}

// details sets the run's current details in the Web UI: its stage, wrong
// attempts and deadline. Never a secret or a patient id.
func (a *activationRun) details(ctx workflow.Context) {
	lines := []string{ActivationSummary(a.st.Kind, a.deviceID())}
	wrong := "wrong PINs"
	if a.st.Kind == ActivationKindDevice {
		wrong = "wrong codes"
	}
	stage := "Stage: " + a.st.State
	switch a.st.State {
	case ActivationPending:
		stage += fmt.Sprintf(" · %d of %d %s · expires %s", a.st.Attempts, a.st.MaxAttempts, wrong, clock(a.st.ExpiresAt))
	case ActivationActivated:
		stage += fmt.Sprintf(" at %s · authorisation code valid until %s", clock(a.st.ActivatedAt), clock(a.deadline()))
	case ActivationLocked:
		stage += fmt.Sprintf(" after %d %s", a.st.Attempts, wrong)
	}
	lines = append(lines, stage)
	workflow.SetCurrentDetails(ctx, strings.Join(lines, "\n"))
}

// deviceID is the device's id; "" for a patient (whose runs from before
// pseudonyms carry the patient id in SubjectID, which is never shown).
func (a *activationRun) deviceID() string {
	if a.st.Kind == ActivationKindDevice {
		return a.st.SubjectID
	}
	return ""
}

func (a *activationRun) run(ctx workflow.Context) (*ActivationResult, error) {
	for !a.final() {
		seen := a.changes
		a.details(ctx)
		wait := a.deadline().Sub(workflow.Now(ctx)) + time.Millisecond
		if wait > 0 {
			summary := "activation expires in " + HumanDuration(wait)
			if a.st.State == ActivationActivated {
				summary = "authorisation code expires in " + HumanDuration(wait)
			}
			if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{Timeout: wait, TimerOptions: workflow.TimerOptions{Summary: summary}},
				func() bool { return a.changes != seen || a.final() }); err != nil {
				return nil, err
			}
		}
		// A handler may be recording a change; decide only when none is.
		if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
			return nil, err
		}
		if !a.final() && a.expired(ctx) {
			a.st.State = ActivationExpired
			reason := "not completed in time"
			if !a.st.ActivatedAt.IsZero() {
				reason = "authorisation code not used in time"
			}
			if err := a.record(ctx, &activation.RecordActivationInput{FinishedAt: workflow.Now(ctx)},
				activation.AuthAuditEvent{Event: "expired", Reason: reason}); err != nil {
				return nil, err
			}
		}
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return nil, err
	}
	a.details(ctx)
	return &ActivationResult{State: a.st.State}, nil
}

func (a *activationRun) validateRecreate(ctx workflow.Context, r *RecreateRequest) error {
	if err := a.usable(ctx); err != nil {
		return err
	}
	switch {
	case r == nil || r.CodeDigest == "" || r.ExpiresAt.IsZero() ||
		(a.st.Kind == ActivationKindDevice && (r.Hashes.CodeHash == "" || r.Hashes.CodeSalt == "")) ||
		(a.st.Kind == ActivationKindPatient && (r.Hashes.PinHash == "" || r.Hashes.PinSalt == "")):
		return invalidRequest("the code's digest, the new code (device) or PIN (patient) hashes and an expiry are required")
	case r.ActivationID != a.st.ActivationID:
		return rejectActivation(RejectActivationStale, "another activation is running")
	case a.st.State != ActivationPending:
		return rejectActivation(RejectActivationUsed, "the activation has been completed; its authorisation code is waiting to be used")
	}
	return nil
}

func (a *activationRun) recreate(ctx workflow.Context, r *RecreateRequest) (ActivationState, error) {
	next := r.Hashes
	if a.st.Kind == ActivationKindPatient {
		// The patient's code never changes: it is derived from the id.
		next.CodeHash, next.CodeSalt = a.hashes.CodeHash, a.hashes.CodeSalt
	}
	err := a.recordWith(ctx, &activation.RecordActivationInput{Material: &activation.Material{
		CodeDigest: r.CodeDigest, CodeHash: next.CodeHash, CodeSalt: next.CodeSalt, PinSalt: next.PinSalt, ExpiresAt: r.ExpiresAt,
	}}, ActivationPending, 0, activation.AuthAuditEvent{Event: "activation_created", Reason: "re-created", Actor: r.Meta.Actor,
		RequestID: r.Meta.RequestID, ClientIP: r.Meta.ClientIP})
	if err != nil {
		return a.st, err
	}
	a.hashes = next
	a.st.Attempts = 0
	a.st.ExpiresAt = r.ExpiresAt
	a.changes++
	a.details(ctx)
	return a.st, nil
}

func (a *activationRun) validateAttempt(ctx workflow.Context, r *AttemptRequest) error {
	if err := a.usable(ctx); err != nil {
		return err
	}
	switch {
	case r == nil || r.AuthCodeHash == "" || r.AuthCodeSalt == "":
		return invalidRequest("the authorisation code's hash is required")
	case a.st.State != ActivationPending:
		return rejectActivation(RejectActivationUsed, "the activation has already been completed")
	case !hashEqual(r.CodeHash, a.hashes.CodeHash):
		// Not a PIN attempt: the code changed (device re-created) after the
		// API looked it up.
		return rejectActivation(RejectActivationStale, "the activation changed; try again")
	case a.st.Kind == ActivationKindPatient && r.PinSalt != a.hashes.PinSalt:
		return rejectActivation(RejectActivationStale, "the activation changed; try again")
	}
	return nil
}

func (a *activationRun) attempt(ctx workflow.Context, r *AttemptRequest) (AttemptResult, error) {
	meta := activation.AuthAuditEvent{Actor: r.Meta.Actor, RequestID: r.Meta.RequestID, ClientIP: r.Meta.ClientIP}
	if a.st.Kind == ActivationKindDevice || hashEqual(r.PinHash, a.hashes.PinHash) {
		now := workflow.Now(ctx)
		meta.Event = "completed"
		if err := a.recordWith(ctx, &activation.RecordActivationInput{
			AuthCodeHash: r.AuthCodeHash, AuthCodeSalt: r.AuthCodeSalt, ActivatedAt: now,
		}, ActivationActivated, a.st.Attempts, meta); err != nil {
			return AttemptResult{}, err
		}
		a.authHash = r.AuthCodeHash
		a.st.State, a.st.ActivatedAt = ActivationActivated, now
		a.changes++
		a.details(ctx)
		return AttemptResult{Outcome: AttemptActivated}, nil
	}
	attempts := a.st.Attempts + 1
	state, in := ActivationPending, &activation.RecordActivationInput{}
	meta.Event, meta.Reason = "attempt_failed", "wrong PIN ("+strconv.Itoa(attempts)+" of "+strconv.Itoa(a.st.MaxAttempts)+")"
	if attempts >= a.st.MaxAttempts {
		state, in.FinishedAt = ActivationLocked, workflow.Now(ctx)
		meta.Event = "locked"
	}
	if err := a.recordWith(ctx, in, state, attempts, meta); err != nil {
		return AttemptResult{}, err
	}
	a.st.Attempts, a.st.State = attempts, state
	a.changes++
	a.details(ctx)
	if state == ActivationLocked {
		return AttemptResult{Outcome: AttemptLocked}, nil
	}
	return AttemptResult{Outcome: AttemptWrongPIN, AttemptsLeft: a.st.MaxAttempts - attempts}, nil
}

func (a *activationRun) validateRedeem(ctx workflow.Context, r *RedeemRequest) error {
	if err := a.usable(ctx); err != nil {
		return err
	}
	switch {
	case r == nil || r.AuthCodeHash == "":
		return invalidRequest("the authorisation code's hash is required")
	case a.st.State != ActivationActivated:
		return rejectActivation(RejectActivationStale, "the activation has not been completed")
	}
	return nil
}

func (a *activationRun) redeem(ctx workflow.Context, r *RedeemRequest) (RedeemResult, error) {
	if !hashEqual(r.AuthCodeHash, a.authHash) {
		// Runs from before the device lockout return at once, as they did.
		if a.st.Kind != ActivationKindDevice ||
			workflow.GetVersion(ctx, deviceCodeLockoutChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			return RedeemResult{}, nil
		}
		return a.wrongDeviceCode(ctx, r)
	}
	if err := a.recordWith(ctx, &activation.RecordActivationInput{FinishedAt: workflow.Now(ctx)},
		ActivationRedeemed, a.st.Attempts, activation.AuthAuditEvent{}); err != nil {
		return RedeemResult{}, err
	}
	a.st.State = ActivationRedeemed
	a.changes++
	a.details(ctx)
	return RedeemResult{Redeemed: true}, nil
}

// deviceCodeLockoutChange versions the counting of a device's wrong
// authorisation codes.
const deviceCodeLockoutChange = "device-code-lockout"

// wrongDeviceCode counts a wrong authorisation code for a device; the
// MaxAttempts-th locks the activation (audited as device_code_locked), so
// the code cannot be guessed by asking for the device's token again and
// again. The API audits each wrong code as a refused login.
func (a *activationRun) wrongDeviceCode(ctx workflow.Context, r *RedeemRequest) (RedeemResult, error) {
	attempts := a.st.Attempts + 1
	state, in := ActivationActivated, &activation.RecordActivationInput{}
	var ev activation.AuthAuditEvent
	if attempts >= a.st.MaxAttempts {
		state, in.FinishedAt = ActivationLocked, workflow.Now(ctx)
		ev = activation.AuthAuditEvent{Event: "device_code_locked", Actor: r.Meta.Actor, RequestID: r.Meta.RequestID, ClientIP: r.Meta.ClientIP,
			Reason: strconv.Itoa(attempts) + " wrong authorisation codes"}
	}
	if err := a.recordWith(ctx, in, state, attempts, ev); err != nil {
		return RedeemResult{}, err
	}
	a.st.Attempts, a.st.State = attempts, state
	a.changes++
	a.details(ctx)
	return RedeemResult{Locked: state == ActivationLocked, AttemptsLeft: a.st.MaxAttempts - attempts}, nil
}

// serialised runs handle alone: it takes the handlers' mutex, checks the
// update again with validate (another handler may have changed the
// activation after the validator ran) and releases the mutex when handle
// returns, or at once when the check fails.
func serialised[R, T any](a *activationRun, validate func(workflow.Context, R) error, handle func(workflow.Context, R) (T, error)) func(workflow.Context, R) (T, error) {
	return func(ctx workflow.Context, r R) (T, error) {
		var zero T
		if err := a.mu.Lock(ctx); err != nil {
			return zero, err
		}
		defer a.mu.Unlock()
		if err := validate(ctx, r); err != nil {
			return zero, err
		}
		return handle(ctx, r)
	}
}

// record writes the current state with an audit event.
func (a *activationRun) record(ctx workflow.Context, in *activation.RecordActivationInput, ev activation.AuthAuditEvent) error {
	return a.recordWith(ctx, in, a.st.State, a.st.Attempts, ev)
}

// recordWith writes state and attempts (not yet applied to a.st: a handler
// changes its state only once the write succeeded) and, when ev names an
// event, the audit row.
func (a *activationRun) recordWith(ctx workflow.Context, in *activation.RecordActivationInput, state string, attempts int, ev activation.AuthAuditEvent) error {
	a.seq++
	info := workflow.GetInfo(ctx)
	in.ActivationID = a.st.ActivationID
	in.EventKey = info.WorkflowExecution.ID + ":" + info.WorkflowExecution.RunID + ":" + strconv.Itoa(a.seq)
	in.State, in.Attempts = state, attempts
	if ev.Event != "" {
		// A patient's id is not known here (see ActivationInput): the
		// activity files the event under the activation row's subject.
		ev.SubjectType, ev.SubjectID = a.st.Kind, a.st.SubjectID
		in.Audit = &ev
	}
	summary := "record " + state
	if ev.Event != "" {
		summary += " (" + ev.Event + ")"
	}
	return workflow.ExecuteActivity(withSummary(dbCtx(ctx), summary), activationActivities.RecordActivation, in).Get(ctx, nil)
}

func hashEqual(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
