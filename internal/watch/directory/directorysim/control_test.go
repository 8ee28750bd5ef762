package directorysim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/watch/directory"
)

// TestControlSetCapacity flips a service's status through the control
// endpoint, which the directory API then serves, and refuses bad requests
// with the reason; injected faults and the rate limit do not apply to it.
func TestControlSetCapacity(t *testing.T) {
	sim := New(Options{FailureRate: 1, RatePerSecond: 0.001})
	h := sim.Handler()
	post := func(user, pass, id, body string) (int, map[string]any) {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/sim/services/"+id+"/capacity", strings.NewReader(body))
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		raw, err := io.ReadAll(rec.Body)
		require.NoError(t, err)
		var out map[string]any
		require.NoError(t, json.Unmarshal(raw, &out), string(raw))
		return rec.Code, out
	}
	tests := []struct {
		name, user, id, body string
		want                 int
		wantCapacity, wantBy string
		wantError            string
	}{
		{name: "no credentials", id: "2000001", body: `{"capacity":"LOW"}`, want: http.StatusUnauthorized, wantError: "Authentication"},
		{name: "low", user: "capmon", id: "2000001", body: `{"capacity":"LOW"}`, want: http.StatusOK, wantCapacity: "LOW", wantBy: controlBy},
		{name: "none by someone", user: "capmon", id: "2000001", body: `{"capacity":"none","by":"duty.manager"}`, want: http.StatusOK, wantCapacity: "NONE", wantBy: "duty.manager"},
		{name: "reset", user: "capmon", id: "2000001", body: `{"capacity":""}`, want: http.StatusOK, wantCapacity: "", wantBy: controlBy},
		{name: "unknown capacity", user: "capmon", id: "2000001", body: `{"capacity":"MEDIUM"}`, want: http.StatusBadRequest, wantError: "capacity must be"},
		{name: "no capacity", user: "capmon", id: "2000001", body: `{}`, want: http.StatusBadRequest, wantError: "capacity"},
		{name: "unknown field", user: "capmon", id: "2000001", body: `{"capacity":"LOW","colour":"red"}`, want: http.StatusBadRequest, wantError: "capacity"},
		{name: "not json", user: "capmon", id: "2000001", body: `LOW`, want: http.StatusBadRequest, wantError: "capacity"},
		{name: "unknown service", user: "capmon", id: "9999999", body: `{"capacity":"LOW"}`, want: http.StatusNotFound, wantError: "9999999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := post(tt.user, "capmon-demo", tt.id, tt.body)
			require.Equal(t, tt.want, code, out)
			if tt.wantError != "" {
				require.Contains(t, out["error"].(map[string]any)["message"], tt.wantError)
				return
			}
			svc, ok := sim.Get(tt.id)
			require.True(t, ok)
			require.Equal(t, tt.wantCapacity, svc.Capacity)
			require.Equal(t, tt.wantBy, svc.UpdatedBy)
			served := out["success"].(map[string]any)["services"].([]any)[0].(map[string]any)
			status := served["capacity"].(map[string]any)["status"].(map[string]any)
			require.Equal(t, tt.wantCapacity, status["human"])
			require.Equal(t, RAG(tt.wantCapacity), status["rag"])
		})
	}

	// The directory API serves the change (without faults, to read it).
	sim.SetFailureRate(0)
	require.NoError(t, sim.SetCapacity("2000002", directory.CapacityHigh, "j.smith"))
	code, _ := post("capmon", "capmon-demo", "2000002", `{"capacity":"NONE"}`)
	require.Equal(t, http.StatusOK, code)
	r := get(t, sim.Handler(), "pathways", "pathways-demo", byIDBase+"2000002")
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, "NONE", r.env.Success.Services[0].Capacity.Status.Human)
	require.Equal(t, "RED", r.env.Success.Services[0].Capacity.Status.RAG)
}
