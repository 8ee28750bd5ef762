//go:build integration

package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/activation/credential"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/workflows"
)

// activatedDevice is a ward device that has been activated, with its token.
type activatedDevice struct {
	ID    string
	Token string
}

// newActivatedDevice registers a device at ward and takes it through its
// activation to a device token.
func newActivatedDevice(t *testing.T, s *actStack, admin, ward string) activatedDevice {
	t.Helper()
	var dev api.DeviceView
	require.Equal(t, http.StatusCreated, s.do(t, "POST", "/v1/devices", admin, `{"location_id":"`+ward+`"}`, &dev).StatusCode)
	return activateDevice(t, s, admin, dev.ID)
}

// deviceActivated creates a device at ward and completes its activation:
// what is left is redeeming the authorisation code for a token.
func deviceActivated(t *testing.T, s *actStack, admin, ward string) (api.DeviceView, api.ActivationCompleted) {
	t.Helper()
	var dev api.DeviceView
	require.Equal(t, http.StatusCreated, s.do(t, "POST", "/v1/devices", admin, `{"location_id":"`+ward+`"}`, &dev).StatusCode)
	var act api.DeviceActivationCreated
	require.Equal(t, http.StatusCreated, s.do(t, "POST", "/v1/devices/"+dev.ID+"/activation", admin, "", &act).StatusCode)
	var done api.ActivationCompleted
	require.Equal(t, http.StatusOK, s.do(t, "POST", "/v1/activations/"+act.Code+"?type=device", "", "", &done).StatusCode)
	return dev, done
}

// activateDevice takes a device through a new activation to a new token.
func activateDevice(t *testing.T, s *actStack, admin, deviceID string) activatedDevice {
	t.Helper()
	dev := api.DeviceView{ID: deviceID}
	var act api.DeviceActivationCreated
	require.Equal(t, http.StatusCreated, s.do(t, "POST", "/v1/devices/"+dev.ID+"/activation", admin, "", &act).StatusCode)
	var done api.ActivationCompleted
	require.Equal(t, http.StatusOK, s.do(t, "POST", "/v1/activations/"+act.Code+"?type=device", "", "", &done).StatusCode)
	var tok api.SubjectToken
	require.Equal(t, http.StatusOK, s.do(t, "GET", "/v1/devices/"+dev.ID+"/token", "", "", &tok,
		api.AuthorisationCodeHeader, done.AuthorisationCode).StatusCode)
	return activatedDevice{ID: dev.ID, Token: tok.Token}
}

// newClinician registers a login-active clinician; it returns the send
// entry identifier.
func newClinician(t *testing.T, s *actStack, admin, id, group string, wards ...string) string {
	t.Helper()
	body := `{"clinician_id":"` + id + `","send_entry_identifier":"sei-` + id + `","login_active":true,"groups":["` + group +
		`"],"location_ids":["` + strings.Join(wards, `","`) + `"]}`
	require.Equal(t, http.StatusCreated, s.do(t, "POST", "/v1/clinicians", admin, body, nil).StatusCode, body)
	return "sei-" + id
}

// clinicianLogin mints a clinician token through a device.
func clinicianLogin(t *testing.T, s *actStack, dev activatedDevice, sei string) (api.SubjectToken, *auth.Claims) {
	t.Helper()
	var tok api.SubjectToken
	resp := s.do(t, "GET", "/v1/clinicians/token?send_entry_identifier="+sei, dev.Token, "", &tok)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	claims, err := s.Signer.Verify(tok.Token, auth.TokenAccess)
	require.NoError(t, err)
	return tok, claims
}

func TestSecurity_Activation_OnlyChargeAndAdminRecreate(t *testing.T) {
	s := startActivationStack(t, 1000)
	nurse, charge, admin := s.login(t, "n01"), s.login(t, "c01"), s.login(t, "a01")
	pid := "rc-" + uuid.NewString()[:8]
	path := "/v1/patients/" + pid + "/activation"

	// Any staff member issues a patient's first activation.
	var first api.PatientActivationCreated
	require.Equal(t, http.StatusCreated, s.do(t, "POST", path, nurse, "", &first).StatusCode)

	// Re-issuing the PIN of the pending one is refused to plain staff,
	// naming the rule (before: 200 and a new PIN for anyone).
	e := s.refused(t, http.StatusForbidden, api.CodeForbidden, "POST", path, nurse, "")
	require.Contains(t, e.Message, "requires charge or admin access")
	var byCharge, byAdmin api.PatientActivationCreated
	require.Equal(t, http.StatusOK, s.do(t, "POST", path, charge, "", &byCharge).StatusCode)
	require.Equal(t, http.StatusOK, s.do(t, "POST", path, admin, "", &byAdmin).StatusCode)
	require.Equal(t, first.ActivationCode, byAdmin.ActivationCode)

	rows := auditRows(t, pid)
	var recreated []string
	for _, r := range rows {
		if strings.HasPrefix(r, "activation_recreated|") {
			recreated = append(recreated, r)
		}
		for _, pin := range []string{first.PIN, byCharge.PIN, byAdmin.PIN} {
			requireNoSecret(t, r, pin, "a PIN is in the audit")
		}
	}
	require.Len(t, recreated, 2, strings.Join(rows, "\n"))
	require.True(t, strings.HasPrefix(recreated[0], "activation_recreated|patient|"+pid+"|C01|a new PIN for the pending activation|"), recreated[0])
	require.True(t, strings.HasPrefix(recreated[1], "activation_recreated|patient|"+pid+"|A01|"), recreated[1])

	// Completed and redeemed: a new activation is a re-creation too.
	var done api.ActivationCompleted
	require.Equal(t, http.StatusOK, s.do(t, "POST", "/v1/activations/"+byAdmin.ActivationCode, "", `{"pin":"`+byAdmin.PIN+`"}`, &done).StatusCode)
	require.Equal(t, http.StatusOK, s.do(t, "GET", "/v1/patients/"+pid+"/token", "", "", nil,
		api.AuthorisationCodeHeader, done.AuthorisationCode).StatusCode)
	s.refused(t, http.StatusForbidden, api.CodeForbidden, "POST", path, nurse, "")
	require.Equal(t, http.StatusCreated, s.do(t, "POST", path, charge, "", nil).StatusCode)
	require.Contains(t, strings.Join(auditRows(t, pid), "\n"), "activation_recreated|patient|"+pid+"|C01|a new activation after a completed one|")

	// A clinician token issues a first activation, but re-issues none.
	suffix := uuid.NewString()[:6]
	dev := newActivatedDevice(t, s, admin, "rw-"+suffix)
	cTok, _ := clinicianLogin(t, s, dev, newClinician(t, s, admin, "rc-"+suffix, "send clinician", "rw-"+suffix))
	other := "/v1/patients/rc2-" + suffix + "/activation"
	require.Equal(t, http.StatusCreated, s.do(t, "POST", other, cTok.Token, "", nil).StatusCode)
	s.refused(t, http.StatusForbidden, api.CodeForbidden, "POST", other, cTok.Token, "")
}

func TestSecurity_Activation_ClinicianTokenLimitedToTheDeviceWard(t *testing.T) {
	s := startActivationStack(t, 1000)
	admin := s.login(t, "a01")
	suffix := uuid.NewString()[:6]
	l1, l2 := "l1-"+suffix, "l2-"+suffix
	dev := newActivatedDevice(t, s, admin, l1)

	both := newClinician(t, s, admin, "both-"+suffix, "send clinician", l1, l2)
	onlyL2 := newClinician(t, s, admin, "l2only-"+suffix, "send clinician", l2)
	super := newClinician(t, s, admin, "super-"+suffix, "send superclinician", l2)

	// At an L1 device a clinician of L1 and L2 gets a token for L1 only,
	// tied to the device (before: both wards, no device).
	_, claims := clinicianLogin(t, s, dev, both)
	require.Equal(t, []string{l1}, claims.LocationIDs)
	require.Equal(t, dev.ID, claims.DeviceID)

	// A clinician of L2 only is refused, and it is audited (before: a
	// token for L2 minted by an L1 device).
	e := s.refused(t, http.StatusForbidden, api.CodeWardNotAllowed, "GET", "/v1/clinicians/token?send_entry_identifier="+onlyL2, dev.Token, "")
	require.Contains(t, e.Message, l1)
	rows := auditRows(t, "l2only-"+suffix)
	require.Len(t, rows, 1)
	require.True(t, strings.HasPrefix(rows[0], "login_refused|clinician|l2only-"+suffix+"|"+dev.ID+"|not a clinician of the device's ward "+l1), rows[0])

	// An all-wards group logs in anywhere, with its own wards.
	_, claims = clinicianLogin(t, s, dev, super)
	require.Equal(t, []string{l2}, claims.LocationIDs)
	require.Equal(t, dev.ID, claims.DeviceID)
}

// eventually polls f until it is true or within passes.
func eventually(t *testing.T, within time.Duration, f func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !f() {
		require.True(t, time.Now().Before(deadline), msg)
		time.Sleep(100 * time.Millisecond)
	}
}

func TestSecurity_Activation_ClinicianTokenEndsWithItsDevice(t *testing.T) {
	s := startActivationStack(t, 1000)
	admin := s.login(t, "a01")
	suffix := uuid.NewString()[:6]
	ward := "dw-" + suffix
	dev := newActivatedDevice(t, s, admin, ward)
	cid := "dc-" + suffix
	cTok, _ := clinicianLogin(t, s, dev, newClinician(t, s, admin, cid, "send clinician", ward))
	messages := "/v1/parties/" + cid + "/messages"
	require.Equal(t, http.StatusOK, s.do(t, "GET", messages, cTok.Token, "", nil).StatusCode)

	// Deactivated through this API process: at once.
	require.Equal(t, http.StatusOK, s.do(t, "PATCH", "/v1/devices/"+dev.ID, admin, `{"active":false}`, nil).StatusCode)
	start := time.Now()
	e := s.refused(t, http.StatusUnauthorized, api.CodeDeviceInactive, "GET", messages, cTok.Token, "")
	require.Contains(t, e.Message, "device inactive")
	require.Less(t, time.Since(start), 2*time.Second)
	s.refused(t, http.StatusUnauthorized, api.CodeDeviceInactive, "POST", "/v1/messages", cTok.Token,
		`{"sender_type":"clinician","sender_id":"`+cid+`","receiver_type":"location","receiver_id":"`+ward+`","message_type":{"value":0},"content":"hi"}`)
	s.refused(t, http.StatusUnauthorized, api.CodeDeviceInactive, "GET", "/v1/receivers/"+ward+"/messages/stream?access_token="+cTok.Token, "", "")
	s.refused(t, http.StatusUnauthorized, api.CodeDeviceInactive, "POST", "/v1/patients/dp-"+suffix+"/activation", cTok.Token, "")
	require.Contains(t, strings.Join(auditRows(t, cid), "\n"), "login_refused|clinician|"+cid+"|"+cid+"|device "+dev.ID+": device inactive")

	// Re-activated, the old token stays revoked; a new activation of the
	// device and a new login work.
	require.Equal(t, http.StatusOK, s.do(t, "PATCH", "/v1/devices/"+dev.ID, admin, `{"active":true}`, nil).StatusCode)
	s.refused(t, http.StatusUnauthorized, api.CodeDeviceInactive, "GET", messages, cTok.Token, "")
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond))) // a later iat than the revocation
	dev = activateDevice(t, s, admin, dev.ID)
	newTok, _ := clinicianLogin(t, s, dev, "sei-"+cid)
	require.Equal(t, http.StatusOK, s.do(t, "GET", messages, newTok.Token, "", nil).StatusCode)

	// Changed by another process (straight in the database): within the
	// few seconds of the cache. First the clinician's login...
	_, err := env.DB.Exec(`UPDATE clinicians SET login_active = false WHERE clinician_id = $1`, cid)
	require.NoError(t, err)
	eventually(t, 6*time.Second, func() bool {
		return s.do(t, "GET", messages, newTok.Token, "", nil).StatusCode == http.StatusUnauthorized
	}, "a clinician whose login was turned off keeps a working token")
	s.refused(t, http.StatusUnauthorized, api.CodeLoginInactive, "GET", messages, newTok.Token, "")
	_, err = env.DB.Exec(`UPDATE clinicians SET login_active = true WHERE clinician_id = $1`, cid)
	require.NoError(t, err)
	eventually(t, 6*time.Second, func() bool {
		return s.do(t, "GET", messages, newTok.Token, "", nil).StatusCode == http.StatusOK
	}, "the login is back")
	// ...then the device.
	_, err = env.DB.Exec(`UPDATE devices SET active = false, tokens_revoked_at = now() WHERE id = $1`, dev.ID)
	require.NoError(t, err)
	eventually(t, 6*time.Second, func() bool {
		return s.do(t, "GET", messages, newTok.Token, "", nil).StatusCode == http.StatusUnauthorized
	}, "a clinician token outlives its device")
}

func TestSecurity_Activation_WrongDeviceCodesLock(t *testing.T) {
	s := startActivationStack(t, 1000)
	admin := s.login(t, "a01")
	dev, done := deviceActivated(t, s, admin, "lockward")

	tokenPath := "/v1/devices/" + dev.ID + "/token"
	guess := strings.Repeat("B", 32)
	if guess == done.AuthorisationCode {
		guess = strings.Repeat("C", 32)
	}
	// The same uniform 404 for the first nine wrong codes...
	for range workflows.DefaultActivationMaxAttempts - 1 {
		s.refused(t, http.StatusNotFound, api.CodeNotFound, "GET", tokenPath, "", "", api.AuthorisationCodeHeader, guess)
	}
	// ...the tenth locks the activation, as the tenth wrong PIN locks a
	// patient's (before: 404 for ever, and the right code still worked).
	e := s.refused(t, http.StatusForbidden, api.CodeActivationLocked, "GET", tokenPath, "", "", api.AuthorisationCodeHeader, guess)
	require.Contains(t, e.Message, "locked")
	s.refused(t, http.StatusForbidden, api.CodeActivationLocked, "GET", tokenPath, "", "", api.AuthorisationCodeHeader, done.AuthorisationCode)
	lockedID := activationWorkflowID(t, "device", dev.ID)
	require.Equal(t, workflows.ActivationLocked, waitActivation(t, lockedID).State)
	env.ReplayAndRecord(t, lockedID, "", "") // the lockout replays deterministically
	rows := strings.Join(auditRows(t, dev.ID), "\n")
	require.Contains(t, rows, "device_code_locked|device|"+dev.ID+"||10 wrong authorisation codes|")
	requireNoSecret(t, rows, done.AuthorisationCode)

	// An admin issues a new activation, which works.
	var act api.DeviceActivationCreated
	require.Equal(t, http.StatusCreated, s.do(t, "POST", "/v1/devices/"+dev.ID+"/activation", admin, "", &act).StatusCode)
	require.Equal(t, http.StatusOK, s.do(t, "POST", "/v1/activations/"+act.Code+"?type=device", "", "", &done).StatusCode)
	require.Equal(t, http.StatusOK, s.do(t, "GET", tokenPath, "", "", nil, api.AuthorisationCodeHeader, done.AuthorisationCode).StatusCode)
}

func TestSecurity_Activation_WorkflowHoldsNoPatientID(t *testing.T) {
	s := startActivationStack(t, 1000)
	nurse, charge := s.login(t, "n01"), s.login(t, "c01")
	pid := "wfpat-" + uuid.NewString()[:8]
	path := "/v1/patients/" + pid + "/activation"
	require.Equal(t, http.StatusCreated, s.do(t, "POST", path, nurse, "", nil).StatusCode)
	var act api.PatientActivationCreated
	require.Equal(t, http.StatusOK, s.do(t, "POST", path, charge, "", &act).StatusCode)
	wrong := "ZZZZ"
	if act.PIN == wrong {
		wrong = "YYYY"
	}
	s.refused(t, http.StatusForbidden, api.CodeWrongPIN, "POST", "/v1/activations/"+act.ActivationCode, "", `{"pin":"`+wrong+`"}`)
	var done api.ActivationCompleted
	require.Equal(t, http.StatusOK, s.do(t, "POST", "/v1/activations/"+act.ActivationCode, "", `{"pin":"`+act.PIN+`"}`, &done).StatusCode)
	require.Equal(t, http.StatusOK, s.do(t, "GET", "/v1/patients/"+pid+"/token", "", "", nil,
		api.AuthorisationCodeHeader, done.AuthorisationCode).StatusCode)

	wfID := activationWorkflowID(t, "patient", pid)
	require.NotContains(t, wfID, pid)
	require.Regexp(t, `^activation:patient:[0-9a-f]{32}$`, wfID)
	require.Equal(t, workflows.ActivationRedeemed, waitActivation(t, wfID).State)
	// The whole history, payloads decoded, search attributes included.
	hist := activationHistory(t, wfID)
	require.NotContains(t, hist, pid)
	desc, err := env.Client.DescribeWorkflowExecution(context.Background(), wfID, "")
	require.NoError(t, err)
	require.NotContains(t, desc.String(), pid)
	env.ReplayAndRecord(t, wfID, "", "")
	// The audit still knows whose activation it was.
	require.Equal(t, []string{"activation_created", "activation_created", "activation_recreated", "attempt_failed", "completed",
		"token_issued"}, auditEvents(t, pid))
}

// A patient activation started before pseudonyms (workflow ID and input
// with the patient id) is still found through its stored workflow ID.
func TestActivation_LegacyPatientWorkflowIDStillWorks(t *testing.T) {
	s := startActivationStack(t, 1000)
	charge := s.login(t, "c01")
	keys, err := credential.NewKeys([]byte(activationSecret))
	require.NoError(t, err)
	pid := "old-" + uuid.NewString()[:8]
	id := uuid.NewString()
	code := keys.PatientActivationCode(id)
	codeHash, codeSalt, err := credential.Hash(code)
	require.NoError(t, err)
	pinHash, pinSalt, err := credential.Hash("ABCD")
	require.NoError(t, err)
	expires := workflows.ActivationExpiry(time.Now(), london, 5)
	wfID := "activation:patient:" + pid
	_, err = env.DB.Exec(`INSERT INTO activations (id, kind, subject_id, workflow_id, code_digest, code_hash, code_salt, pin_salt, expires_at, created_by)
		VALUES ($1, 'patient', $2, $3, $4, $5, $6, $7, $8, 'test')`, id, pid, wfID, keys.Digest(code), codeHash, codeSalt, pinSalt, expires)
	require.NoError(t, err)
	_, err = env.Client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: wfID, TaskQueue: s.TaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.VigilKindKey.ValueSet(workflows.KindActivation))},
		workflows.Activation, &workflows.ActivationInput{ActivationID: id, Kind: "patient", SubjectID: pid, ExpiresAt: expires,
			Hashes: workflows.ActivationHashes{CodeHash: codeHash, CodeSalt: codeSalt, PinHash: pinHash, PinSalt: pinSalt}})
	require.NoError(t, err)

	var act api.PatientActivationCreated
	require.Equal(t, http.StatusOK, s.do(t, "POST", "/v1/patients/"+pid+"/activation", charge, "", &act).StatusCode, "re-created in place")
	require.Equal(t, code, act.ActivationCode)
	var done api.ActivationCompleted
	require.Equal(t, http.StatusOK, s.do(t, "POST", "/v1/activations/"+code, "", `{"pin":"`+act.PIN+`"}`, &done).StatusCode)
	require.Equal(t, http.StatusOK, s.do(t, "GET", "/v1/patients/"+pid+"/token", "", "", nil,
		api.AuthorisationCodeHeader, done.AuthorisationCode).StatusCode)
	require.Equal(t, workflows.ActivationRedeemed, waitActivation(t, wfID).State)
}

func TestSecurity_Activation_AccessLogHasNoPatientID(t *testing.T) {
	s := startActivationStack(t, 1000)
	nurse := s.login(t, "n01")
	pid := "logpat-" + uuid.NewString()[:8]
	require.Equal(t, http.StatusCreated, s.do(t, "POST", "/v1/patients/"+pid+"/activation", nurse, "", nil).StatusCode)
	require.Equal(t, http.StatusOK, s.do(t, "GET", "/v1/patients/"+pid+"/activations", nurse, "", nil).StatusCode)
	s.refused(t, http.StatusNotFound, api.CodeNotFound, "GET", "/v1/patients/"+pid+"/token?hint=querysecret", "", "",
		api.AuthorisationCodeHeader, strings.Repeat("B", 32))
	s.refused(t, http.StatusNotFound, api.CodeNotFound, "GET", "/v1/patients/"+pid+"/no-such-thing", nurse, "")
	s.refused(t, http.StatusNotFound, api.CodeNotFound, "GET", "/"+pid, "", "")

	logs := s.log.String()
	require.NotContains(t, logs, pid, "a patient id is in the log")
	require.NotContains(t, logs, "querysecret", "a query string is in the log")
	require.Contains(t, logs, `"path":"/v1/patients/{id}/activation"`)
	require.Contains(t, logs, `"path":"/v1/patients/{id}/token"`)
	require.Contains(t, logs, `"path":"/v1/patients/{redacted}/{redacted}"`)
	require.Contains(t, logs, `"path":"/{redacted}"`)
}
