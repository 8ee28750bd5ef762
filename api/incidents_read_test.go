package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/auth"
)

// TestIncidentsReadRefusesBadInputBeforeTheDatabase checks that every
// malformed query of the incident read endpoints is a 400 naming the field,
// answered without touching the (unreachable) database.
func TestIncidentsReadRefusesBadInputBeforeTheDatabase(t *testing.T) {
	signer, err := auth.NewSigner(auth.SignerConfig{Issuer: "vigil", HMACSecret: []byte("unit-test-secret-0123456789abcdef0123")})
	require.NoError(t, err)
	deps := unreachableDeps(t, nil)
	deps.Signer = signer
	router := api.NewRouter(deps)
	token, _, err := signer.Issue(auth.Claims{Subject: "N01", SubjectType: auth.SubjectStaff, Access: "staff", SessionID: "unit-test-session", TokenType: auth.TokenAccess}, time.Minute)
	require.NoError(t, err)

	tests := []struct {
		name  string
		path  string
		field string
	}{
		{"unknown status", "/v1/incidents?status=CLOSED", "status"},
		{"lower-case status", "/v1/incidents?status=open", "status"},
		{"empty status item", "/v1/incidents?status=OPEN,", "status"},
		{"empty status", "/v1/incidents?status=", "status"},
		{"unknown severity", "/v1/incidents?severity=HIGH,URGENT", "severity"},
		{"bad assignee", "/v1/incidents?assignee=N01%27--", "assignee"},
		{"empty assignee", "/v1/incidents?assignee=", "assignee"},
		{"bad alert type", "/v1/incidents?alert_type=fall", "alert_type"},
		{"from not RFC 3339", "/v1/incidents?from=2026-07-15", "from"},
		{"to not a time", "/v1/incidents?to=yesterday", "to"},
		{"unencoded plus in offset", "/v1/incidents?from=2026-07-15T10:00:00+01:00", "from"},
		{"from after to", "/v1/incidents?from=2026-07-15T10:00:00Z&to=2026-07-15T09:00:00Z", "from"},
		{"limit zero", "/v1/incidents?limit=0", "limit"},
		{"limit too large", "/v1/incidents?limit=201", "limit"},
		{"limit not a number", "/v1/incidents?limit=ten", "limit"},
		{"bad cursor", "/v1/incidents?cursor=bm90LWEtY3Vyc29y", "cursor"},
		{"id not a uuid", "/v1/incidents/42", "id"},
		{"metrics from not a time", "/v1/incidents/metrics?from=last-week", "from"},
		{"metrics to not a time", "/v1/incidents/metrics?to=2026-13-01T00:00:00Z", "to"},
		{"metrics from after to", "/v1/incidents/metrics?from=2026-07-15T10:00:00Z&to=2026-07-01T00:00:00Z", "from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(t, router, "GET", tt.path, "", "", "Authorization", "Bearer "+token)
			require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
			e := decodeError(t, w)
			require.Equal(t, api.CodeInvalidField, e.Code)
			require.Equal(t, tt.field, e.Field)
		})
	}

	t.Run("a token is required", func(t *testing.T) {
		for _, path := range []string{"/v1/incidents", "/v1/incidents/metrics", "/v1/incidents/6f1c7a52-8d0e-4b8e-9a77-0f3a1c2b4d5e"} {
			w := do(t, router, "GET", path, "", "")
			require.Equal(t, http.StatusUnauthorized, w.Code, path)
			require.Equal(t, api.CodeUnauthorized, decodeError(t, w).Code)
		}
	})
}
