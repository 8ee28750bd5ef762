//go:build integration

package api_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/workflows"
)

// refusalWait outlasts the stack's stable-OK wait (2 s): a resolve that had
// been taken would have resolved the incident by then.
const refusalWait = 3500 * time.Millisecond

// pdEvent is a PagerDuty Events API v2 event for a VENTILATOR_ALARM.
func pdEvent(routingKey, action, dedup, patient string) string {
	return fmt.Sprintf(`{"routing_key":%q,"event_action":%q,"dedup_key":%q,"payload":{"summary":"Ventilator alarm","source":"vent-9",
		"severity":"critical","component":"ICU-9","custom_details":{"alert_type":"VENTILATOR_ALARM","patient_id":%q,"value":"high pressure"}}}`,
		routingKey, action, dedup, patient)
}

// amPayload is an Alertmanager webhook with one O2_SATURATION_LOW alert.
func amPayload(status, patient, fingerprint string) string {
	return fmt.Sprintf(`{"version":"4","status":%q,"receiver":"vigil","alerts":[{"status":%q,
		"labels":{"alertname":"O2_SATURATION_LOW","patient_id":%q,"room":"ICU-4","value":"84%%"},
		"annotations":{},"startsAt":%q,"endsAt":"0001-01-01T00:00:00Z","fingerprint":%q}]}`,
		status, status, patient, time.Now().UTC().Format(time.RFC3339), fingerprint)
}

// rawCall sends a request and returns its status and raw body.
func (s *stack) rawCall(t *testing.T, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, strings.TrimSpace(string(raw))
}

// openIncidents are the ids of the open incidents of a patient, oldest first.
func openIncidents(t *testing.T, patient string) []string {
	t.Helper()
	var ids []string
	require.NoError(t, env.DB.Select(&ids, `SELECT id FROM incidents WHERE patient_id = $1 AND status <> 'RESOLVED' ORDER BY opened_at`, patient))
	return ids
}

// waitOpen waits until the patient has n open incidents and returns them.
func waitOpen(t *testing.T, patient string, n int) []string {
	t.Helper()
	var ids []string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		ids = openIncidents(t, patient)
		assert.Len(c, ids, n)
	}, 15*time.Second, 50*time.Millisecond)
	return ids
}

type untouched struct {
	Status         string     `db:"status"`
	AcknowledgedAt *time.Time `db:"acknowledged_at"`
	ResolvedAt     *time.Time `db:"resolved_at"`
	Integration    string     `db:"integration"`
}

// requireUntouched checks that nothing a source may do happened to the
// incident: still escalating, never acknowledged, not resolving.
func requireUntouched(t *testing.T, id string) untouched {
	t.Helper()
	var row untouched
	require.NoError(t, env.DB.Get(&row, `SELECT status, acknowledged_at, resolved_at, integration FROM incidents WHERE id = $1`, id))
	require.Equal(t, "ASSIGNED", row.Status, "the incident still escalates")
	require.Nil(t, row.AcknowledgedAt)
	require.Nil(t, row.ResolvedAt)
	var n int
	require.NoError(t, env.DB.Get(&n, `SELECT count(*) FROM incident_events WHERE incident_id = $1
		AND action IN ('ACKNOWLEDGED', 'SOURCE_RESOLVED', 'AUTO_RESOLVED', 'RESOLVED')`, id))
	require.Zero(t, n, "no acknowledgement or resolution in the timeline")
	return row
}

type refusal struct {
	SubjectType string `db:"subject_type"`
	Actor       string `db:"actor"`
	Reason      string `db:"reason"`
}

// refusals are the source_action_refused audits of an incident.
func refusals(t *testing.T, incidentID string) []refusal {
	t.Helper()
	var out []refusal
	require.NoError(t, env.DB.Select(&out, `SELECT subject_type, actor, reason FROM auth_audit
		WHERE event = 'source_action_refused' AND subject_id = $1 ORDER BY id`, incidentID))
	return out
}

func apiKeyID(t *testing.T, name string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, env.DB.Get(&id, `SELECT id FROM api_keys WHERE name = $1`, name))
	return id
}

func TestSecurity_Integrations_PagerDutyCannotAckAnotherSourcesIncident(t *testing.T) {
	s := startStack(t)
	nameA := "monitors-" + uuid.NewString()[:8]
	keyA, keyB := s.apiKey(t, nameA), s.apiKey(t, "intruder-"+uuid.NewString()[:8])
	patient := "P-SI-" + uuid.NewString()[:8]

	var created api.AlertResponse
	require.Equal(t, http.StatusCreated, s.call(t, "POST", "/v1/alerts", keyA, alertBody("FALL_DETECTED", patient), &created).StatusCode)
	waitIncident(t, created.IncidentID, func(r incidentRow) bool { return r.Status == "ASSIGNED" })
	// Every staff member sees patient and alert type, so the default dedup
	// key is guessable.
	dedup := patient + ":FALL_DETECTED"

	want := func(key string) string {
		return fmt.Sprintf(`{"status":"success","message":"Event processed","dedup_key":%q}`, key)
	}
	// Key B acknowledges (routing_key) and resolves (bearer) A's incident:
	// the answers are those for a key with no open incident ...
	status, body := s.rawCall(t, "/v1/alerts/pagerduty", "", pdEvent(keyB, "acknowledge", dedup, patient))
	require.Equal(t, http.StatusAccepted, status)
	require.JSONEq(t, want(dedup), body)
	status, body = s.rawCall(t, "/v1/alerts/pagerduty", keyB, pdEvent("", "resolve", dedup, patient))
	require.Equal(t, http.StatusAccepted, status)
	require.JSONEq(t, want(dedup), body)
	unknown := "no-such-key-" + uuid.NewString()
	status, body = s.rawCall(t, "/v1/alerts/pagerduty", keyB, pdEvent("", "acknowledge", unknown, patient))
	require.Equal(t, http.StatusAccepted, status)
	require.JSONEq(t, want(unknown), body, "the same answer as for an unknown key")

	// ... and nothing happened.
	time.Sleep(refusalWait)
	row := requireUntouched(t, created.IncidentID)
	require.Equal(t, fmt.Sprintf("apikey:%d", apiKeyID(t, nameA)), row.Integration, "the projection records the owner")

	got := refusals(t, created.IncidentID)
	require.Len(t, got, 2, "both attempts are audited")
	require.Contains(t, got[0].Reason, "pagerduty acknowledge")
	require.Contains(t, got[1].Reason, "pagerduty resolve")
	for _, r := range got {
		require.Equal(t, "incident", r.SubjectType)
		require.Contains(t, r.Reason, "another integration")
		require.NotContains(t, r.Reason, patient, "never the raw dedup key")
	}
	var unknownAudits int
	require.NoError(t, env.DB.Get(&unknownAudits, `SELECT count(*) FROM auth_audit WHERE event = 'source_action_refused' AND subject_id = $1`,
		workflows.DedupKeyHash(unknown)))
	require.Zero(t, unknownAudits, "a key naming no incident is PagerDuty's accepted-and-ignored, not a refusal")

	require.NotContains(t, created.WorkflowID, patient)
	require.NotEqual(t, workflows.IncidentWorkflowID(workflows.DedupKeyHash(dedup)), created.WorkflowID,
		"the workflow id is scoped to the integration")
}

func TestSecurity_Integrations_StaffTokenCannotSilenceAsASource(t *testing.T) {
	s := startStack(t)
	key := s.apiKey(t, "bedside-"+uuid.NewString()[:8])
	patient := "P-SS-" + uuid.NewString()[:8]

	var created api.AlertResponse
	require.Equal(t, http.StatusCreated, s.call(t, "POST", "/v1/alerts", key, alertBody("FALL_DETECTED", patient), &created).StatusCode)
	row := waitIncident(t, created.IncidentID, func(r incidentRow) bool { return r.Status == "ASSIGNED" && r.AssignedTo != nil })
	var assignee string
	require.NoError(t, env.DB.Get(&assignee, `SELECT login FROM staff WHERE id = $1`, *row.AssignedTo))
	nurse := "n01"
	if assignee == nurse {
		nurse = "n02"
	}
	token := s.login(t, nurse)
	var nurseID string
	require.NoError(t, env.DB.Get(&nurseID, `SELECT id FROM staff WHERE login = $1`, nurse))

	// Refused on the staff route ...
	var e api.ErrorBody
	require.Equal(t, http.StatusForbidden, s.call(t, "POST", "/v1/incidents/"+created.IncidentID+"/acknowledge", token, "", &e).StatusCode)

	// ... the nurse tries the integration routes with the guessable key.
	dedup := patient + ":FALL_DETECTED"
	status, body := s.rawCall(t, "/v1/alerts/pagerduty", token, pdEvent("", "acknowledge", dedup, patient))
	require.Equal(t, http.StatusAccepted, status, body)
	status, body = s.rawCall(t, "/v1/alerts/pagerduty", "", pdEvent(token, "resolve", dedup, patient))
	require.Equal(t, http.StatusAccepted, status, body)
	var res api.BatchResult
	am := strings.Replace(amPayload("resolved", patient, ""), `"alertname":"O2_SATURATION_LOW"`, `"alertname":"FALL_DETECTED"`, 1)
	require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/alerts/alertmanager", token, am, &res).StatusCode)

	time.Sleep(refusalWait)
	requireUntouched(t, created.IncidentID)
	require.Equal(t, api.BatchResult{Received: 1, Ignored: 1}, res)
	got := refusals(t, created.IncidentID)
	require.Len(t, got, 3)
	for _, r := range got {
		require.Equal(t, nurseID, r.Actor, "the audit names the nurse")
		require.Contains(t, r.Reason, "staff act on incidents through /v1/incidents")
		require.NotContains(t, r.Reason, patient)
	}

	// A staff token may still raise an alert by hand, and the same alert
	// from two nurses merges into one incident (scope "staff").
	handPatient := "P-SH-" + uuid.NewString()[:8]
	var first, second api.AlertResponse
	require.Equal(t, http.StatusCreated, s.call(t, "POST", "/v1/alerts", token, alertBody("FALL_DETECTED", handPatient), &first).StatusCode)
	require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/alerts", s.login(t, "n03"), alertBody("FALL_DETECTED", handPatient), &second).StatusCode)
	require.Equal(t, first.IncidentID, second.IncidentID)
	status, _ = s.rawCall(t, "/v1/alerts/pagerduty", token, pdEvent("", "trigger", "hand-"+uuid.NewString(), handPatient))
	require.Equal(t, http.StatusAccepted, status, "a staff token may trigger on the integration routes")
}

func TestSecurity_Integrations_AlertmanagerResolvedOnlyFromTheOwningKey(t *testing.T) {
	s := startStack(t)
	keyA, keyB := s.apiKey(t, "am-a-"+uuid.NewString()[:8]), s.apiKey(t, "am-b-"+uuid.NewString()[:8])
	patient := "P-SA-" + uuid.NewString()[:8]
	fp := uuid.NewString()

	var res api.BatchResult
	require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/alerts/alertmanager", keyA, amPayload("firing", patient, fp), &res).StatusCode)
	require.Equal(t, api.BatchResult{Received: 1, Created: 1}, res)
	id := waitOpen(t, patient, 1)[0]
	waitIncident(t, id, func(r incidentRow) bool { return r.Status == "ASSIGNED" })

	require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/alerts/alertmanager", keyB, amPayload("resolved", patient, fp), &res).StatusCode)
	require.Equal(t, api.BatchResult{Received: 1, Ignored: 1}, res, "another key's resolved alert is ignored")
	time.Sleep(refusalWait)
	requireUntouched(t, id)
	got := refusals(t, id)
	require.Len(t, got, 1)
	require.Contains(t, got[0].Reason, "alertmanager resolved")
	require.Contains(t, got[0].Reason, "another integration")

	require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/alerts/alertmanager", keyA, amPayload("resolved", patient, fp), &res).StatusCode)
	require.Equal(t, api.BatchResult{Received: 1, Resolved: 1}, res)
	row := waitIncident(t, id, func(r incidentRow) bool { return r.Status == "RESOLVED" })
	require.Equal(t, "source", row.ResolvedBy, "the owner resolves as before")
}

func TestSecurity_Integrations_OwnerStillAcknowledgesAndResolves(t *testing.T) {
	s := startStack(t)
	keyA, keyC := s.apiKey(t, "pd-a-"+uuid.NewString()[:8]), s.apiKey(t, "pd-c-"+uuid.NewString()[:8])
	patient := "P-SO-" + uuid.NewString()[:8]
	dedup := "pd-" + uuid.NewString()

	status, body := s.rawCall(t, "/v1/alerts/pagerduty", "", pdEvent(keyA, "trigger", dedup, patient))
	require.Equal(t, http.StatusAccepted, status, body)
	idA := waitOpen(t, patient, 1)[0]
	// The same dedup key from another integration is its own incident, not
	// a merge into A's.
	status, body = s.rawCall(t, "/v1/alerts/pagerduty", keyC, pdEvent("", "trigger", dedup, patient))
	require.Equal(t, http.StatusAccepted, status, body)
	ids := waitOpen(t, patient, 2)
	idC := ids[1]
	if idC == idA {
		idC = ids[0]
	}
	waitIncident(t, idC, func(r incidentRow) bool { return r.Status == "ASSIGNED" })

	status, _ = s.rawCall(t, "/v1/alerts/pagerduty", "", pdEvent(keyA, "acknowledge", dedup, patient))
	require.Equal(t, http.StatusAccepted, status)
	waitIncident(t, idA, func(r incidentRow) bool { return r.Status == "ACKNOWLEDGED" })
	status, _ = s.rawCall(t, "/v1/alerts/pagerduty", keyA, pdEvent("", "acknowledge", dedup, patient))
	require.Equal(t, http.StatusAccepted, status, "acknowledging twice is accepted (PagerDuty semantics)")
	status, _ = s.rawCall(t, "/v1/alerts/pagerduty", keyA, pdEvent("", "resolve", dedup, patient))
	require.Equal(t, http.StatusAccepted, status)
	row := waitIncident(t, idA, func(r incidentRow) bool { return r.Status == "RESOLVED" })
	require.Equal(t, "source", row.ResolvedBy)

	requireUntouched(t, idC)
	require.Empty(t, refusals(t, idA))
	require.Empty(t, refusals(t, idC), "the owner's own actions are not refusals")
	status, _ = s.rawCall(t, "/v1/alerts/pagerduty", keyC, pdEvent("", "resolve", dedup, patient))
	require.Equal(t, http.StatusAccepted, status)
	waitIncident(t, idC, func(r incidentRow) bool { return r.Status == "RESOLVED" })
}
