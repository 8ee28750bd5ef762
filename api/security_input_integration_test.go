//go:build integration

package api_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/slacknotify"
	"github.com/vigil-health/vigil/internal/stores"
	"github.com/vigil-health/vigil/internal/testenv"
)

// inputCase is one hostile request and the answer it must get.
type inputCase struct {
	name, method, path, token, body string
	status                          int
	field                           string
}

// checkInputCases sends each case and checks its status and error field.
func checkInputCases(t *testing.T, s *stack, cases []inputCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e api.ErrorBody
			resp := s.call(t, tc.method, tc.path, tc.token, tc.body, &e)
			require.Equal(t, tc.status, resp.StatusCode, "%s %s: %+v", tc.method, tc.path, e)
			if tc.status >= 400 {
				require.Equal(t, tc.field, e.Error.Field, "%+v", e)
			}
		})
	}
}

// cursorOf builds a list cursor by hand (the keyset format: base64 of
// tag:unix-micros:id), as a client could forge one.
func cursorOf(tag, micros, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tag + ":" + micros + ":" + id))
}

// TestSecurity_Input_JSONTextNamedField: a JSON string (value or key, at
// any depth) holding NUL, invalid UTF-8 or a lone surrogate is a 400 naming
// its path, on every endpoint that decodes JSON; before, NUL reached
// Postgres (a 500 or a retrying activity) and invalid UTF-8 was silently
// stored as U+FFFD.
func TestSecurity_Input_JSONTextNamedField(t *testing.T) {
	s := startStack(t)
	admin := s.login(t, "a01")
	source := s.apiKey(t, "security-input")
	system := s.token(t, auth.SubjectSystem, "security-input", nil, api.ScopeAll)
	am := func(room string) string {
		return `{"version":"4","status":"firing","receiver":"vigil","alerts":[
			{"status":"firing","labels":{"alertname":"O2_SATURATION_LOW","patient_id":"P-IN","room":"ICU-1"},"annotations":{},"startsAt":"` +
			time.Now().UTC().Format(time.RFC3339) + `","fingerprint":"f1"},
			{"status":"firing","labels":{"alertname":"O2_SATURATION_LOW","patient_id":"P-IN","room":"` + room + `"},"annotations":{},"startsAt":"` +
			time.Now().UTC().Format(time.RFC3339) + `","fingerprint":"f2"}]}`
	}
	message := func(content string) string {
		return `{"sender_type":"system","sender_id":"sys","receiver_type":"patient","receiver_id":"P-IN","message_type":{"value":0},"content":"` + content + `"}`
	}
	checkInputCases(t, s, []inputCase{
		// Before: 400 (NUL, caught by the login handler), 401 and 401
		// (invalid UTF-8 silently replaced, then a failed sign-in).
		{"login with NUL", "POST", "/v1/auth/login", "", `{"login":"a01\u0000","password":"x"}`, 400, "login"},
		{"login with invalid UTF-8", "POST", "/v1/auth/login", "", "{\"login\":\"a01\xff\",\"password\":\"x\"}", 400, "login"},
		{"password with invalid UTF-8", "POST", "/v1/auth/login", "", "{\"login\":\"a01\",\"password\":\"x\xc3\"}", 400, "password"},
		{"login with a lone surrogate", "POST", "/v1/auth/login", "", `{"login":"a01\ud800","password":"x"}`, 400, "login"},
		// Before: 202, and the check's activity retried its insert until
		// the workflow timed out (with ?wait=true the request hung 15 s).
		{"system check note with NUL", "POST", "/v1/system/check?wait=true", "", `{"note":"hello\u0000"}`, 400, "note"},
		// Before: 200, the name stored with U+FFFD.
		{"settings import with invalid UTF-8", "POST", "/v1/nodes/settings/import", admin, "{\"x1\": {\"COMMON_NAME\": \"Klinik \xff\"}}", 400, "x1.COMMON_NAME"},
		// Before: 400 naming room (the alert handler's own check).
		{"nested alert label with NUL", "POST", "/v1/alerts/alertmanager", source, am(`ICU\u0000`), 400, "alerts[1].labels.room"},
		// Before: 200, the label stored with U+FFFD.
		{"nested alert label with invalid UTF-8", "POST", "/v1/alerts/alertmanager", source, am("ICU\xff"), 400, "alerts[1].labels.room"},
		{"object key with NUL", "POST", "/v1/alerts/alertmanager", source, strings.Replace(am("ICU-2"), `"room"`, `"ro\u0000om"`, 1), 400, `alerts[0].labels."ro\x00om"`},
		// Before: 201, the message stored with U+FFFD.
		{"message content with invalid UTF-8", "POST", "/v1/messages", system, message("hello \xed\xa0\x80"), 400, "content"},
		{"message content with NUL", "POST", "/v1/messages", system, message(`hello \u0000`), 400, "content"},
		// Still fine: escapes, accents, emoji.
		{"valid text passes", "POST", "/v1/system/check", "", `{"note":"Überprüfung \u00e9 \ud83d\ude00"}`, 202, ""},
	})
}

// TestSecurity_Input_ParamTextNamedParameter: a query or path parameter
// with NUL, invalid UTF-8 or a control character is a 400 naming it, for
// every route (the textGuard middleware).
func TestSecurity_Input_ParamTextNamedParameter(t *testing.T) {
	s := startStack(t)
	admin := s.login(t, "a01")
	checkInputCases(t, s, []inputCase{
		// Before: 200 (the filters matched nothing).
		{"query NUL", "GET", "/v1/incidents?assigned_to=a%00b", admin, "", 400, "assigned_to"},
		{"query invalid UTF-8", "GET", "/v1/incidents?assigned_to=%FF", admin, "", 400, "assigned_to"},
		{"query control character", "GET", "/v1/incidents?assigned_to=a%1Bb", admin, "", 400, "assigned_to"},
		{"query name with NUL", "GET", "/v1/incidents?assigned%00to=x", admin, "", 400, `"assigned\x00to"`},
		// Before: 400 (the handlers' own checks), now refused before them.
		{"path NUL", "GET", "/v1/staff/a%00b", admin, "", 400, "id"},
		{"path invalid UTF-8", "GET", "/v1/nodes/%C3", admin, "", 400, "id"},
		{"anonymous path NUL", "GET", "/v1/system/checks/%00", "", "", 400, "id"},
		{"valid parameters pass", "GET", "/v1/incidents?assigned_to=n01&alert_type=FALL_DETECTED", admin, "", 200, ""},
	})
}

// TestSecurity_Input_SlackPayloadText: a correctly signed Slack payload is
// still checked: NUL or invalid UTF-8 in any of its strings is a 400 naming
// the field; before, a NUL user id made the staff lookup fail (500).
func TestSecurity_Input_SlackPayloadText(t *testing.T) {
	st := startStack(t)
	srv := httptest.NewServer(api.NewRouter(api.Deps{
		Stores: stores.New(env.DB), Temporal: env.Client, Logger: env.Logger, Metrics: metrics.New(),
		Namespace: env.Temporal.Namespace(), TaskQueue: st.TaskQueue, Signer: st.Signer, HospitalTZ: london,
		SlackSigningSecret: slackTestSecret, TransitionKeys: testenv.TransitionKeys,
	}))
	t.Cleanup(srv.Close)
	post := func(payload string) (int, api.ErrorBody) {
		body := slackForm(payload)
		req, err := http.NewRequest("POST", srv.URL+"/v1/slack/interactions", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range slacknotify.SignatureHeaders(slackTestSecret, []byte(body), time.Now()) {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		var e api.ErrorBody
		if resp.StatusCode != http.StatusOK {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
		}
		return resp.StatusCode, e
	}
	ack := func(user, value string) string {
		return `{"type":"block_actions","user":{"id":"` + user + `"},"actions":[{"action_id":"incident_acknowledge","value":"` + value + `"}]}`
	}
	for _, tc := range []struct {
		name, payload, field string
	}{
		{"user id with NUL", ack(`U1\u0000`, "00000000-0000-0000-0000-000000000000"), "payload.user.id"},
		{"user id with invalid UTF-8", ack("U1\xff", "00000000-0000-0000-0000-000000000000"), "payload.user.id"},
		{"action value with NUL", ack("U1", `x\u0000`), "payload.actions[0].value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, e := post(tc.payload)
			require.Equal(t, http.StatusBadRequest, status, "%+v", e)
			require.Equal(t, tc.field, e.Error.Field)
		})
	}
	status, _ := post(ack("U-NOT-LINKED", "00000000-0000-0000-0000-000000000000"))
	require.Equal(t, http.StatusOK, status, "a valid payload still gets Slack's 200")
}

// TestSecurity_Input_OutOfRangeIntegers: numbers beyond their column's
// range are a 400 naming the parameter, never a database error.
func TestSecurity_Input_OutOfRangeIntegers(t *testing.T) {
	s := startStack(t)
	admin := s.login(t, "a01")
	system := s.token(t, auth.SubjectSystem, "security-input", nil, api.ScopeAll)
	zero := "00000000-0000-0000-0000-000000000000"
	checkInputCases(t, s, []inputCase{
		// Before: 500 (Postgres inferred integer from "$1 = 0"). The
		// column is bigint: in range now.
		{"audit before beyond integer", "GET", "/v1/auth/audit?before=4611686018427387904", admin, "", 200, ""},
		{"audit before 2^31", "GET", "/v1/auth/audit?before=2147483648", admin, "", 200, ""},
		{"audit before max bigint", "GET", "/v1/auth/audit?before=9223372036854775807", admin, "", 200, ""},
		// Before: 400 (beyond 2^62).
		{"audit before beyond bigint", "GET", "/v1/auth/audit?before=9223372036854775808", admin, "", 400, "before"},
		{"audit before negative", "GET", "/v1/auth/audit?before=-1", admin, "", 400, "before"},
		// Before: 500 ("$3 = 0" inferred integer for a bigint column).
		{"notifications before 2^31", "GET", "/v1/me/notifications?before=2147483648", admin, "", 200, ""},
		{"notifications before beyond bigint", "GET", "/v1/me/notifications?before=9223372036854775808", admin, "", 400, "before"},
		// Before: 500 (the cursor's time was beyond Postgres' timestamps).
		{"incident cursor far past", "GET", "/v1/incidents?cursor=" + cursorOf("v1", "-9223372036854775807", zero), admin, "", 400, "cursor"},
		{"message cursor far past", "GET", "/v1/parties/P-IN/messages?cursor=" + cursorOf("m1", "-9223372036854775807", zero), system, "", 400, "cursor"},
		// Before: 200 (a year past 9999 that no row can have).
		{"incident cursor far future", "GET", "/v1/incidents?cursor=" + cursorOf("v1", "9223372036854775807", zero), admin, "", 400, "cursor"},
		{"incident cursor beyond int64", "GET", "/v1/incidents?cursor=" + cursorOf("v1", "9223372036854775808", zero), admin, "", 400, "cursor"},
		// Already 400 before (decoder or handler range checks): kept.
		{"limit beyond int64", "GET", "/v1/staff?limit=9223372036854775808", admin, "", 400, "limit"},
		{"message type beyond smallint", "POST", "/v1/messages", system,
			`{"sender_type":"system","sender_id":"sys","receiver_type":"patient","receiver_id":"P-IN","message_type":{"value":40000},"content":"x"}`, 400, "message_type.value"},
		{"rotation weekday beyond smallint", "POST", "/v1/rotations", admin, `{"role":"NURSE","staff_id":"n01","shift":"NIGHT","weekdays":[40000]}`, 400, "weekdays"},
		{"system token ttl beyond int64", "POST", "/v1/auth/system-token", admin, `{"system_id":"x","ttl_seconds":9223372036854775808}`, 400, "ttl_seconds"},
	})
}

// TestSecurity_Input_AnonymousSystemChecksLimited: the README's anonymous
// quick start still works, but an anonymous client gets 3 checks at once
// and 6 a minute, then 429 with Retry-After (audited once as
// rate_limited); a staff token is not limited. The note is bounded and
// free of control characters. Before: every anonymous request started a
// workflow.
func TestSecurity_Input_AnonymousSystemChecksLimited(t *testing.T) {
	s := startStack(t)
	for i, note := range []string{"line\nbreak", "tab\there", "bell\u0007", strings.Repeat("x", 501)} {
		var e api.ErrorBody
		body, err := json.Marshal(map[string]string{"note": note})
		require.NoError(t, err)
		resp := s.call(t, "POST", "/v1/system/check", "", string(body), &e)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "note %d", i)
		require.Equal(t, "note", e.Error.Field)
	}
	var done api.SystemCheck
	resp := s.call(t, "POST", "/v1/system/check?wait=true", "", `{"note":"hello"}`, &done)
	require.Equal(t, http.StatusOK, resp.StatusCode, "the README's quick start")
	require.Equal(t, "COMPLETED", done.Status)
	for i := range 2 {
		require.Equal(t, http.StatusAccepted, s.call(t, "POST", "/v1/system/check", "", `{"note":"burst"}`, nil).StatusCode, "check %d", i+2)
	}
	var e api.ErrorBody
	resp = s.call(t, "POST", "/v1/system/check", "", `{"note":"one too many"}`, &e)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, api.CodeRateLimited, e.Error.Code)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	var audited int
	require.NoError(t, env.DB.Get(&audited, `SELECT count(*) FROM auth_audit WHERE event = 'rate_limited' AND request_id = $1`, e.Error.RequestID))
	require.Equal(t, 1, audited)
	// A second refusal within the minute is answered but not audited again.
	resp = s.call(t, "POST", "/v1/system/check", "", `{"note":"still too many"}`, &e)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.NoError(t, env.DB.Get(&audited, `SELECT count(*) FROM auth_audit WHERE event = 'rate_limited' AND request_id = $1`, e.Error.RequestID))
	require.Zero(t, audited)
	// Invalid or foreign tokens are anonymous; a staff token is not limited.
	require.Equal(t, http.StatusTooManyRequests, s.call(t, "POST", "/v1/system/check", "not-a-token", `{}`, nil).StatusCode)
	staff := s.login(t, "n01")
	for i := range 4 {
		require.Equal(t, http.StatusAccepted, s.call(t, "POST", "/v1/system/check", staff, `{"note":"staff"}`, nil).StatusCode, "staff check %d", i)
	}
}
