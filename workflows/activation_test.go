package workflows_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/activation"
	"github.com/vigil-health/vigil/workflows"
)

var londonTZ = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return l
}()

// actStart is a Monday morning in London.
var actStart = time.Date(2026, 11, 23, 10, 0, 0, 0, londonTZ)

func TestActivationExpiry(t *testing.T) {
	tests := []struct {
		name string
		now  time.Time
		days int
		want time.Time
	}{
		{"monday + 5 is the end of saturday", actStart, 5, time.Date(2026, 11, 28, 23, 59, 59, 999e6, londonTZ)},
		{"just before midnight counts as that day", time.Date(2026, 11, 23, 23, 59, 0, 0, londonTZ), 5, time.Date(2026, 11, 28, 23, 59, 59, 999e6, londonTZ)},
		{"the hospital's day, not UTC's", time.Date(2026, 7, 1, 23, 30, 0, 0, time.UTC), 1, time.Date(2026, 7, 3, 23, 59, 59, 999e6, londonTZ)},
		{"across the clocks going forward", time.Date(2026, 3, 27, 12, 0, 0, 0, londonTZ), 2, time.Date(2026, 3, 29, 23, 59, 59, 999e6, londonTZ)},
		{"month end", time.Date(2026, 12, 30, 8, 0, 0, 0, londonTZ), 5, time.Date(2027, 1, 4, 23, 59, 59, 999e6, londonTZ)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := workflows.ActivationExpiry(tt.now, londonTZ, tt.days)
			require.True(t, tt.want.Equal(got), "got %s want %s", got, tt.want)
		})
	}
}

func TestValidSubjectID(t *testing.T) {
	for id, ok := range map[string]bool{
		"p-123_AB": true, "": false, "a b": false, "a:b": false, "é": false,
		"0123456789012345678901234567890123456789012345678901234567890123":  true,
		"01234567890123456789012345678901234567890123456789012345678901234": false,
	} {
		require.Equal(t, ok, workflows.ValidSubjectID(id), id)
	}
}

// actHarness runs the activation workflow with a recording activity.
type actHarness struct {
	mu       sync.Mutex
	t        *testing.T
	env      *testsuite.TestWorkflowEnvironment
	recorded []activation.RecordActivationInput
}

func newActHarness(t *testing.T) *actHarness {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	h := &actHarness{t: t, env: s.NewTestWorkflowEnvironment()}
	h.env.SetStartTime(actStart)
	h.env.SetTestTimeout(30 * time.Second)
	var a *activities.Activations
	h.env.RegisterActivity(a)
	h.env.OnActivity(a.RecordActivation, mock.Anything, mock.Anything).Return(func(_ context.Context, in *activation.RecordActivationInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.recorded = append(h.recorded, *in)
		return nil
	})
	return h
}

func (h *actHarness) events() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recorded {
		if r.Audit != nil {
			out = append(out, r.Audit.Event)
		}
	}
	return out
}

func patientInput() *workflows.ActivationInput {
	return &workflows.ActivationInput{
		ActivationID: "act-1", Kind: workflows.ActivationKindPatient,
		Hashes:    workflows.ActivationHashes{CodeHash: "code-h", CodeSalt: "code-s", PinHash: "pin-h", PinSalt: "pin-s"},
		ExpiresAt: workflows.ActivationExpiry(actStart, londonTZ, 5),
	}
}

// outcome is what one update got back.
type outcome struct {
	rejected error // by the validator: never accepted, no history event
	err      error // by the handler
	attempt  workflows.AttemptResult
	redeem   workflows.RedeemResult
}

// update sends an update at d and stores its outcome in *out.
func (h *actHarness) update(d time.Duration, name string, arg any, out *outcome) {
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(name, name+d.String(), &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { out.rejected = err },
			OnComplete: func(res any, err error) {
				out.err = err
				switch r := res.(type) {
				case workflows.AttemptResult:
					out.attempt = r
				case workflows.RedeemResult:
					out.redeem = r
				}
			},
		}, arg)
	}, d)
}

func attempt(pin string) *workflows.AttemptRequest {
	return &workflows.AttemptRequest{CodeHash: "code-h", PinHash: pin, PinSalt: "pin-s", AuthCodeHash: "auth-h", AuthCodeSalt: "auth-s"}
}

func requireAppErr(t *testing.T, err error, typ string) {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want %s, got %v", typ, err)
	require.Equal(t, typ, appErr.Type())
}

func (h *actHarness) result() workflows.ActivationResult {
	h.t.Helper()
	require.True(h.t, h.env.IsWorkflowCompleted())
	require.NoError(h.t, h.env.GetWorkflowError())
	var res workflows.ActivationResult
	require.NoError(h.t, h.env.GetWorkflowResult(&res))
	return res
}

func TestActivation_ExpiresAtTheEndOfDay5(t *testing.T) {
	h := newActHarness(t)
	in := patientInput()
	untilExpiry := in.ExpiresAt.Sub(actStart)
	var before outcome
	h.update(untilExpiry-time.Second, workflows.ActivationUpdateAttempt, attempt("wrong"), &before)
	h.env.ExecuteWorkflow(workflows.Activation, in)
	require.Equal(t, workflows.ActivationExpired, h.result().State)
	require.NoError(t, before.rejected, "one second before the end of day 5 the activation still takes attempts")
	require.Equal(t, workflows.AttemptWrongPIN, before.attempt.Outcome)
	require.Equal(t, []string{"attempt_failed", "expired"}, h.events())
	// The durable timer fired just after 23:59:59.999 on Saturday.
	require.WithinDuration(t, in.ExpiresAt, h.env.Now(), 10*time.Millisecond)
	last := h.recorded[len(h.recorded)-1]
	require.Equal(t, workflows.ActivationExpired, last.State)
	require.False(t, last.FinishedAt.IsZero())
}

func TestActivation_AttemptJustAfterExpiryIsRejected(t *testing.T) {
	// The timer of a re-created activation is pushed: an update still reaches
	// the workflow after the first expiry, and just after the new one it is
	// refused by the validator.
	h := newActHarness(t)
	in := patientInput()
	var recreate, after outcome
	h.update(time.Hour, workflows.ActivationUpdateRecreate, &workflows.RecreateRequest{
		ActivationID: "act-1", Hashes: workflows.ActivationHashes{PinHash: "pin2-h", PinSalt: "pin2-s"}, CodeDigest: "d",
		ExpiresAt: in.ExpiresAt.Add(-time.Hour), // earlier than the first: the timer follows it
	}, &recreate)
	h.update(in.ExpiresAt.Sub(actStart)-time.Hour+time.Millisecond/2, workflows.ActivationUpdateAttempt, attempt("pin2-h"), &after)
	h.env.ExecuteWorkflow(workflows.Activation, in)
	require.NoError(t, recreate.rejected)
	require.NoError(t, recreate.err)
	require.Equal(t, workflows.ActivationExpired, h.result().State)
	// Half a millisecond after 23:59:59.999, before the timer fires.
	requireAppErr(t, after.rejected, workflows.RejectActivationExpired)
	require.NotContains(t, h.events(), "completed")
}

func TestActivation_LocksOnTheTenthWrongPIN(t *testing.T) {
	h := newActHarness(t)
	outs := make([]outcome, 11)
	for i := range 11 {
		h.update(time.Duration(i+1)*time.Minute, workflows.ActivationUpdateAttempt, attempt("wrong"), &outs[i])
	}
	h.env.ExecuteWorkflow(workflows.Activation, patientInput())
	require.Equal(t, workflows.ActivationLocked, h.result().State)
	for i := range 9 {
		require.Equal(t, workflows.AttemptWrongPIN, outs[i].attempt.Outcome, i)
		require.Equal(t, 10-(i+1), outs[i].attempt.AttemptsLeft, i)
	}
	require.Equal(t, workflows.AttemptLocked, outs[9].attempt.Outcome)
	require.Equal(t, workflows.AttemptResult{}, outs[10].attempt, "the workflow ended: nothing more is accepted")
	ev := h.events()
	require.Len(t, ev, 10)
	require.Equal(t, "locked", ev[9])
}

func TestActivation_NinthWrongPINStillAllowsTheRightOne(t *testing.T) {
	h := newActHarness(t)
	outs := make([]outcome, 10)
	for i := range 9 {
		h.update(time.Duration(i+1)*time.Minute, workflows.ActivationUpdateAttempt, attempt("wrong"), &outs[i])
	}
	h.update(10*time.Minute, workflows.ActivationUpdateAttempt, attempt("pin-h"), &outs[9])
	var redeem outcome
	h.update(11*time.Minute, workflows.ActivationUpdateRedeem, &workflows.RedeemRequest{AuthCodeHash: "auth-h"}, &redeem)
	h.env.ExecuteWorkflow(workflows.Activation, patientInput())
	require.Equal(t, workflows.AttemptWrongPIN, outs[8].attempt.Outcome)
	require.Equal(t, 1, outs[8].attempt.AttemptsLeft)
	require.Equal(t, workflows.AttemptActivated, outs[9].attempt.Outcome)
	require.True(t, redeem.redeem.Redeemed)
	require.Equal(t, workflows.ActivationRedeemed, h.result().State)
}

func TestActivation_RecreateResetsAttemptsAndKeepsTheCode(t *testing.T) {
	h := newActHarness(t)
	in := patientInput()
	outs := make([]outcome, 3)
	for i := range 3 {
		h.update(time.Duration(i+1)*time.Minute, workflows.ActivationUpdateAttempt, attempt("wrong"), &outs[i])
	}
	newExpiry := workflows.ActivationExpiry(actStart.Add(48*time.Hour), londonTZ, 5)
	var recreate, oldPIN, newPIN outcome
	h.update(48*time.Hour, workflows.ActivationUpdateRecreate, &workflows.RecreateRequest{
		ActivationID: "act-1", CodeDigest: "digest",
		// A patient's code never changes, whatever hash is sent.
		Hashes:    workflows.ActivationHashes{CodeHash: "ignored", CodeSalt: "ignored", PinHash: "pin2-h", PinSalt: "pin2-s"},
		ExpiresAt: newExpiry,
	}, &recreate)
	h.update(49*time.Hour, workflows.ActivationUpdateAttempt, &workflows.AttemptRequest{
		CodeHash: "code-h", PinHash: "pin-h", PinSalt: "pin-s", AuthCodeHash: "a", AuthCodeSalt: "s"}, &oldPIN)
	h.update(50*time.Hour, workflows.ActivationUpdateAttempt, &workflows.AttemptRequest{
		CodeHash: "code-h", PinHash: "wrong", PinSalt: "pin2-s", AuthCodeHash: "a", AuthCodeSalt: "s"}, &newPIN)
	// After day 5 of the first creation the re-created one is still valid.
	var late outcome
	h.update(in.ExpiresAt.Sub(actStart)+time.Hour, workflows.ActivationUpdateAttempt, &workflows.AttemptRequest{
		CodeHash: "code-h", PinHash: "pin2-h", PinSalt: "pin2-s", AuthCodeHash: "a", AuthCodeSalt: "s"}, &late)
	h.env.ExecuteWorkflow(workflows.Activation, in)

	require.Equal(t, 7, outs[2].attempt.AttemptsLeft)
	require.NoError(t, recreate.rejected)
	require.NoError(t, recreate.err)
	requireAppErr(t, oldPIN.rejected, workflows.RejectActivationStale) // built against the old PIN salt
	require.Equal(t, 9, newPIN.attempt.AttemptsLeft, "attempts were reset")
	require.NoError(t, late.rejected)
	require.Equal(t, workflows.AttemptActivated, late.attempt.Outcome)

	var material *activation.Material
	for _, r := range h.recorded {
		if r.Material != nil {
			material = r.Material
		}
	}
	require.NotNil(t, material)
	require.Equal(t, "code-h", material.CodeHash, "the patient's code is kept")
	require.Equal(t, "pin2-s", material.PinSalt)
	require.True(t, newExpiry.Equal(material.ExpiresAt))
	// Nobody redeems: the authorisation code expires.
	require.Equal(t, workflows.ActivationExpired, h.result().State)
}

func TestActivation_AuthorisationCodeIsSingleUse(t *testing.T) {
	h := newActHarness(t)
	var act, wrong, first, second outcome
	h.update(time.Minute, workflows.ActivationUpdateAttempt, attempt("pin-h"), &act)
	h.update(2*time.Minute, workflows.ActivationUpdateRedeem, &workflows.RedeemRequest{AuthCodeHash: "other"}, &wrong)
	// Two redemptions of the same code at the same moment: one wins.
	h.env.RegisterDelayedCallback(func() {
		for i, out := range []*outcome{&first, &second} {
			h.env.UpdateWorkflow(workflows.ActivationUpdateRedeem, "redeem"+strconv.Itoa(i), &testsuite.TestUpdateCallback{
				OnAccept: func() {},
				OnReject: func(err error) { out.rejected = err },
				OnComplete: func(res any, err error) {
					out.err = err
					if r, ok := res.(workflows.RedeemResult); ok {
						out.redeem = r
					}
				},
			}, &workflows.RedeemRequest{AuthCodeHash: "auth-h"})
		}
	}, 3*time.Minute)
	h.env.ExecuteWorkflow(workflows.Activation, patientInput())
	require.Equal(t, workflows.AttemptActivated, act.attempt.Outcome)
	require.False(t, wrong.redeem.Redeemed)
	require.True(t, first.redeem.Redeemed)
	require.False(t, second.redeem.Redeemed)
	if second.rejected != nil {
		requireAppErr(t, second.rejected, workflows.RejectActivationUsed)
	} else {
		requireAppErr(t, second.err, workflows.RejectActivationUsed)
	}
	require.Equal(t, workflows.ActivationRedeemed, h.result().State)
	require.Equal(t, []string{"completed"}, h.events())
}

func TestActivation_AuthorisationCodeExpires(t *testing.T) {
	h := newActHarness(t)
	var act outcome
	h.update(time.Minute, workflows.ActivationUpdateAttempt, attempt("pin-h"), &act)
	h.env.ExecuteWorkflow(workflows.Activation, patientInput())
	require.Equal(t, workflows.ActivationExpired, h.result().State)
	require.WithinDuration(t, actStart.Add(time.Minute+workflows.AuthorisationCodeTTL), h.env.Now(), 10*time.Millisecond)
	require.Equal(t, []string{"completed", "expired"}, h.events())
}

func TestActivation_ValidatorRejectionsRecordNothing(t *testing.T) {
	h := newActHarness(t)
	outs := map[string]*outcome{}
	send := func(name string, d time.Duration, update string, arg any) {
		outs[name] = &outcome{}
		h.update(d, update, arg, outs[name])
	}
	send("stale code", time.Minute, workflows.ActivationUpdateAttempt, &workflows.AttemptRequest{
		CodeHash: "old", PinHash: "pin-h", PinSalt: "pin-s", AuthCodeHash: "a", AuthCodeSalt: "s"})
	send("no auth code hash", 2*time.Minute, workflows.ActivationUpdateAttempt, &workflows.AttemptRequest{CodeHash: "code-h", PinHash: "pin-h", PinSalt: "pin-s"})
	send("redeem before completion", 3*time.Minute, workflows.ActivationUpdateRedeem, &workflows.RedeemRequest{AuthCodeHash: "auth-h"})
	send("recreate of another activation", 4*time.Minute, workflows.ActivationUpdateRecreate, &workflows.RecreateRequest{
		ActivationID: "act-0", Hashes: workflows.ActivationHashes{CodeHash: "c", PinHash: "p", PinSalt: "s"}, CodeDigest: "d", ExpiresAt: actStart})
	send("activate", 5*time.Minute, workflows.ActivationUpdateAttempt, attempt("pin-h"))
	send("attempt after completion", 6*time.Minute, workflows.ActivationUpdateAttempt, attempt("pin-h"))
	send("recreate after completion", 7*time.Minute, workflows.ActivationUpdateRecreate, &workflows.RecreateRequest{
		ActivationID: "act-1", Hashes: workflows.ActivationHashes{CodeHash: "c", PinHash: "p", PinSalt: "s"}, CodeDigest: "d", ExpiresAt: actStart})
	h.env.ExecuteWorkflow(workflows.Activation, patientInput())

	requireAppErr(t, outs["stale code"].rejected, workflows.RejectActivationStale)
	requireAppErr(t, outs["no auth code hash"].rejected, workflows.RejectInvalid)
	requireAppErr(t, outs["redeem before completion"].rejected, workflows.RejectActivationStale)
	requireAppErr(t, outs["recreate of another activation"].rejected, workflows.RejectActivationStale)
	require.NoError(t, outs["activate"].rejected)
	requireAppErr(t, outs["attempt after completion"].rejected, workflows.RejectActivationUsed)
	requireAppErr(t, outs["recreate after completion"].rejected, workflows.RejectActivationUsed)
	// Only the accepted attempt and the final expiry were recorded.
	require.Equal(t, []string{"completed", "expired"}, h.events())
	require.Len(t, h.recorded, 2)
}

func TestActivation_DeviceNeedsNoPINAndRecreateChangesTheCode(t *testing.T) {
	h := newActHarness(t)
	in := &workflows.ActivationInput{ActivationID: "d-act", Kind: workflows.ActivationKindDevice, SubjectID: "dev-1",
		Hashes: workflows.ActivationHashes{CodeHash: "code1", CodeSalt: "s1"}, ExpiresAt: workflows.ActivationExpiry(actStart, londonTZ, 5)}
	var recreate, old, current outcome
	h.update(time.Minute, workflows.ActivationUpdateRecreate, &workflows.RecreateRequest{ActivationID: "d-act",
		Hashes: workflows.ActivationHashes{CodeHash: "code2", CodeSalt: "s2"}, CodeDigest: "dg2", ExpiresAt: in.ExpiresAt}, &recreate)
	h.update(2*time.Minute, workflows.ActivationUpdateAttempt, &workflows.AttemptRequest{CodeHash: "code1", AuthCodeHash: "a", AuthCodeSalt: "s"}, &old)
	h.update(3*time.Minute, workflows.ActivationUpdateAttempt, &workflows.AttemptRequest{CodeHash: "code2", AuthCodeHash: "a", AuthCodeSalt: "s"}, &current)
	h.env.ExecuteWorkflow(workflows.Activation, in)
	require.NoError(t, recreate.err)
	requireAppErr(t, old.rejected, workflows.RejectActivationStale)
	require.Equal(t, workflows.AttemptActivated, current.attempt.Outcome)
}

func TestActivation_RefusesIncompleteInput(t *testing.T) {
	h := newActHarness(t)
	in := patientInput()
	in.Hashes.PinHash = ""
	h.env.ExecuteWorkflow(workflows.Activation, in)
	require.Error(t, h.env.GetWorkflowError())
}

func TestActivation_RefusesADeviceWithoutItsID(t *testing.T) {
	h := newActHarness(t)
	h.env.ExecuteWorkflow(workflows.Activation, &workflows.ActivationInput{ActivationID: "d-act", Kind: workflows.ActivationKindDevice,
		Hashes: workflows.ActivationHashes{CodeHash: "code1", CodeSalt: "s1"}, ExpiresAt: workflows.ActivationExpiry(actStart, londonTZ, 5)})
	require.Error(t, h.env.GetWorkflowError())
}

// A patient activation runs without the patient id: its audit events leave
// the subject to the activity (which reads it from the activation row).
func TestActivation_PatientRunHoldsNoPatientID(t *testing.T) {
	h := newActHarness(t)
	var wrong, act outcome
	h.update(time.Minute, workflows.ActivationUpdateAttempt, attempt("nope"), &wrong)
	h.update(2*time.Minute, workflows.ActivationUpdateAttempt, attempt("pin-h"), &act)
	h.env.ExecuteWorkflow(workflows.Activation, patientInput())
	require.Equal(t, workflows.AttemptWrongPIN, wrong.attempt.Outcome)
	require.Equal(t, workflows.AttemptActivated, act.attempt.Outcome)
	require.Equal(t, []string{"attempt_failed", "completed", "expired"}, h.events())
	for _, r := range h.recorded {
		require.Equal(t, workflows.ActivationKindPatient, r.Audit.SubjectType)
		require.Empty(t, r.Audit.SubjectID)
	}
}

func deviceInput() *workflows.ActivationInput {
	return &workflows.ActivationInput{ActivationID: "d-act", Kind: workflows.ActivationKindDevice, SubjectID: "dev-1",
		Hashes: workflows.ActivationHashes{CodeHash: "code1", CodeSalt: "s1"}, ExpiresAt: workflows.ActivationExpiry(actStart, londonTZ, 5)}
}

func TestActivation_DeviceLocksOnTheTenthWrongAuthorisationCode(t *testing.T) {
	h := newActHarness(t)
	var act, right outcome
	wrong := make([]outcome, 10)
	h.update(time.Minute, workflows.ActivationUpdateAttempt, &workflows.AttemptRequest{CodeHash: "code1", AuthCodeHash: "auth-h", AuthCodeSalt: "s"}, &act)
	for i := range wrong {
		h.update(time.Duration(2+i)*time.Minute, workflows.ActivationUpdateRedeem, &workflows.RedeemRequest{AuthCodeHash: "guess"}, &wrong[i])
	}
	h.update(13*time.Minute, workflows.ActivationUpdateRedeem, &workflows.RedeemRequest{AuthCodeHash: "auth-h"}, &right)
	h.env.ExecuteWorkflow(workflows.Activation, deviceInput())
	require.Equal(t, workflows.AttemptActivated, act.attempt.Outcome)
	for i := range 9 {
		require.NoError(t, wrong[i].err)
		require.Equal(t, workflows.RedeemResult{AttemptsLeft: 9 - i}, wrong[i].redeem, "wrong code %d", i+1)
	}
	require.Equal(t, workflows.RedeemResult{Locked: true}, wrong[9].redeem)
	// Locked, the run ends at once: the right code finds no workflow (the
	// API answers from the activation row).
	require.Equal(t, workflows.RedeemResult{}, right.redeem)
	require.Equal(t, workflows.ActivationLocked, h.result().State)
	require.WithinDuration(t, actStart.Add(11*time.Minute), h.env.Now(), time.Second)
	require.Equal(t, []string{"completed", "device_code_locked"}, h.events())
	last := h.recorded[len(h.recorded)-1]
	require.Equal(t, 10, last.Attempts)
	require.Equal(t, "dev-1", last.Audit.SubjectID)
}

func TestActivation_PatientWrongAuthorisationCodesDoNotCount(t *testing.T) {
	h := newActHarness(t)
	var act, right outcome
	wrong := make([]outcome, 12)
	h.update(time.Minute, workflows.ActivationUpdateAttempt, attempt("pin-h"), &act)
	for i := range wrong {
		h.update(2*time.Minute+time.Duration(i)*time.Second, workflows.ActivationUpdateRedeem, &workflows.RedeemRequest{AuthCodeHash: "guess"}, &wrong[i])
	}
	h.update(3*time.Minute, workflows.ActivationUpdateRedeem, &workflows.RedeemRequest{AuthCodeHash: "auth-h"}, &right)
	h.env.ExecuteWorkflow(workflows.Activation, patientInput())
	require.Equal(t, workflows.RedeemResult{}, wrong[11].redeem)
	require.True(t, right.redeem.Redeemed)
	require.Equal(t, workflows.ActivationRedeemed, h.result().State)
}

func TestActivation_DetailsShowTheStageAndNoPatientID(t *testing.T) {
	// A run from before pseudonyms carries the patient id in SubjectID:
	// it must still never reach the summary or the details.
	in := patientInput()
	in.SubjectID = "patient-4711"
	h := newActHarness(t)
	var wrong, act outcome
	var pending, activated string
	var handlers map[string]string
	h.update(time.Minute, workflows.ActivationUpdateAttempt, attempt("nope"), &wrong)
	h.env.RegisterDelayedCallback(func() {
		md := workflowMetadata(t, h.env)
		pending, handlers = md.GetCurrentDetails(), handlerDescriptions(md)
	}, 90*time.Second)
	h.update(2*time.Minute, workflows.ActivationUpdateAttempt, attempt("pin-h"), &act)
	h.env.RegisterDelayedCallback(func() { activated = workflowMetadata(t, h.env).GetCurrentDetails() }, 3*time.Minute)
	h.env.ExecuteWorkflow(workflows.Activation, in)
	require.Equal(t, workflows.AttemptActivated, act.attempt.Outcome)
	require.Equal(t, "Activation · patient\nStage: pending · 1 of 10 wrong PINs · expires "+in.ExpiresAt.UTC().Format("2006-01-02 15:04")+" UTC", pending)
	require.Contains(t, activated, "Stage: activated at 2026-")
	require.Contains(t, activated, "authorisation code valid until")
	for _, text := range []string{pending, activated, workflows.ActivationSummary(workflows.ActivationKindPatient, ""),
		workflows.ActivationDetails(workflows.ActivationKindPatient, in.ExpiresAt, 10)} {
		require.NotContains(t, text, "4711")
	}
	for _, name := range []string{"update:recreate", "update:attempt", "update:redeem", "query:state"} {
		require.NotEmpty(t, handlers[name], name)
	}
}

func TestActivationSummaryAndDetails(t *testing.T) {
	exp := time.Date(2026, 3, 7, 23, 59, 59, 0, time.UTC)
	require.Equal(t, "Activation · patient", workflows.ActivationSummary(workflows.ActivationKindPatient, ""))
	require.Equal(t, "Activation · device dev-1", workflows.ActivationSummary(workflows.ActivationKindDevice, "dev-1"))
	d := workflows.ActivationDetails(workflows.ActivationKindPatient, exp, 10)
	require.Contains(t, d, "the 10th wrong PIN locks it")
	require.Contains(t, d, "Expires: 2026-03-07 23:59 UTC")
	require.Contains(t, workflows.ActivationDetails(workflows.ActivationKindDevice, exp, 3), "the 3rd wrong authorisation code")
}
