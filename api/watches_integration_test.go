//go:build integration

package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/slacknotify"
	"github.com/vigil-health/vigil/internal/slacknotify/slackfake"
	"github.com/vigil-health/vigil/internal/watch/directory"
	"github.com/vigil-health/vigil/internal/watch/directory/directorysim"
	"github.com/vigil-health/vigil/worker"
)

// directoryStack is the API and worker with the directory simulator behind
// the real DoS client, and Slack answered by a local fake.
func directoryStack(t *testing.T) (*stack, *directorysim.Simulator, *slackfake.Server) {
	t.Helper()
	sim := directorysim.New(directorysim.Options{Accounts: directorysim.DefaultAccounts(), RatePerSecond: 100})
	url, stop, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(stop)
	accounts := map[string]directory.Account{}
	for user, a := range directorysim.DefaultAccounts() {
		accounts[a.Role] = directory.Account{Username: user, Password: a.Password}
	}
	dos, err := directory.NewDoSClient(directory.DoSConfig{
		BaseURL: url, Accounts: accounts, RatePerSecond: 100,
		DefaultRole: directorysim.PathwaysRole, FallbackRole: directorysim.DigitalRole,
	})
	require.NoError(t, err)
	slackSrv := slackfake.New(t)
	s := startStackWith(t, worker.Dependencies{
		Directory: dos, DirectoryRate: 100,
		Slack: slacknotify.New(slacknotify.Config{Token: slackSrv.Token, APIURL: slackSrv.APIURL()}),
	})
	return s, sim, slackSrv
}

type watchStatuses struct {
	Polls    int  `json:"polls"`
	Paused   bool `json:"paused"`
	Degraded bool `json:"degraded"`
	Services []struct {
		ServiceID string `json:"service_id"`
		Capacity  string `json:"capacity"`
	} `json:"services"`
}

func TestWatches_ChangeIsDetectedRecordedAndAnnounced(t *testing.T) {
	s, sim, slackSrv := directoryStack(t)
	charge := s.login(t, "c01")
	svc := directorysim.DemoServices()[0]
	require.NoError(t, sim.SetCapacity(svc.ID, directory.CapacityHigh, "nurse.a"))

	var w api.WatchView
	body := `{"kind":"service","service_id":"` + svc.ID + `","interval_seconds":60,"slack_channel":"C0WATCH01","description":"test watch"}`
	resp := s.call(t, "POST", "/v1/watches", charge, body, &w)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, "watch:"+w.ID, w.WorkflowID)
	path := "/v1/watches/" + w.ID

	var st watchStatuses
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		s.call(t, "GET", path+"/statuses", charge, "", &st)
		if assert.Len(c, st.Services, 1) {
			assert.Equal(c, directory.CapacityHigh, st.Services[0].Capacity, "first sighting")
		}
	}, 15*time.Second, 100*time.Millisecond)
	require.Empty(t, slackSrv.Messages("C0WATCH01"), "a first sighting is silent")

	// The directory changes; pausing and resuming polls at once rather than
	// waiting out the interval.
	require.NoError(t, sim.SetCapacity(svc.ID, directory.CapacityLow, "nurse.b"))
	require.Equal(t, http.StatusOK, s.call(t, "POST", path+"/pause", charge, "", nil).StatusCode)
	var e api.ErrorBody
	require.Equal(t, http.StatusConflict, s.call(t, "POST", path+"/pause", charge, "", &e).StatusCode)
	require.Contains(t, e.Error.Message, "already paused")
	require.Equal(t, http.StatusOK, s.call(t, "POST", path+"/resume", charge, "", nil).StatusCode)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		msgs := slackSrv.Messages("C0WATCH01")
		if assert.Len(c, msgs, 1) {
			assert.Contains(c, msgs[0].Text, "was changed by a user to :large_orange_diamond: LOW")
			assert.Contains(c, string(msgs[0].Attachments), `"warning"`)
		}
	}, 15*time.Second, 100*time.Millisecond)
	var change struct {
		Kind, Previous, Capacity, ChangedBy string
	}
	require.NoError(t, env.DB.QueryRow(`SELECT kind, previous_capacity, capacity, changed_by FROM status_changes
		WHERE watch_id = $1 AND kind = 'change'`, w.ID).Scan(&change.Kind, &change.Previous, &change.Capacity, &change.ChangedBy))
	require.Equal(t, []string{"change", "HIGH", "LOW", "nurse.b"}, []string{change.Kind, change.Previous, change.Capacity, change.ChangedBy})
	var snapshots int
	require.NoError(t, env.DB.Get(&snapshots, `SELECT count(*) FROM snapshots WHERE watch_id = $1`, w.ID))
	require.GreaterOrEqual(t, snapshots, 2)

	var statuses struct {
		Services []struct {
			ServiceID string `json:"service_id"`
			Capacity  string `json:"capacity"`
		} `json:"services"`
	}
	require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/statuses?capacity=LOW", charge, "", &statuses).StatusCode)
	found := false
	for _, sv := range statuses.Services {
		found = found || (sv.ServiceID == svc.ID && sv.Capacity == "LOW")
	}
	require.True(t, found, "GET /v1/statuses lists the service at LOW")

	// PATCH takes effect in the running workflow.
	var patched api.WatchView
	require.Equal(t, http.StatusOK, s.call(t, "PATCH", path, charge, `{"interval_seconds":120,"recovery_polls":2}`, &patched).StatusCode)
	require.Equal(t, 120, patched.IntervalSeconds)
	require.Equal(t, 2, patched.RecoveryPolls)

	require.Equal(t, http.StatusNoContent, s.call(t, "DELETE", path, charge, "", nil).StatusCode)
	require.Equal(t, http.StatusNotFound, s.call(t, "GET", path, charge, "", nil).StatusCode)

	// The stopped run replays against today's code (and is recorded for the
	// replay unit test with VIGIL_RECORD_HISTORIES=1).
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		d, err := env.Client.DescribeWorkflowExecution(t.Context(), w.WorkflowID, "")
		if assert.NoError(c, err) {
			assert.NotNil(c, d.GetWorkflowExecutionInfo().GetCloseTime())
		}
	}, 10*time.Second, 50*time.Millisecond)
	env.ReplayAndRecord(t, w.WorkflowID, "", "watch.json")
}

func TestWatches_BadInputNamesTheField(t *testing.T) {
	s, _, _ := directoryStack(t)
	charge := s.login(t, "c01")
	search := func(mut func(m map[string]any)) string {
		sr := map[string]any{"postcode": "LS1 4AP", "distance_miles": 10, "service_types": []string{"40"}}
		m := map[string]any{"kind": "search", "search": sr, "interval_seconds": 300}
		mut(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name  string
		body  string
		field string
	}{
		{"bad postcode", search(func(m map[string]any) { m["search"].(map[string]any)["postcode"] = "NOT A POSTCODE" }), "search.postcode"},
		{"interval below the minimum", search(func(m map[string]any) { m["interval_seconds"] = 30 }), "interval_seconds"},
		{"unknown service type", search(func(m map[string]any) { m["search"].(map[string]any)["service_types"] = []string{"999"} }), "search.service_types"},
		{"no service types", search(func(m map[string]any) { m["search"].(map[string]any)["service_types"] = []string{} }), "search.service_types"},
		{"distance out of range", search(func(m map[string]any) { m["search"].(map[string]any)["distance_miles"] = 0 }), "search.distance_miles"},
		{"unknown kind", search(func(m map[string]any) { m["kind"] = "region" }), "kind"},
		{"service watch without id", `{"kind":"service"}`, "service_id"},
		{"bad sms number", search(func(m map[string]any) { m["sms_numbers"] = []string{"07700 900001"} }), "sms_numbers"},
		{"bad slack channel", search(func(m map[string]any) { m["slack_channel"] = "#ops" }), "slack_channel"},
		{"recovery polls too many", search(func(m map[string]any) { m["recovery_polls"] = 50 }), "recovery_polls"},
		{"unknown field", search(func(m map[string]any) { m["owner"] = "me" }), "owner"},
		{"interval that would wrap around", search(func(m map[string]any) { m["interval_seconds"] = int64(36028797018964268) }), "interval_seconds"},
		{"NUL in description", search(func(m map[string]any) { m["description"] = "ward\u0000" }), "description"},
		{"bad search role", search(func(m map[string]any) { m["search"].(map[string]any)["search_role"] = "any role" }), "search.search_role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e api.ErrorBody
			resp := s.call(t, "POST", "/v1/watches", charge, tt.body, &e)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, e.Error.Message)
			require.Equal(t, tt.field, e.Error.Field)
		})
	}
	var before int
	require.NoError(t, env.DB.Get(&before, `SELECT count(*) FROM watches`))
	require.Equal(t, http.StatusForbidden, s.call(t, "POST", "/v1/watches", s.login(t, "n01"), search(func(map[string]any) {}), nil).StatusCode)
	require.Equal(t, http.StatusUnauthorized, s.call(t, "POST", "/v1/watches", "", search(func(map[string]any) {}), nil).StatusCode)
	var after int
	require.NoError(t, env.DB.Get(&after, `SELECT count(*) FROM watches`))
	require.Equal(t, before, after, "no half-written watch")
	require.Equal(t, http.StatusBadRequest, s.call(t, "GET", "/v1/watches/not-a-uuid", charge, "", nil).StatusCode)
}
