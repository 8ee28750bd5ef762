package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/auth"
)

// referenceRouter is the API on unreachable dependencies with a working
// signer, and tokens for each access level: every answer it gives comes
// before the database is touched.
func referenceRouter(t *testing.T) (http.Handler, map[string]string) {
	t.Helper()
	signer, err := auth.NewSigner(auth.SignerConfig{Issuer: "vigil", HMACSecret: []byte("reference-unit-test-secret-0123456789")})
	require.NoError(t, err)
	deps := unreachableDeps(t, nil)
	deps.Signer = signer
	tokens := map[string]string{}
	for who, claims := range map[string]auth.Claims{
		"nurse":  {Subject: "N01", Access: auth.AccessStaff, Role: "NURSE"},
		"charge": {Subject: "C01", Access: auth.AccessCharge, Role: "CHARGE_NURSE"},
		"admin":  {Subject: "A01", Access: auth.AccessAdmin, Role: "NURSE"},
	} {
		claims.SubjectType, claims.TokenType, claims.SessionID = auth.SubjectStaff, auth.TokenAccess, "unit-test-session"
		tok, _, err := signer.Issue(claims, time.Hour)
		require.NoError(t, err)
		tokens[who] = tok
	}
	return api.NewRouter(deps), tokens
}

func TestReferenceRefusalsBeforeTheDatabase(t *testing.T) {
	router, tokens := referenceRouter(t)
	goodPolicy := `{"steps":[{"wait_seconds":60,"target":"next_in_role"},{"wait_seconds":60,"target":"failsafe"}]}`
	tests := []struct {
		name   string
		who    string
		method string
		path   string
		body   string
		status int
		code   string
		field  string
	}{
		// No token.
		{"list alert types without a token", "", "GET", "/v1/alert-types", "", 401, api.CodeUnauthorized, ""},
		{"on call without a token", "", "GET", "/v1/oncall", "", 401, api.CodeUnauthorized, ""},
		{"create staff without a token", "", "POST", "/v1/staff", `{}`, 401, api.CodeUnauthorized, ""},
		{"list api keys without a token", "", "GET", "/v1/api-keys", "", 401, api.CodeUnauthorized, ""},

		// Insufficient access.
		{"nurse creates staff", "nurse", "POST", "/v1/staff", `{}`, 403, api.CodeForbidden, ""},
		{"charge creates staff", "charge", "POST", "/v1/staff", `{}`, 403, api.CodeForbidden, ""},
		{"nurse deletes staff", "nurse", "DELETE", "/v1/staff/N02", "", 403, api.CodeForbidden, ""},
		{"charge edits an alert type", "charge", "PUT", "/v1/alert-types/FALL_DETECTED", `{}`, 403, api.CodeForbidden, ""},
		{"nurse creates an override", "nurse", "POST", "/v1/oncall/overrides", `{}`, 403, api.CodeForbidden, ""},
		{"nurse deletes an override", "nurse", "DELETE", "/v1/oncall/overrides/1", "", 403, api.CodeForbidden, ""},
		{"nurse creates a rotation", "nurse", "POST", "/v1/rotations", `{}`, 403, api.CodeForbidden, ""},
		{"charge edits a policy", "charge", "PUT", "/v1/escalation-policies/severity:LOW", goodPolicy, 403, api.CodeForbidden, ""},
		{"charge lists api keys", "charge", "GET", "/v1/api-keys", "", 403, api.CodeForbidden, ""},
		{"nurse creates an api key", "nurse", "POST", "/v1/api-keys", `{"name":"x"}`, 403, api.CodeForbidden, ""},
		{"nurse renames herself", "nurse", "PATCH", "/v1/staff/N01", `{"name":"x"}`, 403, api.CodeForbidden, "name"},
		{"nurse marks another unavailable", "nurse", "PATCH", "/v1/staff/N02", `{"available":false}`, 403, api.CodeForbidden, "available"},
		{"charge changes another's role", "charge", "PATCH", "/v1/staff/N02", `{"available":false,"role":"SURGEON"}`, 403, api.CodeForbidden, "role"},

		// Bad input, named.
		{"unknown severity", "admin", "PUT", "/v1/alert-types/T_X", `{"severity":"URGENT","category":"C","requires_immediate_response":true,"roles":["NURSE"]}`, 400, api.CodeInvalidField, "severity"},
		{"empty roles", "admin", "PUT", "/v1/alert-types/T_X", `{"severity":"LOW","category":"C","requires_immediate_response":true,"roles":[]}`, 400, api.CodeInvalidField, "roles"},
		{"missing immediate flag", "admin", "PUT", "/v1/alert-types/T_X", `{"severity":"LOW","category":"C","roles":["NURSE"]}`, 400, api.CodeInvalidField, "requires_immediate_response"},
		{"malformed alert type", "admin", "PUT", "/v1/alert-types/lower", `{}`, 400, api.CodeInvalidField, "type"},
		{"malformed alert type read", "nurse", "GET", "/v1/alert-types/x", "", 400, api.CodeInvalidField, "type"},
		{"alert type unknown field", "admin", "PUT", "/v1/alert-types/T_X", `{"colour":"red"}`, 400, api.CodeUnknownField, "colour"},
		{"staff short password", "admin", "POST", "/v1/staff", `{"id":"T-1","login":"t1","name":"T","role":"NURSE","password":"short"}`, 400, api.CodeInvalidField, "password"},
		{"staff bad id", "admin", "POST", "/v1/staff", `{"id":"a b","login":"t1","name":"T","role":"NURSE","password":"long-enough"}`, 400, api.CodeInvalidField, "id"},
		{"staff bad access", "admin", "POST", "/v1/staff", `{"id":"T-1","login":"t1","name":"T","role":"NURSE","access":"root","password":"long-enough"}`, 400, api.CodeInvalidField, "access"},
		{"staff password hash field", "admin", "POST", "/v1/staff", `{"password_hash":"x"}`, 400, api.CodeUnknownField, "password_hash"},
		{"staff path id", "nurse", "GET", "/v1/staff/a%20b", "", 400, api.CodeInvalidField, "id"},
		{"patch unknown field", "admin", "PATCH", "/v1/staff/N02", `{"nickname":"x"}`, 400, api.CodeUnknownField, "nickname"},
		{"patch wrong type", "admin", "PATCH", "/v1/staff/N02", `{"available":"no"}`, 400, api.CodeInvalidField, "available"},
		{"patch bad phone", "nurse", "PATCH", "/v1/staff/N01", `{"phone":"12"}`, 400, api.CodeInvalidField, "phone"},
		{"bad shift", "charge", "POST", "/v1/rotations", `{"role":"NURSE","staff_id":"N01","shift":"MORNING"}`, 400, api.CodeInvalidField, "shift"},
		{"weekday 8", "charge", "POST", "/v1/rotations", `{"role":"NURSE","staff_id":"N01","shift":"DAY","weekdays":[1,8]}`, 400, api.CodeInvalidField, "weekdays"},
		{"rotation path id", "charge", "DELETE", "/v1/rotations/abc", "", 400, api.CodeInvalidField, "id"},
		{"ends before it starts", "charge", "POST", "/v1/oncall/overrides", `{"role":"NURSE","staff_id":"N01","starts_at":"2031-01-01T12:00:00Z","ends_at":"2031-01-01T10:00:00Z"}`, 400, api.CodeInvalidField, "ends_at"},
		{"bad RFC3339 starts_at", "charge", "POST", "/v1/oncall/overrides", `{"role":"NURSE","staff_id":"N01","starts_at":"1 Jan 2031","ends_at":"2031-01-01T10:00:00Z"}`, 400, api.CodeInvalidField, "starts_at"},
		{"override created_by is not accepted", "charge", "POST", "/v1/oncall/overrides", `{"created_by":"A01"}`, 400, api.CodeUnknownField, "created_by"},
		{"bad at", "nurse", "GET", "/v1/oncall?at=tomorrow", "", 400, api.CodeInvalidField, "at"},
		{"malformed on-call role", "nurse", "GET", "/v1/oncall?role=nurse", "", 400, api.CodeInvalidField, "role"},
		{"bad from", "nurse", "GET", "/v1/oncall/overrides?from=yesterday", "", 400, api.CodeInvalidField, "from"},
		{"to before from", "nurse", "GET", "/v1/oncall/overrides?from=2031-01-02T00:00:00Z&to=2031-01-01T00:00:00Z", "", 400, api.CodeInvalidField, "to"},
		{"last step not failsafe", "admin", "PUT", "/v1/escalation-policies/severity:LOW", `{"steps":[{"wait_seconds":60,"target":"next_in_role"}]}`, 400, api.CodeInvalidField, "steps"},
		{"wait 5 seconds", "admin", "PUT", "/v1/escalation-policies/severity:LOW", `{"steps":[{"wait_seconds":5,"target":"failsafe"}]}`, 400, api.CodeInvalidField, "steps[0].wait_seconds"},
		{"no steps", "admin", "PUT", "/v1/escalation-policies/severity:LOW", `{"steps":[]}`, 400, api.CodeInvalidField, "steps"},
		{"short reminder", "admin", "PUT", "/v1/escalation-policies/severity:LOW", `{"steps":[{"wait_seconds":60,"target":"failsafe"}],"start_reminder_seconds":10}`, 400, api.CodeInvalidField, "start_reminder_seconds"},
		{"bad policy id", "nurse", "GET", "/v1/escalation-policies/urgent", "", 400, api.CodeInvalidField, "id"},
		{"empty api key name", "admin", "POST", "/v1/api-keys", `{"name":" "}`, 400, api.CodeInvalidField, "name"},
		{"api key path id", "admin", "DELETE", "/v1/api-keys/0", "", 400, api.CodeInvalidField, "id"},
		{"limit too large", "nurse", "GET", "/v1/staff?limit=500", "", 400, api.CodeInvalidField, "limit"},
		{"negative offset", "nurse", "GET", "/v1/roles?offset=-1", "", 400, api.CodeInvalidField, "offset"},
		{"bad severity filter", "nurse", "GET", "/v1/alert-types?severity=URGENT", "", 400, api.CodeInvalidField, "severity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.who != "" {
				headers = []string{"Authorization", "Bearer " + tokens[tt.who]}
			}
			contentType := ""
			if tt.body != "" {
				contentType = "application/json"
			}
			w := do(t, router, tt.method, tt.path, contentType, tt.body, headers...)
			require.Equal(t, tt.status, w.Code, w.Body.String())
			e := decodeError(t, w)
			require.Equal(t, tt.code, e.Code)
			require.Equal(t, tt.field, e.Field)
		})
	}
}
