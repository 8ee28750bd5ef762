//go:build integration

package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// blockDatabase makes this package's database refuse connections and ends
// its sessions (the shared server keeps running), until the returned func
// lets it accept connections again.
func blockDatabase(t *testing.T) (unblock func()) {
	t.Helper()
	var name string
	require.NoError(t, env.DB.Get(&name, `SELECT current_database()`))
	admin, err := env.AdminDB()
	require.NoError(t, err)
	_, err = admin.Exec(`ALTER DATABASE "` + name + `" ALLOW_CONNECTIONS false`)
	require.NoError(t, err)
	_, err = admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name)
	require.NoError(t, err)
	done := false
	unblock = func() {
		if done {
			return
		}
		done = true
		_, err := admin.Exec(`ALTER DATABASE "` + name + `" ALLOW_CONNECTIONS true`)
		require.NoError(t, err)
		_ = admin.Close()
	}
	t.Cleanup(unblock)
	return unblock
}

// TestReliability_DatabaseOutageIs503: with the database unreachable, every
// route that needs it answers 503 with Retry-After (before: 500 "internal
// error" without Retry-After), and recovers when it is back.
func TestReliability_DatabaseOutageIs503(t *testing.T) {
	s := startStack(t)
	admin := s.login(t, "a01")
	key := s.apiKey(t, "outage")
	now := time.Now().UTC().Format(time.RFC3339)
	cases := []struct {
		name, method, path, token, body string
	}{
		{"login", "POST", "/v1/auth/login", "", `{"login":"n01","password":"` + demoPassword + `"}`},
		{"incident list", "GET", "/v1/incidents", admin, ""},
		{"staff list", "GET", "/v1/staff", admin, ""},
		{"alert", "POST", "/v1/alerts", key, `{"alert_type":"FALL_DETECTED","patient_id":"OUT-1","room":"W1","value":1,"source":"t","observed_at":"` + now + `"}`},
		{"node list", "GET", "/v1/nodes", admin, ""},
		{"watch list", "GET", "/v1/watches", admin, ""},
		{"audit", "GET", "/v1/auth/audit", admin, ""},
	}
	unblock := blockDatabase(t)
	time.Sleep(3 * time.Second) // past the session check's cache
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			resp := s.call(t, tc.method, tc.path, tc.token, tc.body, &e)
			require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, tc.path)
			require.NotEmpty(t, resp.Header.Get("Retry-After"))
			require.Equal(t, "unavailable", e.Error.Code)
		})
	}
	unblock()
	require.Eventually(t, func() bool {
		return s.call(t, "GET", "/v1/incidents", admin, "", nil).StatusCode == http.StatusOK
	}, 15*time.Second, 200*time.Millisecond, "recovers once the database is back")
}
