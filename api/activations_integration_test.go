//go:build integration

package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/activation/credential"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/demo"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/stores"
	"github.com/vigil-health/vigil/internal/testenv"
	"github.com/vigil-health/vigil/worker"
	"github.com/vigil-health/vigil/workflows"
)

const activationSecret = "integration-activation-secret-0123456789"

// activationLog collects the API's log lines for secret checks.
type activationLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *activationLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *activationLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// actStack is a stack with activations configured and its log captured.
type actStack struct {
	*stack
	log *activationLog
	// reg is the API's metrics registry.
	reg *metrics.Registry
}

// counter is the value of a counter of the stack's registry with exactly
// these labels (zero when the series does not exist).
func (s *actStack) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := s.reg.Gatherer().Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if maps.Equal(got, labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// startActivationStack is startStack with an activation secret and a
// per-IP rate of perMinute.
func startActivationStack(t *testing.T, perMinute int) *actStack {
	t.Helper()
	seedOnce.Do(func() {
		_, err := demo.SeedStaff(context.Background(), env.DB, demoPassword)
		require.NoError(t, err)
	})
	signer, err := auth.NewSigner(auth.SignerConfig{Issuer: "vigil", HMACSecret: []byte("integration-test-secret-0123456789abcdef")})
	require.NoError(t, err)
	taskQueue := "test-" + uuid.NewString()
	w := worker.New(env.Client, taskQueue, worker.Dependencies{DB: env.DB, HospitalTZ: london, TransitionKeys: testenv.TransitionKeys})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	logs := &activationLog{}
	reg := metrics.New()
	srv := httptest.NewServer(api.NewRouter(api.Deps{
		Stores: stores.New(env.DB), Temporal: env.Client, Metrics: reg, Namespace: env.Temporal.Namespace(), TaskQueue: taskQueue,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Signer: signer, HospitalTZ: london, TransitionKeys: testenv.TransitionKeys,
		ActivationSecret: []byte(activationSecret), ActivationRatePerMinute: perMinute,
	}))
	t.Cleanup(srv.Close)
	return &actStack{stack: &stack{Server: srv, TaskQueue: taskQueue, Signer: signer}, log: logs, reg: reg}
}

// do sends a request with optional extra headers (name, value pairs).
func (s *actStack) do(t *testing.T, method, path, token, body string, out any, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, out), string(raw))
	}
	return resp
}

// refused sends a request that must fail with status and error code.
func (s *actStack) refused(t *testing.T, status int, code, method, path, token, body string, headers ...string) api.ErrorDetail {
	t.Helper()
	var e api.ErrorBody
	resp := s.do(t, method, path, token, body, &e, headers...)
	require.Equal(t, status, resp.StatusCode, "%s %s: %+v", method, path, e.Error)
	require.Equal(t, code, e.Error.Code, e.Error.Message)
	return e.Error
}

// activationHistory is a workflow run's history as JSON.
func activationHistory(t *testing.T, workflowID string) string {
	t.Helper()
	var b strings.Builder
	it := env.Client.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		raw, err := protojson.Marshal(ev)
		require.NoError(t, err)
		// Payloads are base64 in the JSON: decode them, so a secret in a
		// payload is found as text.
		raw = payloadData.ReplaceAllFunc(raw, func(m []byte) []byte {
			data, err := base64.StdEncoding.DecodeString(string(payloadData.FindSubmatch(m)[1]))
			if err != nil {
				return m
			}
			return data
		})
		b.Write(raw)
		b.WriteByte('\n')
	}
	return b.String()
}

var payloadData = regexp.MustCompile(`"data":"([A-Za-z0-9+/=]*)"`)

// requireNoSecret fails when secret stands in text as a whole token (not
// inside a longer run of letters and digits, such as a hash or an id, where
// a short PIN can occur by chance).
func requireNoSecret(t *testing.T, text, secret string, msgAndArgs ...any) {
	t.Helper()
	re := regexp.MustCompile(`(^|[^A-Za-z0-9])` + regexp.QuoteMeta(secret) + `([^A-Za-z0-9]|$)`)
	require.False(t, re.MatchString(text), msgAndArgs...)
}

func waitActivation(t *testing.T, workflowID string) workflows.ActivationResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res workflows.ActivationResult
	require.NoError(t, env.Client.GetWorkflow(ctx, workflowID, "").Get(ctx, &res))
	return res
}

// auditRows is every audit row of a subject, as text.
func auditRows(t *testing.T, subjectID string) []string {
	t.Helper()
	var rows []string
	require.NoError(t, env.DB.Select(&rows, `SELECT concat_ws('|', event, subject_type, subject_id, actor, reason, request_id, client_ip)
		FROM auth_audit WHERE subject_id = $1 ORDER BY id`, subjectID))
	return rows
}

// activationWorkflowID is the workflow ID stored with the subject's newest
// activation (a patient's holds a pseudonym, not the patient id).
func activationWorkflowID(t *testing.T, kind, subjectID string) string {
	t.Helper()
	var id string
	require.NoError(t, env.DB.Get(&id, `SELECT workflow_id FROM activations WHERE kind = $1 AND subject_id = $2
		ORDER BY created_at DESC LIMIT 1`, kind, subjectID))
	return id
}

func auditEvents(t *testing.T, subjectID string) []string {
	t.Helper()
	var ev []string
	require.NoError(t, env.DB.Select(&ev, `SELECT event FROM auth_audit WHERE subject_id = $1 ORDER BY id`, subjectID))
	return ev
}

func TestActivation_PatientFlow(t *testing.T) {
	s := startActivationStack(t, 1000)
	nurse, charge := s.login(t, "n01"), s.login(t, "c01")
	pid := "p-" + uuid.NewString()[:8]

	var first api.PatientActivationCreated
	resp := s.do(t, "POST", "/v1/patients/"+pid+"/activation", nurse, "", &first)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	wfID := activationWorkflowID(t, "patient", pid)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	require.True(t, credential.Valid(first.PIN, credential.PINAlphabet, 4), first.PIN)
	require.True(t, credential.Valid(first.ActivationCode, credential.CodeAlphabet, 30), first.ActivationCode)
	require.True(t, workflows.ActivationExpiry(time.Now(), london, 5).Equal(first.ExpiresAt), "end of the 5th day: %s", first.ExpiresAt)

	// Re-created while unused (by a charge nurse): a new PIN, the same code.
	var second api.PatientActivationCreated
	require.Equal(t, http.StatusOK, s.do(t, "POST", "/v1/patients/"+pid+"/activation", charge, "", &second).StatusCode)
	require.Equal(t, first.ActivationCode, second.ActivationCode)
	pin := second.PIN
	if pin == first.PIN { // one chance in 923,521: draw again
		require.Equal(t, http.StatusOK, s.do(t, "POST", "/v1/patients/"+pid+"/activation", charge, "", &second).StatusCode)
		pin = second.PIN
	}
	code := first.ActivationCode
	path := "/v1/activations/" + code

	// A wrong PIN counts; an unknown code is a plain 404.
	wrong := "ZZZZ"
	if pin == wrong {
		wrong = "YYYY"
	}
	e := s.refused(t, http.StatusForbidden, api.CodeWrongPIN, "POST", path, "", `{"pin":"`+wrong+`"}`)
	require.Contains(t, e.Message, "9 attempts left")
	s.refused(t, http.StatusNotFound, api.CodeNotFound, "POST", "/v1/activations/"+strings.Repeat("A", 30), "", `{"pin":"`+pin+`"}`)
	s.refused(t, http.StatusBadRequest, api.CodeInvalidField, "POST", path, "", `{}`)

	// A validator rejection (a request built for another code) is refused
	// before it is accepted: it leaves no event in the history.
	before := strings.Count(activationHistory(t, wfID), "WorkflowExecutionUpdateAccepted")
	h, err := env.Client.UpdateWorkflow(context.Background(), client.UpdateWorkflowOptions{WorkflowID: wfID,
		UpdateName: workflows.ActivationUpdateAttempt, WaitForStage: client.WorkflowUpdateStageCompleted,
		Args: []any{&workflows.AttemptRequest{CodeHash: "bogus", PinHash: "x", PinSalt: "y", AuthCodeHash: "a", AuthCodeSalt: "b"}}})
	if err == nil {
		err = h.Get(context.Background(), nil)
	}
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, workflows.RejectActivationStale, appErr.Type())
	require.Equal(t, before, strings.Count(activationHistory(t, wfID), "WorkflowExecutionUpdateAccepted"))
	require.NotContains(t, activationHistory(t, wfID), "bogus")

	// The right PIN (case-insensitive) gives the authorisation code once.
	var done api.ActivationCompleted
	resp = s.do(t, "POST", path, "", `{"pin":"`+strings.ToLower(pin)+`"}`, &done)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, pid, done.PatientID)
	require.True(t, credential.Valid(done.AuthorisationCode, credential.CodeAlphabet, 32))
	s.refused(t, http.StatusConflict, api.CodeActivationUsed, "POST", path, "", `{"pin":"`+pin+`"}`)
	s.refused(t, http.StatusConflict, api.CodeActivationUsed, "POST", "/v1/patients/"+pid+"/activation", nurse, "")

	tokenPath := "/v1/patients/" + pid + "/token"
	e = s.refused(t, http.StatusBadRequest, api.CodeInvalidField, "GET", tokenPath, "", "")
	require.Equal(t, api.AuthorisationCodeHeader, e.Field)
	s.refused(t, http.StatusNotFound, api.CodeNotFound, "GET", tokenPath, "", "", api.AuthorisationCodeHeader, strings.Repeat("B", 32))
	s.refused(t, http.StatusNotFound, api.CodeNotFound, "GET", "/v1/patients/nobody/token", "", "", api.AuthorisationCodeHeader, done.AuthorisationCode)

	var tok api.SubjectToken
	require.Equal(t, http.StatusOK, s.do(t, "GET", tokenPath, "", "", &tok, api.AuthorisationCodeHeader, done.AuthorisationCode).StatusCode)
	claims, err := s.Signer.Verify(tok.Token, auth.TokenAccess)
	require.NoError(t, err)
	require.Equal(t, pid, claims.Subject)
	require.Equal(t, auth.SubjectPatient, claims.SubjectType)
	require.ElementsMatch(t, []string{"read:message", "write:message"}, claims.Scopes)
	require.WithinDuration(t, time.Now().Add(15*time.Minute), claims.ExpiresAt, 10*time.Second)
	// Single use.
	s.refused(t, http.StatusConflict, api.CodeActivationUsed, "GET", tokenPath, "", "", api.AuthorisationCodeHeader, done.AuthorisationCode)
	// A patient token cannot create activations.
	s.refused(t, http.StatusForbidden, api.CodeForbidden, "POST", "/v1/patients/"+pid+"/activation", tok.Token, "")

	require.Equal(t, workflows.ActivationRedeemed, waitActivation(t, wfID).State)
	hist := activationHistory(t, wfID)
	for name, secret := range map[string]string{"pin": pin, "first pin": first.PIN, "code": code, "authorisation code": done.AuthorisationCode} {
		requireNoSecret(t, hist, secret, "the %s is in the workflow history", name)
		requireNoSecret(t, s.log.String(), secret, "the %s is in the log", name)
		for _, row := range auditRows(t, pid) {
			requireNoSecret(t, row, secret, "the %s is in the audit", name)
		}
	}
	require.Contains(t, s.log.String(), "/v1/activations/{code}", "the access log shows the route, not the code")
	// Refusals: the wrong authorisation code, then its second use.
	require.Equal(t, []string{"activation_created", "activation_created", "activation_recreated", "attempt_failed", "completed",
		"login_refused", "token_issued", "login_refused"}, auditEvents(t, pid))
	// The same steps, counted (vigil_activation_steps_total, vigil_tokens_issued_total).
	step := func(step, outcome string) float64 {
		return s.counter(t, "vigil_activation_steps_total", map[string]string{"kind": "patient", "step": step, "outcome": outcome})
	}
	require.InDelta(t, 1, step("attempt", "ok"), 0)
	require.InDelta(t, 1, step("exchange", "ok"), 0)
	require.InDelta(t, 2, step("exchange", "refused"), 0, "the unknown code and the unknown patient")
	require.InDelta(t, 1, step("exchange", "used"), 0)
	require.InDelta(t, 1, s.counter(t, "vigil_tokens_issued_total", map[string]string{"subject_type": "patient"}), 0)
	var activations []api.ActivationView
	var list struct {
		Items []api.ActivationView `json:"items"`
	}
	require.Equal(t, http.StatusOK, s.do(t, "GET", "/v1/patients/"+pid+"/activations", nurse, "", &list).StatusCode)
	activations = list.Items
	require.Len(t, activations, 1)
	require.Equal(t, "redeemed", activations[0].State)
	env.ReplayAndRecord(t, wfID, "", "activation_patient.json")

	// After redemption a new activation (a charge nurse's) has a new code.
	var next api.PatientActivationCreated
	require.Equal(t, http.StatusCreated, s.do(t, "POST", "/v1/patients/"+pid+"/activation", charge, "", &next).StatusCode)
	require.NotEqual(t, code, next.ActivationCode)
	s.refused(t, http.StatusConflict, api.CodeActivationUsed, "POST", path, "", `{"pin":"`+next.PIN+`"}`)
}

func TestActivation_LockedAfterTheTenthWrongPIN(t *testing.T) {
	s := startActivationStack(t, 1000)
	nurse := s.login(t, "n01")
	pid := "lock-" + uuid.NewString()[:8]
	var act api.PatientActivationCreated
	require.Equal(t, http.StatusCreated, s.do(t, "POST", "/v1/patients/"+pid+"/activation", nurse, "", &act).StatusCode)
	wrong := "ZZZZ"
	if act.PIN == wrong {
		wrong = "YYYY"
	}
	path := "/v1/activations/" + act.ActivationCode
	for i := 1; i <= 9; i++ {
		s.refused(t, http.StatusForbidden, api.CodeWrongPIN, "POST", path, "", `{"pin":"`+wrong+`"}`)
	}
	s.refused(t, http.StatusForbidden, api.CodeActivationLocked, "POST", path, "", `{"pin":"`+wrong+`"}`)
	// Locked: even the right PIN is refused.
	s.refused(t, http.StatusForbidden, api.CodeActivationLocked, "POST", path, "", `{"pin":"`+act.PIN+`"}`)
	require.Equal(t, workflows.ActivationLocked, waitActivation(t, activationWorkflowID(t, "patient", pid)).State)
	attempts := func(outcome string) float64 {
		return s.counter(t, "vigil_activation_steps_total", map[string]string{"kind": "patient", "step": "attempt", "outcome": outcome})
	}
	require.InDelta(t, 9, attempts("refused"), 0)
	require.InDelta(t, 2, attempts("locked"), 0, "the tenth wrong PIN, then the right one on a locked activation")
	require.InDelta(t, 0, attempts("ok"), 0)
	ev := auditEvents(t, pid)
	require.Len(t, ev, 11)
	require.Equal(t, "locked", ev[10])
	// A new activation can be issued after a lock.
	require.Equal(t, http.StatusCreated, s.do(t, "POST", "/v1/patients/"+pid+"/activation", nurse, "", nil).StatusCode)
}

func TestActivation_ExpiredByItsDurableTimer(t *testing.T) {
	s := startActivationStack(t, 1000)
	keys, err := credential.NewKeys([]byte(activationSecret))
	require.NoError(t, err)
	// An activation that ends two seconds from now, started exactly as the
	// API starts one.
	pid := "exp-" + uuid.NewString()[:8]
	id := uuid.NewString()
	code := keys.PatientActivationCode(id)
	codeHash, codeSalt, err := credential.Hash(code)
	require.NoError(t, err)
	pinHash, pinSalt, err := credential.Hash("ABCD")
	require.NoError(t, err)
	expires := time.Now().Add(2 * time.Second)
	// Any workflow ID: the API finds it in the activation's row.
	wfID := workflows.ActivationWorkflowID("patient", strings.ReplaceAll(uuid.NewString(), "-", ""))
	_, err = env.DB.Exec(`INSERT INTO activations (id, kind, subject_id, workflow_id, code_digest, code_hash, code_salt, pin_salt, expires_at, created_by)
		VALUES ($1, 'patient', $2, $3, $4, $5, $6, $7, $8, 'test')`, id, pid, wfID, keys.Digest(code), codeHash, codeSalt, pinSalt, expires)
	require.NoError(t, err)
	_, err = env.Client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: wfID, TaskQueue: s.TaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.VigilKindKey.ValueSet(workflows.KindActivation))},
		workflows.Activation, &workflows.ActivationInput{ActivationID: id, Kind: "patient", ExpiresAt: expires,
			Hashes: workflows.ActivationHashes{CodeHash: codeHash, CodeSalt: codeSalt, PinHash: pinHash, PinSalt: pinSalt}})
	require.NoError(t, err)
	require.Equal(t, workflows.ActivationExpired, waitActivation(t, wfID).State)
	s.refused(t, http.StatusGone, api.CodeActivationExpired, "POST", "/v1/activations/"+code, "", `{"pin":"ABCD"}`)
	require.Equal(t, []string{"expired"}, auditEvents(t, pid))
	env.ReplayAndRecord(t, wfID, "", "activation_expired.json")
}

func TestActivation_DeviceAndClinicianFlow(t *testing.T) {
	s := startActivationStack(t, 1000)
	admin, nurse := s.login(t, "a01"), s.login(t, "n01")

	s.refused(t, http.StatusForbidden, api.CodeForbidden, "POST", "/v1/devices", nurse, `{"location_id":"ward-7"}`)
	e := s.refused(t, http.StatusBadRequest, api.CodeInvalidField, "POST", "/v1/devices", admin, `{"location_id":"ward 7"}`)
	require.Equal(t, "location_id", e.Field)
	var dev api.DeviceView
	require.Equal(t, http.StatusCreated, s.do(t, "POST", "/v1/devices", admin, `{"location_id":"ward-7","description":"Bay 3 tablet"}`, &dev).StatusCode)
	require.True(t, dev.Active)

	var first, act api.DeviceActivationCreated
	require.Equal(t, http.StatusCreated, s.do(t, "POST", "/v1/devices/"+dev.ID+"/activation", admin, "", &first).StatusCode)
	require.True(t, credential.Valid(first.Code, credential.Digits, 9), first.Code)
	// Re-created: a new code; the old one no longer works.
	require.Equal(t, http.StatusOK, s.do(t, "POST", "/v1/devices/"+dev.ID+"/activation", admin, "", &act).StatusCode)
	if act.Code != first.Code {
		s.refused(t, http.StatusNotFound, api.CodeNotFound, "POST", "/v1/activations/"+first.Code+"?type=device", "", "")
	}
	var done api.ActivationCompleted
	require.Equal(t, http.StatusOK, s.do(t, "POST", "/v1/activations/"+act.Code+"?type=device", "", "", &done).StatusCode)
	require.Equal(t, dev.ID, done.DeviceID)

	tokenPath := "/v1/devices/" + dev.ID + "/token"
	e = s.refused(t, http.StatusBadRequest, api.CodeInvalidField, "GET", tokenPath, "", "")
	require.Equal(t, api.AuthorisationCodeHeader, e.Field)
	var devTok api.SubjectToken
	require.Equal(t, http.StatusOK, s.do(t, "GET", tokenPath, "", "", &devTok, api.AuthorisationCodeHeader, done.AuthorisationCode).StatusCode)
	claims, err := s.Signer.Verify(devTok.Token, auth.TokenAccess)
	require.NoError(t, err)
	require.Equal(t, auth.SubjectDevice, claims.SubjectType)
	require.Equal(t, []string{"ward-7"}, claims.LocationIDs)
	require.WithinDuration(t, time.Now().Add(24*time.Hour), claims.ExpiresAt, 10*time.Second)
	s.refused(t, http.StatusConflict, api.CodeActivationUsed, "GET", tokenPath, "", "", api.AuthorisationCodeHeader, done.AuthorisationCode)
	wfID := workflows.ActivationWorkflowID("device", dev.ID)
	require.Equal(t, workflows.ActivationRedeemed, waitActivation(t, wfID).State)
	hist := activationHistory(t, wfID)
	for _, secret := range []string{act.Code, first.Code, done.AuthorisationCode} {
		requireNoSecret(t, hist, secret)
		requireNoSecret(t, s.log.String(), secret)
	}
	env.ReplayAndRecord(t, wfID, "", "activation_device.json")

	// Clinicians.
	suffix := uuid.NewString()[:6]
	yesterday := time.Now().In(london).AddDate(0, 0, -1).Format(time.DateOnly)
	today := time.Now().In(london).Format(time.DateOnly)
	for _, body := range []string{
		`{"clinician_id":"ok-` + suffix + `","send_entry_identifier":"ok` + suffix + `","login_active":true,"groups":["SEND Clinician"],"location_ids":["ward-7","ward-8"],"contract_expiry_eod_date":"` + today + `"}`,
		`{"clinician_id":"off-` + suffix + `","send_entry_identifier":"off` + suffix + `","login_active":false,"groups":["send clinician"]}`,
		`{"clinician_id":"nogroup-` + suffix + `","send_entry_identifier":"nogroup` + suffix + `","login_active":true,"groups":["send admin"]}`,
		`{"clinician_id":"ended-` + suffix + `","send_entry_identifier":"ended` + suffix + `","login_active":true,"groups":["send superclinician"],"contract_expiry_eod_date":"` + yesterday + `"}`,
	} {
		require.Equal(t, http.StatusCreated, s.do(t, "POST", "/v1/clinicians", admin, body, nil).StatusCode, body)
	}
	s.refused(t, http.StatusConflict, api.CodeConflict, "POST", "/v1/clinicians", admin, `{"clinician_id":"ok-`+suffix+`","login_active":true}`)
	e = s.refused(t, http.StatusBadRequest, api.CodeInvalidField, "POST", "/v1/clinicians", admin, `{"clinician_id":"x","login_active":true,"contract_expiry_eod_date":"31/12/2027"}`)
	require.Equal(t, "contract_expiry_eod_date", e.Field)

	login := "/v1/clinicians/token?send_entry_identifier="
	var cTok api.SubjectToken
	require.Equal(t, http.StatusOK, s.do(t, "GET", login+"ok"+suffix, devTok.Token, "", &cTok).StatusCode)
	cClaims, err := s.Signer.Verify(cTok.Token, auth.TokenAccess)
	require.NoError(t, err)
	require.Equal(t, "ok-"+suffix, cClaims.Subject)
	require.Equal(t, auth.SubjectClinician, cClaims.SubjectType)
	require.Equal(t, []string{"ward-7"}, cClaims.LocationIDs, "the device's ward, one of the clinician's")
	require.Equal(t, dev.ID, cClaims.DeviceID)
	require.Contains(t, cClaims.Scopes, api.ScopeWriteActivation)

	s.refused(t, http.StatusForbidden, api.CodeForbidden, "GET", login+"ok"+suffix, nurse, "")
	s.refused(t, http.StatusForbidden, api.CodeForbidden, "GET", login+"ok"+suffix, cTok.Token, "")
	s.refused(t, http.StatusBadRequest, api.CodeInvalidField, "GET", "/v1/clinicians/token", devTok.Token, "")
	s.refused(t, http.StatusNotFound, api.CodeNotFound, "GET", login+"nobody"+suffix, devTok.Token, "")
	s.refused(t, http.StatusForbidden, api.CodeLoginInactive, "GET", login+"off"+suffix, devTok.Token, "")
	s.refused(t, http.StatusForbidden, api.CodeNotInGroup, "GET", login+"nogroup"+suffix, devTok.Token, "")
	s.refused(t, http.StatusForbidden, api.CodeContractExpired, "GET", login+"ended"+suffix, devTok.Token, "")
	var ended api.ClinicianView
	require.Equal(t, http.StatusOK, s.do(t, "GET", "/v1/clinicians/ended-"+suffix, nurse, "", &ended).StatusCode)
	require.False(t, ended.LoginActive, "an ended contract turns the login off")
	for id, reason := range map[string]string{"off-": "login inactive", "nogroup-": "not in an allowed group", "ended-": "contract expired"} {
		rows := auditRows(t, id+suffix)
		require.Len(t, rows, 1)
		require.Contains(t, rows[0], "login_refused|clinician|"+id+suffix+"|"+dev.ID+"|"+reason)
	}
	require.Len(t, auditRows(t, "send_entry_identifier:nobody"+suffix), 1)

	// The clinician's token creates patient activations.
	require.Equal(t, http.StatusCreated, s.do(t, "POST", "/v1/patients/pc-"+suffix+"/activation", cTok.Token, "", nil).StatusCode)

	// PATCH a clinician: re-activated with a future contract, the login works.
	require.Equal(t, http.StatusOK, s.do(t, "PATCH", "/v1/clinicians/ended-"+suffix, admin,
		`{"login_active":true,"contract_expiry_eod_date":""}`, &ended).StatusCode)
	require.Nil(t, ended.ContractExpiryEODDate)
	require.Equal(t, http.StatusOK, s.do(t, "GET", login+"ended"+suffix, devTok.Token, "", nil).StatusCode)

	// Deactivating the device stops its tokens at once, and is audited.
	var patched api.DeviceView
	require.Equal(t, http.StatusOK, s.do(t, "PATCH", "/v1/devices/"+dev.ID, admin, `{"active":false}`, &patched).StatusCode)
	require.False(t, patched.Active)
	s.refused(t, http.StatusUnauthorized, api.CodeDeviceInactive, "GET", login+"ok"+suffix, devTok.Token, "")
	s.refused(t, http.StatusConflict, api.CodeDeviceInactive, "POST", "/v1/devices/"+dev.ID+"/activation", admin, "")
	var devices struct {
		Items []api.DeviceView `json:"items"`
	}
	require.Equal(t, http.StatusOK, s.do(t, "GET", "/v1/devices?active=false&location_id=ward-7", nurse, "", &devices).StatusCode)
	require.Contains(t, devices.Items, patched)
	s.refused(t, http.StatusBadRequest, api.CodeInvalidField, "GET", "/v1/devices?active=maybe", nurse, "")
	rows := auditRows(t, dev.ID)
	require.Contains(t, strings.Join(rows, "\n"), "device_updated|device|"+dev.ID+"|A01|deactivated; tokens revoked")
	require.Contains(t, strings.Join(rows, "\n"), "login_refused|device|"+dev.ID+"|"+dev.ID+"|device inactive")

	// Re-activated, an old token stays revoked.
	require.Equal(t, http.StatusOK, s.do(t, "PATCH", "/v1/devices/"+dev.ID, admin, `{"active":true}`, nil).StatusCode)
	s.refused(t, http.StatusUnauthorized, api.CodeDeviceInactive, "GET", login+"ok"+suffix, devTok.Token, "")
}

func TestActivation_InactiveDeviceGetsNoToken(t *testing.T) {
	s := startActivationStack(t, 1000)
	admin := s.login(t, "a01")
	dev, done := deviceActivated(t, s, admin, "ward-9")
	require.Equal(t, http.StatusOK, s.do(t, "PATCH", "/v1/devices/"+dev.ID, admin, `{"active":false}`, nil).StatusCode)
	s.refused(t, http.StatusForbidden, api.CodeDeviceInactive, "GET", "/v1/devices/"+dev.ID+"/token", "", "",
		api.AuthorisationCodeHeader, done.AuthorisationCode)
}

func TestSystemToken(t *testing.T) {
	s := startActivationStack(t, 1000)
	admin, nurse := s.login(t, "a01"), s.login(t, "n01")
	s.refused(t, http.StatusForbidden, api.CodeForbidden, "POST", "/v1/auth/system-token", nurse, `{"system_id":"robot"}`)
	e := s.refused(t, http.StatusBadRequest, api.CodeInvalidField, "POST", "/v1/auth/system-token", admin, `{"system_id":"robot","ttl_seconds":7200}`)
	require.Equal(t, "ttl_seconds", e.Field)
	var tok api.SubjectToken
	require.Equal(t, http.StatusOK, s.do(t, "POST", "/v1/auth/system-token", admin, `{"system_id":"robot-`+t.Name()+`"}`, &tok).StatusCode)
	claims, err := s.Signer.Verify(tok.Token, auth.TokenAccess)
	require.NoError(t, err)
	require.Equal(t, auth.SubjectSystem, claims.SubjectType)
	require.Equal(t, []string{api.ScopeAll}, claims.Scopes)
	require.WithinDuration(t, time.Now().Add(15*time.Minute), claims.ExpiresAt, 10*time.Second)
	// Full scope: it creates patient activations.
	require.Equal(t, http.StatusCreated, s.do(t, "POST", "/v1/patients/sys-"+uuid.NewString()[:8]+"/activation", tok.Token, "", nil).StatusCode)
	rows := auditRows(t, "robot-"+t.Name())
	require.Len(t, rows, 1)
	require.True(t, strings.HasPrefix(rows[0], "system_token_issued|system|robot-"+t.Name()+"|A01|ttl 900s"), rows[0])
	require.True(t, strings.HasSuffix(rows[0], "|127.0.0.1"), rows[0])

	var page struct {
		Items []api.AuthAuditEntry `json:"items"`
	}
	require.Equal(t, http.StatusOK, s.do(t, "GET", "/v1/auth/audit?event=system_token_issued&subject_id=robot-"+t.Name(), admin, "", &page).StatusCode)
	require.Len(t, page.Items, 1)
	s.refused(t, http.StatusForbidden, api.CodeForbidden, "GET", "/v1/auth/audit", nurse, "")
	s.refused(t, http.StatusBadRequest, api.CodeInvalidField, "GET", "/v1/auth/audit?event=nope", admin, "")
}

func TestActivation_RateLimitedPerClientIP(t *testing.T) {
	s := startActivationStack(t, 3)
	unknown := "/v1/activations/" + strings.Repeat("Q", 30)
	for range 3 {
		s.refused(t, http.StatusNotFound, api.CodeNotFound, "POST", unknown, "", `{"pin":"ABCD"}`)
	}
	var e api.ErrorBody
	resp := s.do(t, "POST", unknown, "", `{"pin":"ABCD"}`, &e)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, api.CodeRateLimited, e.Error.Code)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	// The token endpoints share the budget.
	s.refused(t, http.StatusTooManyRequests, api.CodeRateLimited, "GET", "/v1/patients/p1/token", "", "",
		api.AuthorisationCodeHeader, strings.Repeat("B", 32))
}

func TestActivation_NotConfiguredIs503(t *testing.T) {
	s := startStack(t)
	var e api.ErrorBody
	resp := s.call(t, "POST", "/v1/activations/"+strings.Repeat("A", 30), "", `{"pin":"ABCD"}`, &e)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, api.CodeUnavailable, e.Error.Code)
}
