//go:build integration

package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
)

func alertBody(alertType, patient string) string {
	return fmt.Sprintf(`{"alert_type":%q,"patient_id":%q,"room":"W1-12","value":"fall","source":"bed-sensor","observed_at":%q}`,
		alertType, patient, time.Now().UTC().Format(time.RFC3339))
}

type incidentRow struct {
	Status     string  `db:"status"`
	AssignedTo *string `db:"assigned_to"`
	AlertCount int     `db:"alert_count"`
	ResolvedBy string  `db:"resolved_by"`
}

func waitIncident(t *testing.T, id string, cond func(r incidentRow) bool) incidentRow {
	t.Helper()
	var row incidentRow
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		err := env.DB.Get(&row, `SELECT status, assigned_to, alert_count, resolved_by FROM incidents WHERE id = $1`, id)
		if assert.NoError(c, err) {
			assert.True(c, cond(row), "incident is %+v", row)
		}
	}, 20*time.Second, 50*time.Millisecond)
	return row
}

// sse reads notification events from a stream until ctx ends.
func sse(t *testing.T, ctx context.Context, url, token string) <-chan api.Notification {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/v1/me/notifications/stream?access_token="+token, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	out := make(chan api.Notification, 16)
	go func() {
		defer func() { _ = resp.Body.Close() }()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var n api.Notification
				if json.Unmarshal([]byte(data), &n) == nil {
					out <- n
				}
			}
		}
	}()
	return out
}

func TestIncidents_AlertToResolutionThroughHTTP(t *testing.T) {
	s := startStack(t)
	key := s.apiKey(t, "bed-sensors")
	patient := "P-" + uuid.NewString()[:8]

	var created, merged api.AlertResponse
	resp := s.call(t, "POST", "/v1/alerts", key, alertBody("FALL_DETECTED", patient), &created)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, "created", created.Result)
	require.Equal(t, "/v1/incidents/"+created.IncidentID, resp.Header.Get("Location"))
	resp = s.call(t, "POST", "/v1/alerts", key, alertBody("FALL_DETECTED", patient), &merged)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "merged", merged.Result)
	require.Equal(t, created.IncidentID, merged.IncidentID)
	require.Equal(t, 2, merged.AlertCount)

	row := waitIncident(t, created.IncidentID, func(r incidentRow) bool { return r.Status == "ASSIGNED" && r.AssignedTo != nil })
	assignee := *row.AssignedTo
	var login string
	require.NoError(t, env.DB.Get(&login, `SELECT login FROM staff WHERE id = $1`, assignee))
	token := s.login(t, login)

	// The page reaches the assignee's live stream (after any unread pages
	// that earlier tests' incidents left her: the stream replays those
	// first).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events := sse(t, ctx, s.URL, token)
	for paged := false; !paged; {
		select {
		case n := <-events:
			require.NotNil(t, n.IncidentID)
			if *n.IncidentID != created.IncidentID {
				continue
			}
			require.Equal(t, "INCIDENT_ASSIGNED", n.Kind)
			paged = true
		case <-ctx.Done():
			t.Fatal("no notification on the stream")
		}
	}

	other := "n01"
	if login == "n01" {
		other = "n02"
	}
	path := "/v1/incidents/" + created.IncidentID
	var e api.ErrorBody
	require.Equal(t, http.StatusForbidden, s.call(t, "POST", path+"/acknowledge", s.login(t, other), "", &e).StatusCode,
		"one nurse cannot acknowledge another's incident")
	require.Equal(t, api.CodeForbidden, e.Error.Code)
	require.Equal(t, http.StatusUnauthorized, s.call(t, "POST", path+"/acknowledge", "bad-token", "", nil).StatusCode)
	require.Equal(t, http.StatusConflict, s.call(t, "POST", path+"/start", token, "", &e).StatusCode)
	require.Contains(t, e.Error.Message, "acknowledge it first")

	var tr api.TransitionResponse
	require.Equal(t, http.StatusOK, s.call(t, "POST", path+"/acknowledge", token, "", &tr).StatusCode)
	require.Equal(t, "ASSIGNED", tr.PreviousStatus)
	require.Equal(t, "ACKNOWLEDGED", tr.Status)
	require.Equal(t, http.StatusOK, s.call(t, "POST", path+"/notes", token, `{"note":"Patient conscious"}`, nil).StatusCode)
	require.Equal(t, http.StatusOK, s.call(t, "POST", path+"/start", token, "", &tr).StatusCode)
	require.Equal(t, "IN_PROGRESS", tr.Status)
	require.Equal(t, http.StatusBadRequest, s.call(t, "POST", path+"/resolve", token, `{"resolution_notes":"ok"}`, &e).StatusCode)
	require.Equal(t, "resolution_notes", e.Error.Field)
	require.Equal(t, http.StatusBadRequest, s.call(t, "POST", path+"/resolve", token, `{"resolution_notes":"fixed it, all fine\u0000"}`, &e).StatusCode,
		"a NUL never reaches the workflow or Postgres")
	require.Equal(t, "resolution_notes", e.Error.Field)
	require.Equal(t, http.StatusOK, s.call(t, "POST", path+"/resolve", token, `{"resolution_notes":"Helped back to bed, no injury."}`, &tr).StatusCode)
	require.Equal(t, "RESOLVED", tr.Status)
	require.Equal(t, http.StatusConflict, s.call(t, "POST", path+"/acknowledge", token, "", &e).StatusCode)

	var actions []string
	require.NoError(t, env.DB.Select(&actions, `SELECT action FROM incident_events WHERE incident_id = $1 ORDER BY seq`, created.IncidentID))
	// The second alert merges before or after the assignment, depending on
	// timing; everything else has one order.
	at := slices.Index(actions, "ALERT_MERGED")
	require.Positive(t, at)
	actions = slices.Delete(actions, at, at+1)
	require.Equal(t, []string{"CREATED", "ASSIGNED", "PAGED", "ACKNOWLEDGED", "NOTE_ADDED", "STARTED_PROGRESS", "RESOLVED"}, actions)
}

func TestIncidents_ChargeMayActOnOthersIncidents(t *testing.T) {
	s := startStack(t)
	key := s.apiKey(t, "monitors")
	var created api.AlertResponse
	require.Equal(t, http.StatusCreated, s.call(t, "POST", "/v1/alerts", key, alertBody("MEDICATION_ERROR", "P-"+uuid.NewString()[:8]), &created).StatusCode)
	row := waitIncident(t, created.IncidentID, func(r incidentRow) bool { return r.AssignedTo != nil })
	charge := s.login(t, "c01")
	path := "/v1/incidents/" + created.IncidentID
	var tr api.TransitionResponse
	var e api.ErrorBody
	require.Equal(t, http.StatusBadRequest, s.call(t, "POST", path+"/reassign", charge, `{"staff_id":"nobody"}`, &e).StatusCode)
	require.Equal(t, "staff_id", e.Error.Field)
	target := "N03"
	if *row.AssignedTo == target {
		target = "N04"
	}
	require.Equal(t, http.StatusOK, s.call(t, "POST", path+"/reassign", charge, `{"staff_id":"`+target+`"}`, &tr).StatusCode)
	require.Equal(t, target, tr.AssignedTo)
	require.Equal(t, http.StatusForbidden, s.call(t, "POST", path+"/reassign", s.login(t, "n05"), `{"staff_id":"N06"}`, &e).StatusCode)
	require.Equal(t, http.StatusOK, s.call(t, "POST", path+"/acknowledge", charge, "", &tr).StatusCode)
	require.Equal(t, http.StatusOK, s.call(t, "POST", path+"/resolve", charge, `{"resolution_notes":"Pharmacy corrected the dose."}`, &tr).StatusCode)
}

func TestAlerts_BadInputNamesTheField(t *testing.T) {
	s := startStack(t)
	key := s.apiKey(t, "validation")
	now := time.Now().UTC()
	body := func(mut func(m map[string]any)) string {
		m := map[string]any{"alert_type": "FALL_DETECTED", "patient_id": "P1", "room": "W1", "value": 3, "source": "x", "observed_at": now.Format(time.RFC3339)}
		mut(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name  string
		body  string
		code  string
		field string
	}{
		{"unknown alert type", body(func(m map[string]any) { m["alert_type"] = "ALIENS" }), api.CodeInvalidField, "alert_type"},
		{"missing patient", body(func(m map[string]any) { delete(m, "patient_id") }), api.CodeInvalidField, "patient_id"},
		{"patient with spaces", body(func(m map[string]any) { m["patient_id"] = "John Smith" }), api.CodeInvalidField, "patient_id"},
		{"missing room", body(func(m map[string]any) { m["room"] = " " }), api.CodeInvalidField, "room"},
		{"missing value", body(func(m map[string]any) { delete(m, "value") }), api.CodeInvalidField, "value"},
		{"value is an object", body(func(m map[string]any) { m["value"] = map[string]any{"a": 1} }), api.CodeInvalidField, "value"},
		{"missing source", body(func(m map[string]any) { delete(m, "source") }), api.CodeInvalidField, "source"},
		{"missing time", body(func(m map[string]any) { delete(m, "observed_at") }), api.CodeInvalidField, "observed_at"},
		{"bad time", body(func(m map[string]any) { m["observed_at"] = "yesterday" }), api.CodeInvalidField, "observed_at"},
		{"future time", body(func(m map[string]any) { m["observed_at"] = now.Add(time.Hour).Format(time.RFC3339) }), api.CodeInvalidField, "observed_at"},
		{"unknown field", body(func(m map[string]any) { m["employee_id"] = "N01" }), api.CodeUnknownField, "employee_id"},
		{"NUL in room", body(func(m map[string]any) { m["room"] = "W1\u0000" }), api.CodeInvalidField, "room"},
		{"control character in source", body(func(m map[string]any) { m["source"] = "bed\u0007" }), api.CodeInvalidField, "source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e api.ErrorBody
			resp := s.call(t, "POST", "/v1/alerts", key, tt.body, &e)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			require.Equal(t, tt.code, e.Error.Code)
			require.Equal(t, tt.field, e.Error.Field)
		})
	}
	require.Equal(t, http.StatusUnauthorized, s.call(t, "POST", "/v1/alerts", "", alertBody("FALL_DETECTED", "P1"), nil).StatusCode)
	require.Equal(t, http.StatusUnauthorized, s.call(t, "POST", "/v1/alerts", "vk_notarealkey", alertBody("FALL_DETECTED", "P1"), nil).StatusCode)
	_, err := env.DB.Exec(`UPDATE api_keys SET revoked_at = now() WHERE name = 'validation'`)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, s.call(t, "POST", "/v1/alerts", key, alertBody("FALL_DETECTED", "P1"), nil).StatusCode, "a revoked key")
}

func TestAlerts_AlertmanagerFiringThenResolved(t *testing.T) {
	s := startStack(t)
	key := s.apiKey(t, "alertmanager")
	fp := uuid.NewString()
	payload := func(status string) string {
		return fmt.Sprintf(`{"version":"4","status":%q,"receiver":"vigil","alerts":[{"status":%q,
			"labels":{"alertname":"O2_SATURATION_LOW","patient_id":"P-AM","room":"ICU-3","value":"84%%"},
			"annotations":{},"startsAt":%q,"endsAt":"0001-01-01T00:00:00Z","fingerprint":%q}]}`,
			status, status, time.Now().UTC().Format(time.RFC3339), fp)
	}
	var res api.BatchResult
	require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/alerts/alertmanager", key, payload("firing"), &res).StatusCode)
	require.Equal(t, api.BatchResult{Received: 1, Created: 1}, res)
	var id string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.NoError(c, env.DB.Get(&id, `SELECT id FROM incidents WHERE alert_type = 'O2_SATURATION_LOW' AND patient_id = 'P-AM' AND status <> 'RESOLVED'`))
	}, 10*time.Second, 50*time.Millisecond)

	require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/alerts/alertmanager", key, payload("resolved"), &res).StatusCode)
	require.Equal(t, api.BatchResult{Received: 1, Resolved: 1}, res)
	row := waitIncident(t, id, func(r incidentRow) bool { return r.Status == "RESOLVED" })
	require.Equal(t, "source", row.ResolvedBy, "resolved by the source after the stable-OK wait")

	// An alert without patient_id no longer refuses the batch (issue 11):
	// it opens a failsafe incident and is reported.
	bad := strings.Replace(payload("firing"), `"patient_id":"P-AM",`, "", 1)
	require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/alerts/alertmanager", key, bad, &res).StatusCode)
	require.Equal(t, 1, res.Unparseable)
	require.Equal(t, "alerts[0].labels.patient_id", res.Refused[0].Field)
}

func TestAlerts_PagerDutyEvents(t *testing.T) {
	s := startStack(t)
	key := s.apiKey(t, "pagerduty")
	dedup := "pd-" + uuid.NewString()
	event := func(action string) string {
		return fmt.Sprintf(`{"routing_key":%q,"event_action":%q,"dedup_key":%q,"payload":{"summary":"Ventilator alarm","source":"vent-7","severity":"critical",
			"component":"ICU-7","custom_details":{"alert_type":"VENTILATOR_ALARM","patient_id":"P-PD","value":"high pressure"}}}`, key, action, dedup)
	}
	var pd api.PagerDutyResponse
	require.Equal(t, http.StatusAccepted, s.call(t, "POST", "/v1/alerts/pagerduty", "", event("trigger"), &pd).StatusCode)
	require.Equal(t, dedup, pd.DedupKey)
	var id string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.NoError(c, env.DB.Get(&id, `SELECT id FROM incidents WHERE patient_id = 'P-PD' AND status <> 'RESOLVED'`))
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, http.StatusAccepted, s.call(t, "POST", "/v1/alerts/pagerduty", "", event("acknowledge"), &pd).StatusCode)
	waitIncident(t, id, func(r incidentRow) bool { return r.Status == "ACKNOWLEDGED" })
	require.Equal(t, http.StatusAccepted, s.call(t, "POST", "/v1/alerts/pagerduty", "", event("resolve"), &pd).StatusCode)
	waitIncident(t, id, func(r incidentRow) bool { return r.Status == "RESOLVED" })

	var e api.ErrorBody
	require.Equal(t, http.StatusUnauthorized, s.call(t, "POST", "/v1/alerts/pagerduty", "", strings.Replace(event("trigger"), key, "vk_wrong", 1), &e).StatusCode)
	require.Equal(t, http.StatusBadRequest, s.call(t, "POST", "/v1/alerts/pagerduty", "", event("explode"), &e).StatusCode)
	require.Equal(t, "event_action", e.Error.Field)
}

func TestAlerts_StormIsCoalescedIntoOneIncident(t *testing.T) {
	s := startStack(t)
	key := s.apiKey(t, "storm")
	patient := "P-STORM-" + uuid.NewString()[:6]
	const n = 60
	results := make([]api.AlertResponse, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := s.call(t, "POST", "/v1/alerts", key, alertBody("SEIZURE_DETECTED", patient), &results[i])
			assert.Contains(t, []int{200, 201}, resp.StatusCode)
		}()
	}
	wg.Wait()
	created := 0
	for _, r := range results {
		if r.Result == "created" {
			created++
		}
		require.Equal(t, results[0].IncidentID, r.IncidentID)
	}
	require.Equal(t, 1, created, "exactly one alert opened the incident")
	row := waitIncident(t, results[0].IncidentID, func(r incidentRow) bool { return r.AlertCount == n })
	require.Equal(t, n, row.AlertCount)
	var merges int
	require.NoError(t, env.DB.Get(&merges, `SELECT count(*) FROM incident_events WHERE incident_id = $1 AND action = 'ALERT_MERGED'`, results[0].IncidentID))
	require.Less(t, merges, n-1, "duplicates were coalesced into fewer workflow updates than alerts")
	t.Logf("%d alerts became %d merge updates", n, merges)
}

// TestIncidents_AcknowledgementWaitsForTheRunToKnowItsPage: the escalation
// dispatcher pages a due step from Postgres before the run's timer task has
// run, so for a moment the run refuses the acknowledgement of the person it
// paged. The API tries again while the run catches up (here: a charge nurse
// hands it to that person a second later) and answers 200; someone never
// paged is refused at once, not after the retries.
func TestIncidents_AcknowledgementWaitsForTheRunToKnowItsPage(t *testing.T) {
	s := startStack(t)
	key := s.apiKey(t, "monitors")
	var created api.AlertResponse
	require.Equal(t, http.StatusCreated, s.call(t, "POST", "/v1/alerts", key, alertBody("MEDICATION_ERROR", "P-"+uuid.NewString()[:8]), &created).StatusCode)
	row := waitIncident(t, created.IncidentID, func(r incidentRow) bool { return r.AssignedTo != nil })
	paged, never := "N03", "N04"
	if *row.AssignedTo == paged || *row.AssignedTo == never {
		paged, never = "N05", "N06"
	}
	path := "/v1/incidents/" + created.IncidentID

	// Someone never paged: refused at once.
	var e api.ErrorBody
	began := time.Now()
	require.Equal(t, http.StatusForbidden, s.call(t, "POST", path+"/acknowledge", s.login(t, strings.ToLower(never)), "", &e).StatusCode)
	require.Less(t, time.Since(began), 2*time.Second, "no retries for someone never paged")

	// Paged by the dispatcher (its outbox row), not yet known to the run.
	_, err := env.DB.Exec(`INSERT INTO notification_outbox (incident_id, step, recipient, channel, status, attempts, sent_at)
		VALUES ($1, 'escalation-1', $2, 'inapp', 'sent', 1, now())`, created.IncidentID, paged)
	require.NoError(t, err)
	charge := s.login(t, "c01")
	go func() {
		time.Sleep(time.Second)
		s.call(t, "POST", path+"/reassign", charge, `{"staff_id":"`+paged+`"}`, nil)
	}()
	var tr api.TransitionResponse
	began = time.Now()
	require.Equal(t, http.StatusOK, s.call(t, "POST", path+"/acknowledge", s.login(t, strings.ToLower(paged)), "", &tr).StatusCode)
	require.GreaterOrEqual(t, time.Since(began), time.Second, "answered once the run knew")
	require.Equal(t, "ACKNOWLEDGED", tr.Status)
}
