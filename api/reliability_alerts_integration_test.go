//go:build integration

package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/stores"
	"github.com/vigil-health/vigil/internal/testenv"
	"github.com/vigil-health/vigil/worker"
)

// alertCall posts body to path with the given headers and decodes the JSON
// answer into out (when not nil).
func (s *stack) alertCall(t *testing.T, path, token, body string, headers map[string][]string, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	for k, vs := range headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && len(raw) > 0 {
		require.NoError(t, jsonUnmarshal(raw, out), string(raw))
	}
	return resp
}

// idem is an Idempotency-Key header.
func idem(key string) map[string][]string { return map[string][]string{"Idempotency-Key": {key}} }

// alertWithID is alertBody with an alert_id.
func alertWithID(alertType, patient, alertID string) string {
	id, err := json.Marshal(alertID)
	if err != nil {
		panic(err)
	}
	return strings.TrimSuffix(alertBody(alertType, patient), "}") + `,"alert_id":` + string(id) + `}`
}

// incidentAlertCount waits until GET /v1/incidents/{id} shows want alerts,
// then checks that it stays there (a late duplicate would show up).
func incidentAlertCount(t *testing.T, s *stack, staff, id string, want int) {
	t.Helper()
	var got struct {
		AlertCount int `json:"alert_count"`
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		if assert.Equal(c, http.StatusOK, s.call(t, "GET", "/v1/incidents/"+id, staff, "", &got).StatusCode) {
			assert.Equal(c, want, got.AlertCount)
		}
	}, 20*time.Second, 100*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, http.StatusOK, s.call(t, "GET", "/v1/incidents/"+id, staff, "", &got).StatusCode)
	require.Equal(t, want, got.AlertCount, "still counted once")
}

// TestReliability_AlertIdempotencyKeyCountsOnce: a monitor that retries an
// alert (same Idempotency-Key header, or same alert_id) has it counted
// once; the retry is answered 200 "duplicate" with the incident. Before
// the fix a retry after a 500 was counted again (alert count 3 from 2
// alerts).
func TestReliability_AlertIdempotencyKeyCountsOnce(t *testing.T) {
	s := startStack(t)
	key := s.apiKey(t, "idem-monitor")
	staff := s.login(t, "c01")
	tests := []struct {
		name string
		send func(patient, id string, out *api.AlertResponse) *http.Response
	}{
		{"Idempotency-Key header", func(patient, id string, out *api.AlertResponse) *http.Response {
			return s.alertCall(t, "/v1/alerts", key, alertBody("FALL_DETECTED", patient), idem(id), out)
		}},
		{"alert_id", func(patient, id string, out *api.AlertResponse) *http.Response {
			return s.alertCall(t, "/v1/alerts", key, alertWithID("FALL_DETECTED", patient, id), nil, out)
		}},
		{"both, the same", func(patient, id string, out *api.AlertResponse) *http.Response {
			return s.alertCall(t, "/v1/alerts", key, alertWithID("FALL_DETECTED", patient, id), idem(id), out)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			patient := "P-IDEM-" + uuid.NewString()[:8]
			var first, retry, second, retry2 api.AlertResponse
			require.Equal(t, http.StatusCreated, tt.send(patient, "mon-1:seq-41", &first).StatusCode)
			require.Equal(t, "created", first.Result)

			resp := tt.send(patient, "mon-1:seq-41", &retry)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "duplicate", retry.Result)
			require.Equal(t, first.IncidentID, retry.IncidentID)
			require.Equal(t, 1, retry.AlertCount)

			require.Equal(t, http.StatusOK, tt.send(patient, "mon-1:seq-42", &second).StatusCode)
			require.Equal(t, "merged", second.Result)
			require.Equal(t, 2, second.AlertCount)
			require.Equal(t, http.StatusOK, tt.send(patient, "mon-1:seq-42", &retry2).StatusCode)
			require.Equal(t, "duplicate", retry2.Result)
			require.Equal(t, 2, retry2.AlertCount)

			incidentAlertCount(t, s, staff, first.IncidentID, 2)
			var merges int
			require.NoError(t, env.DB.Get(&merges, `SELECT count(*) FROM incident_events WHERE incident_id = $1 AND action = 'ALERT_MERGED'`, first.IncidentID))
			require.Equal(t, 1, merges, "a duplicate leaves no trace in the timeline")
		})
	}

	t.Run("PagerDuty trigger with Idempotency-Key", func(t *testing.T) {
		patient := "P-IDEM-PD-" + uuid.NewString()[:8]
		dedup := "vent-" + uuid.NewString()[:8]
		for range 3 {
			var res api.PagerDutyResponse
			resp := s.alertCall(t, "/v1/alerts/pagerduty/v2/enqueue", key, pdEvent(key, "trigger", dedup, patient), idem("pd-event-1"), &res)
			require.Equal(t, http.StatusAccepted, resp.StatusCode)
			require.Equal(t, "success", res.Status)
		}
		ids := waitOpen(t, patient, 1)
		incidentAlertCount(t, s, staff, ids[0], 1)
	})

	t.Run("alerts without a key still count each time", func(t *testing.T) {
		patient := "P-IDEM-NONE-" + uuid.NewString()[:8]
		var a, b api.AlertResponse
		require.Equal(t, http.StatusCreated, s.call(t, "POST", "/v1/alerts", key, alertBody("FALL_DETECTED", patient), &a).StatusCode)
		require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/alerts", key, alertBody("FALL_DETECTED", patient), &b).StatusCode)
		require.Equal(t, "merged", b.Result)
		require.Equal(t, 2, b.AlertCount)
	})

	bad := []struct {
		name, path, body, field string
		headers                 map[string][]string
	}{
		{"a key over 255 characters", "/v1/alerts", alertBody("FALL_DETECTED", "P-BAD"), "Idempotency-Key", idem(strings.Repeat("k", 256))},
		{"a key of spaces", "/v1/alerts", alertBody("FALL_DETECTED", "P-BAD"), "Idempotency-Key", idem("   ")},
		{"the key twice", "/v1/alerts", alertBody("FALL_DETECTED", "P-BAD"), "Idempotency-Key", map[string][]string{"Idempotency-Key": {"a", "b"}}},
		{"header and alert_id differ", "/v1/alerts", alertWithID("FALL_DETECTED", "P-BAD", "a"), "Idempotency-Key", idem("b")},
		{"an alert_id with a control character", "/v1/alerts", alertWithID("FALL_DETECTED", "P-BAD", "a\u0001b"), "alert_id", nil},
		{"an alert_id over 255 characters", "/v1/alerts", alertWithID("FALL_DETECTED", "P-BAD", strings.Repeat("é", 256)), "alert_id", nil},
		{"a PagerDuty key over 255 characters", "/v1/alerts/pagerduty", pdEvent(key, "trigger", "d", "P-BAD"), "Idempotency-Key", idem(strings.Repeat("k", 256))},
	}
	for _, tt := range bad {
		t.Run("400: "+tt.name, func(t *testing.T) {
			var e api.ErrorBody
			require.Equal(t, http.StatusBadRequest, s.alertCall(t, tt.path, key, tt.body, tt.headers, &e).StatusCode)
			require.Equal(t, tt.field, e.Error.Field)
		})
	}
}

// TestReliability_AlertAlertmanagerResendCountsOnce: Alertmanager resends
// a whole batch after a 5xx (and repeats still-firing alerts); each alert's
// fingerprint and startsAt make the resend count once.
func TestReliability_AlertAlertmanagerResendCountsOnce(t *testing.T) {
	s := startStack(t)
	key := s.apiKey(t, "idem-am")
	staff := s.login(t, "c01")
	patient := "P-IDEM-AM-" + uuid.NewString()[:8]
	startsAt := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	labels := map[string]string{"alertname": "O2_SATURATION_LOW", "patient_id": patient, "room": "ICU-4", "value": "84%", "dedup_key": patient + ":o2"}
	fp1, fp2 := uuid.NewString(), uuid.NewString()
	body := `{"version":"4","status":"firing","receiver":"vigil","alerts":[` +
		amAlert(t, labels, startsAt, fp1) + "," + amAlert(t, labels, startsAt, fp2) + `]}`

	var res api.BatchResult
	require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/alerts/alertmanager", key, body, &res).StatusCode)
	require.Equal(t, 1, res.Created)
	require.Equal(t, 1, res.Merged)
	ids := waitOpen(t, patient, 1)

	for range 2 {
		var again api.BatchResult
		require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/alerts/alertmanager", key, body, &again).StatusCode)
		require.Equal(t, api.BatchResult{Received: 2, Duplicates: 2}, again, "the resend changed nothing")
	}
	incidentAlertCount(t, s, staff, ids[0], 2)

	// A new firing of the same alert (a new startsAt) counts.
	refired := `{"version":"4","status":"firing","receiver":"vigil","alerts":[` +
		amAlert(t, labels, time.Now().UTC().Format(time.RFC3339), fp1) + `]}`
	var third api.BatchResult
	require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/alerts/alertmanager", key, refired, &third).StatusCode)
	require.Equal(t, 1, third.Merged)
	incidentAlertCount(t, s, staff, ids[0], 3)
}

// TestReliability_AlertMergeDoesNotWaitForPostgres: a merge answers as soon
// as the incident workflow has counted it, even while the incidents table
// is locked; the projection catches up once the lock is released. Before
// the fix the merge waited for Postgres, the API gave up after 30 s and
// answered 500, and the alert was applied anyway.
func TestReliability_AlertMergeDoesNotWaitForPostgres(t *testing.T) {
	s := startStack(t)
	key := s.apiKey(t, "idem-lock")
	staff := s.login(t, "c01")
	patient := "P-LOCK-" + uuid.NewString()[:8]
	var first api.AlertResponse
	require.Equal(t, http.StatusCreated, s.call(t, "POST", "/v1/alerts", key, alertBody("FALL_DETECTED", patient), &first).StatusCode)
	waitIncident(t, first.IncidentID, func(r incidentRow) bool { return r.Status == "ASSIGNED" })

	tx, err := env.DB.Beginx()
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = tx.Exec(`LOCK TABLE incidents IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)

	for i, want := range []int{2, 3} {
		var merged api.AlertResponse
		start := time.Now()
		resp := s.alertCall(t, "/v1/alerts", key, alertBody("FALL_DETECTED", patient), idem(fmt.Sprintf("lock-%d", i)), &merged)
		took := time.Since(start)
		t.Logf("merge %d answered %d in %v with the incidents table locked", i+1, resp.StatusCode, took)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "merged", merged.Result)
		require.Equal(t, want, merged.AlertCount)
		require.Less(t, took, 2*time.Second, "the merge did not wait for the projection")
	}
	// The projection is still blocked: its write waits on the lock.
	var waiting int
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.NoError(c, env.DB.Get(&waiting, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`))
		assert.Positive(c, waiting)
	}, 5*time.Second, 50*time.Millisecond)

	require.NoError(t, tx.Rollback())
	released := time.Now()
	waitIncident(t, first.IncidentID, func(r incidentRow) bool { return r.AlertCount == 3 })
	t.Logf("projection caught up %v after the lock was released", time.Since(released))
	incidentAlertCount(t, s, staff, first.IncidentID, 3)
	var merges int
	require.NoError(t, env.DB.Get(&merges, `SELECT count(*) FROM incident_events WHERE incident_id = $1 AND action = 'ALERT_MERGED'`, first.IncidentID))
	require.Equal(t, 2, merges, "every merge reached the timeline")

	// The run, with its projections written beside the answers, closes
	// cleanly and replays deterministically.
	require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/incidents/"+first.IncidentID+"/resolve", staff,
		`{"resolution_notes":"Sensor reseated, patient fine."}`, nil).StatusCode)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, env.Client.GetWorkflow(ctx, first.WorkflowID, "").Get(ctx, nil))
	env.ReplayAndRecord(t, first.WorkflowID, "", "") // the answer-before-projection run replays
}

// alertAPI is the API alone on taskQueue (no worker), with an alert wait of
// wait.
func alertAPI(t *testing.T, taskQueue string, wait time.Duration) *stack {
	t.Helper()
	srv := httptest.NewServer(api.NewRouter(api.Deps{
		Stores: stores.New(env.DB), Temporal: env.Client, Logger: env.Logger, Metrics: metrics.New(),
		Namespace: env.Temporal.Namespace(), TaskQueue: taskQueue, AlertWait: wait,
		TransitionKeys: testenv.TransitionKeys,
	}))
	t.Cleanup(srv.Close)
	return &stack{Server: srv, TaskQueue: taskQueue}
}

// TestReliability_AlertNotConfirmedInTimeIs504: with no worker to run the
// incident workflow, nothing can confirm the alert within the wait: the
// answer is 504 maybe_applied with Retry-After (never 500), in each
// route's shape. The alert is then applied once a worker runs, and a retry
// with the same key is counted once.
func TestReliability_AlertNotConfirmedInTimeIs504(t *testing.T) {
	const wait = 2 * time.Second
	base := startStack(t) // staff sign in and read incidents here
	staff := base.login(t, "c01")
	taskQueue := "test-noworker-" + uuid.NewString()
	s := alertAPI(t, taskQueue, wait)
	key := s.apiKey(t, "idem-timeout")
	patient := "P-504-" + uuid.NewString()[:8]

	start := time.Now()
	var e api.MaybeAppliedBody
	resp := s.alertCall(t, "/v1/alerts", key, alertBody("FALL_DETECTED", patient), idem("t-1"), &e)
	took := time.Since(start)
	t.Logf("POST /v1/alerts answered %d after %v", resp.StatusCode, took)
	require.Equal(t, http.StatusGatewayTimeout, resp.StatusCode)
	require.Equal(t, "5", resp.Header.Get("Retry-After"))
	require.Equal(t, api.CodeMaybeApplied, e.Error.Code)
	require.Contains(t, e.Error.Message, "may have been applied")
	require.Equal(t, 5, e.Error.RetryAfter)
	require.NotEmpty(t, e.Error.WorkflowID)
	require.Less(t, took, wait+time.Second, "answered within the wait")

	// Alertmanager: per-alert results, 504 so that it resends.
	amPatient := "P-504-AM-" + uuid.NewString()[:8]
	amBody := `{"version":"4","status":"firing","receiver":"vigil","alerts":[` +
		amAlert(t, map[string]string{"alertname": "O2_SATURATION_LOW", "patient_id": amPatient, "room": "ICU-4", "value": "84%"},
			time.Now().UTC().Format(time.RFC3339), uuid.NewString()) + `]}`
	var batch api.BatchResult
	resp = s.call(t, "POST", "/v1/alerts/alertmanager", key, amBody, &batch)
	require.Equal(t, http.StatusGatewayTimeout, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	require.Len(t, batch.Unconfirmed, 1)
	require.Equal(t, 0, batch.Unconfirmed[0].Index)
	require.Equal(t, "maybe_applied", batch.Unconfirmed[0].Result)
	require.NotNil(t, batch.Error)
	require.Equal(t, api.CodeMaybeApplied, batch.Error.Code)

	// PagerDuty's route keeps PagerDuty's error shape.
	var pd api.PagerDutyErrorResponse
	resp = s.alertCall(t, "/v1/alerts/pagerduty/v2/enqueue", key, pdEvent(key, "trigger", "vent-504", "P-504-PD"), idem("pd-504"), &pd)
	require.Equal(t, http.StatusGatewayTimeout, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	require.Equal(t, "error", pd.Status)
	require.Contains(t, pd.Errors[0], "may have been applied")

	// A worker comes: the alerts the workflow had not confirmed are
	// applied, and the retries count once.
	w := worker.New(env.Client, taskQueue, worker.Dependencies{DB: env.DB, HospitalTZ: london, TransitionKeys: testenv.TransitionKeys})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	var retry api.AlertResponse
	resp = s.alertCall(t, "/v1/alerts", key, alertBody("FALL_DETECTED", patient), idem("t-1"), &retry)
	require.Contains(t, []int{http.StatusOK, http.StatusCreated}, resp.StatusCode)
	t.Logf("the retry after the worker came answered %q", retry.Result)
	require.Contains(t, []string{"duplicate", "created"}, retry.Result)
	incidentAlertCount(t, base, staff, retry.IncidentID, 1)

	var again api.BatchResult
	require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/alerts/alertmanager", key, amBody, &again).StatusCode)
	require.Equal(t, 1, again.Duplicates+again.Created)
	ids := waitOpen(t, amPatient, 1)
	incidentAlertCount(t, base, staff, ids[0], 1)
}
