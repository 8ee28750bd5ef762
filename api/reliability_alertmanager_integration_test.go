//go:build integration

package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/workflows"
)

// amAlert is one Alertmanager alert of a test batch.
func amAlert(t *testing.T, labels map[string]string, startsAt, fingerprint string) string {
	t.Helper()
	l, err := json.Marshal(labels)
	require.NoError(t, err)
	return fmt.Sprintf(`{"status":"firing","labels":%s,"annotations":{},"startsAt":%q,"endsAt":"0001-01-01T00:00:00Z","fingerprint":%q}`,
		l, startsAt, fingerprint)
}

// TestReliability_Alertmanager_BadAlertDoesNotLoseTheBatch: one alert Vigil
// cannot parse no longer costs the batch its valid alerts. Before the fix
// the batch got 400 (which Alertmanager does not retry) and nothing was
// ingested; now the valid alert opens its incident, each bad one opens an
// UNPARSEABLE_ALERT incident for the failsafe role, the answer (200) lists
// them, and vigil_alerts_refused_total counts them.
func TestReliability_Alertmanager_BadAlertDoesNotLoseTheBatch(t *testing.T) {
	s := startStack(t)
	key := s.apiKey(t, "am-partial")
	now := time.Now().UTC().Format(time.RFC3339)
	good := "P-AMP-" + uuid.NewString()[:8]
	fps := []string{uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()}
	alerts := []string{
		amAlert(t, map[string]string{"alertname": "O2_SATURATION_LOW", "patient_id": good, "room": "ICU-3", "value": "84%"}, now, fps[0]),
		amAlert(t, map[string]string{"alertname": "O2_SATURATION_LOW", "patient_id": "P-NOROOM", "value": "83%"}, now, fps[1]),
		amAlert(t, map[string]string{"alertname": "MARTIAN_INVASION", "patient_id": "P-X", "room": "W2-1"}, now, fps[2]),
		amAlert(t, map[string]string{"alertname": "FALL_DETECTED", "patient_id": "P-Y", "room": "W2-2", "value": "1"}, "yesterday", fps[3]),
		amAlert(t, map[string]string{"alertname": "FALL_DETECTED", "room": "W2-3", "value": "1"}, now, fps[4]),
	}
	body := `{"version":"4","status":"firing","receiver":"vigil","alerts":[` + strings.Join(alerts, ",") + `]}`
	var res api.BatchResult
	resp := s.call(t, "POST", "/v1/alerts/alertmanager", key, body, &res)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 5, res.Received)
	require.Equal(t, 1, res.Created)
	require.Equal(t, 4, res.Unparseable)
	require.Len(t, res.Refused, 4)
	wantFields := []string{"alerts[1].labels.room", "alerts[2].labels.alert_type", "alerts[3].startsAt", "alerts[4].labels.patient_id"}
	for i, r := range res.Refused {
		require.Equal(t, i+1, r.Index)
		require.Equal(t, wantFields[i], r.Field)
		require.NotEmpty(t, r.Message)
		require.NotEmpty(t, r.IncidentID, "alert %d opened a failsafe incident", r.Index)
	}

	// The valid alert was ingested.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var n int
		assert.NoError(c, env.DB.Get(&n, `SELECT count(*) FROM incidents WHERE patient_id = $1 AND alert_type = 'O2_SATURATION_LOW'`, good))
		assert.Equal(c, 1, n)
	}, 10*time.Second, 50*time.Millisecond)

	// Each bad one is a HIGH failsafe incident with a placeholder patient.
	rooms := []string{"unknown", "W2-1", "W2-2", "W2-3"}
	for i, r := range res.Refused {
		var row struct {
			AlertType string `db:"alert_type"`
			Severity  string `db:"severity"`
			PatientID string `db:"patient_id"`
			Room      string `db:"room"`
		}
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			assert.NoError(c, env.DB.Get(&row, `SELECT alert_type, severity, patient_id, room FROM incidents WHERE id = $1`, r.IncidentID))
		}, 10*time.Second, 50*time.Millisecond)
		require.Equal(t, "UNPARSEABLE_ALERT", row.AlertType)
		require.Equal(t, "HIGH", row.Severity)
		require.Equal(t, "UNKNOWN", row.PatientID)
		require.Equal(t, rooms[i], row.Room)
	}
	var roles []byte
	require.NoError(t, env.DB.Get(&roles, `SELECT roles FROM alert_types WHERE alert_type = 'UNPARSEABLE_ALERT'`))
	require.Equal(t, "{CHARGE_NURSE}", string(roles), "it pages the failsafe role")

	// Alertmanager repeats the batch: the failsafe incidents merge, by fingerprint.
	var again api.BatchResult
	require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/alerts/alertmanager", key, body, &again).StatusCode)
	for i, r := range again.Refused {
		require.Equal(t, res.Refused[i].IncidentID, r.IncidentID)
	}

	// The refusals are counted by source and reason.
	mresp, err := http.Get(s.URL + "/metrics")
	require.NoError(t, err)
	defer func() { _ = mresp.Body.Close() }()
	text, err := io.ReadAll(mresp.Body)
	require.NoError(t, err)
	require.Contains(t, string(text), `vigil_alerts_refused_total{reason="labels.room",source="alertmanager"} 2`)
	require.Contains(t, string(text), `vigil_alerts_refused_total{reason="startsAt",source="alertmanager"} 2`)

	// A body that is not an Alertmanager payload is still refused whole.
	var e api.ErrorBody
	require.Equal(t, http.StatusBadRequest, s.call(t, "POST", "/v1/alerts/alertmanager", key, `{"alerts":[{`, &e).StatusCode)
}

// TestReliability_Alertmanager_UnparseableValueIsBounded: the failsafe
// incident's value names the field and renders the raw labels, cut to the
// value limit, and an alert without a fingerprint is keyed by its labels.
func TestReliability_Alertmanager_UnparseableValueIsBounded(t *testing.T) {
	s := startStack(t)
	key := s.apiKey(t, "am-bounded")
	labels := map[string]string{"alertname": "NOT_A_TYPE", "room": "W9-9", "blob": strings.Repeat("x", 5000)}
	body := `{"version":"4","status":"firing","receiver":"vigil","alerts":[` +
		amAlert(t, labels, time.Now().UTC().Format(time.RFC3339), "") + `]}`
	var res api.BatchResult
	require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/alerts/alertmanager", key, body, &res).StatusCode)
	require.Equal(t, 1, res.Unparseable)
	id := res.Refused[0].IncidentID
	require.NotEmpty(t, id)
	// The value travels as a normal alert's value does: in the incident
	// workflow's alert update.
	var workflowID string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.NoError(c, env.DB.Get(&workflowID, `SELECT workflow_id FROM incidents WHERE id = $1`, id))
	}, 10*time.Second, 50*time.Millisecond)
	var value string
	it := env.Client.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() && value == "" {
		ev, err := it.Next()
		require.NoError(t, err)
		if acc := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes(); acc != nil {
			var u workflows.AlertUpdate
			require.NoError(t, converter.GetDefaultDataConverter().FromPayload(acc.GetAcceptedRequest().GetInput().GetArgs().GetPayloads()[0], &u))
			value = u.Value
		}
	}
	require.True(t, strings.HasPrefix(value, "labels.alert_type is not in the alert catalogue"), value)
	require.Contains(t, value, "alertname=NOT_A_TYPE")
	require.LessOrEqual(t, utf8.RuneCountInString(value), 128, value)
	var again api.BatchResult
	require.Equal(t, http.StatusOK, s.call(t, "POST", "/v1/alerts/alertmanager", key, body, &again).StatusCode)
	require.Equal(t, id, again.Refused[0].IncidentID, "keyed by a hash of the labels")
}
