//go:build integration

package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/stores"
	"github.com/vigil-health/vigil/internal/testenv"
	"github.com/vigil-health/vigil/workflows"
)

// slackStartIncident opens a FALL_DETECTED incident the way the API does
// (Update-With-Start) and returns its id and workflow id.
func slackStartIncident(t *testing.T, taskQueue string) (incidentID, workflowID string) {
	t.Helper()
	key := "slack-test:" + uuid.NewString()
	res := env.Alert(t, taskQueue, key, "FALL_DETECTED", "HIGH", "P-SLACK", "W2-07")
	require.True(t, res.Created)
	return res.IncidentID, workflows.IncidentWorkflowID(workflows.DedupKeyHash(key))
}

// slackAckPayload is the block_actions payload of a click on the
// Acknowledge button.
func slackAckPayload(slackUserID, incidentID string) string {
	raw, _ := json.Marshal(map[string]any{
		"type": "block_actions",
		"user": map[string]any{"id": slackUserID, "username": "someone", "team_id": "T1"},
		"team": map[string]any{"id": "T1", "domain": "hospital"},
		"actions": []map[string]any{{
			"type": "button", "action_id": "incident_acknowledge", "block_id": "incident:" + incidentID + ":actions",
			"value": incidentID, "action_ts": "1700000000.000100",
			"text": map[string]any{"type": "plain_text", "text": "Acknowledge"},
		}},
		"container":    map[string]any{"type": "message", "message_ts": "1700000000.000001", "channel_id": "C1"},
		"channel":      map[string]any{"id": "C1", "name": "incidents"},
		"response_url": "https://hooks.slack.invalid/actions/T1/1/x",
		"trigger_id":   "1.2.3",
	})
	return slackForm(string(raw))
}

func TestSlackAcknowledgesAsTheLinkedStaffMember(t *testing.T) {
	st := startStack(t)
	router := api.NewRouter(api.Deps{
		TransitionKeys:     testenv.TransitionKeys,
		Stores:             stores.New(env.DB),
		Temporal:           env.Client,
		Logger:             env.Logger,
		Metrics:            metrics.New(),
		Namespace:          env.Temporal.Namespace(),
		TaskQueue:          st.TaskQueue,
		Signer:             st.Signer,
		HospitalTZ:         london,
		SlackSigningSecret: slackTestSecret,
	})
	incidentID, workflowID := slackStartIncident(t, st.TaskQueue)

	// The demo rota has nurses on every shift; FALL_DETECTED pages a nurse.
	var assignee string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var row struct {
			Status     string  `db:"status"`
			AssignedTo *string `db:"assigned_to"`
		}
		if !assert.NoError(c, env.DB.Get(&row, `SELECT status, assigned_to FROM incidents WHERE id = $1`, incidentID)) {
			return
		}
		assert.Equal(c, workflows.StatusAssigned, row.Status)
		if assert.NotNil(c, row.AssignedTo) {
			assignee = *row.AssignedTo
		}
	}, 20*time.Second, 50*time.Millisecond)

	// The paged nurse is U123; D01, an emergency doctor nobody paged, is U456.
	_, err := env.DB.Exec(`UPDATE staff SET slack_user_id = '' WHERE slack_user_id IN ('U123', 'U456')`)
	require.NoError(t, err)
	_, err = env.DB.Exec(`UPDATE staff SET slack_user_id = 'U123' WHERE id = $1`, assignee)
	require.NoError(t, err)
	_, err = env.DB.Exec(`UPDATE staff SET slack_user_id = 'U456' WHERE id = 'D01'`)
	require.NoError(t, err)

	now := time.Now()
	steps := []struct {
		name     string
		secret   string
		body     string
		at       time.Time
		status   int
		wantText string
		wantCode string
	}{
		{"bad signature", "not-the-secret", slackAckPayload("U123", incidentID), now, http.StatusUnauthorized, "", api.CodeUnauthorized},
		{"stale timestamp", slackTestSecret, slackAckPayload("U123", incidentID), now.Add(-6 * time.Minute), http.StatusUnauthorized, "", api.CodeUnauthorized},
		{"unlinked Slack user", slackTestSecret, slackAckPayload("U999", incidentID), now, http.StatusOK, "Your Slack account is not linked to a Vigil staff member.", ""},
		{"unknown incident", slackTestSecret, slackAckPayload("U123", uuid.NewString()), now, http.StatusOK, "Vigil does not know this incident.", ""},
		{"not a responder", slackTestSecret, slackAckPayload("U456", incidentID), now, http.StatusOK, "Could not acknowledge: only a paged responder or a charge nurse may acknowledge this incident", ""},
		{"the paged nurse", slackTestSecret, slackAckPayload("U123", incidentID), now, http.StatusOK, "Acknowledged. The incident is now ACKNOWLEDGED and assigned to you.", ""},
		{"Slack's retry of the same click", slackTestSecret, slackAckPayload("U123", incidentID), now, http.StatusOK, "Acknowledged. The incident is now ACKNOWLEDGED and assigned to you.", ""},
	}
	for _, step := range steps {
		w := slackRequest(t, router, step.secret, step.body, step.at)
		require.Equal(t, step.status, w.Code, "%s: %s", step.name, w.Body.String())
		if step.wantCode != "" {
			require.Equal(t, step.wantCode, decodeError(t, w).Code, step.name)
			continue
		}
		var reply api.SlackReply
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &reply), step.name)
		require.Equal(t, "ephemeral", reply.ResponseType, step.name)
		require.Equal(t, step.wantText, reply.Text, step.name)
	}

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var row struct {
			Status     string `db:"status"`
			AssignedTo string `db:"assigned_to"`
		}
		if assert.NoError(c, env.DB.Get(&row, `SELECT status, assigned_to FROM incidents WHERE id = $1`, incidentID)) {
			assert.Equal(c, workflows.StatusAcknowledged, row.Status)
			assert.Equal(c, assignee, row.AssignedTo)
		}
	}, 10*time.Second, 50*time.Millisecond)
	var acks []string
	require.NoError(t, env.DB.Select(&acks, `SELECT actor_id FROM incident_events WHERE incident_id = $1 AND action = 'ACKNOWLEDGED'`, incidentID))
	require.Equal(t, []string{assignee}, acks, "acknowledged once, as the linked staff member")

	// A later click, once acknowledged, gets the workflow's reason.
	_, err = env.DB.Exec(`UPDATE staff SET slack_user_id = 'U456' WHERE id = 'C01'`)
	require.Error(t, err, "a Slack account links to one staff member only")
	_, err = env.DB.Exec(`UPDATE staff SET slack_user_id = '' WHERE id = 'D01'`)
	require.NoError(t, err)
	_, err = env.DB.Exec(`UPDATE staff SET slack_user_id = 'U456' WHERE id = 'C01'`)
	require.NoError(t, err)
	w := slackRequest(t, router, slackTestSecret, slackAckPayload("U456", incidentID), time.Now())
	require.Equal(t, http.StatusOK, w.Code)
	var reply api.SlackReply
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &reply))
	require.Equal(t, "Could not acknowledge: cannot acknowledge an incident that is ACKNOWLEDGED", reply.Text)

	// Close the incident so its workflow ends with the test.
	h, err := env.Client.UpdateWorkflow(context.Background(), workflows.TransitionUpdate(testenv.TransitionKeys, workflowID,
		workflows.IncidentUpdateResolve, "", &workflows.TransitionRequest{IncidentID: incidentID,
			Actor: workflows.Actor{StaffID: "C01", Access: workflows.AccessCharge}, Notes: "Resolved by the Slack integration test."}))
	require.NoError(t, err)
	require.NoError(t, h.Get(context.Background(), nil))
	w = slackRequest(t, router, slackTestSecret, slackAckPayload("U456", incidentID), time.Now())
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &reply))
	require.Equal(t, "This incident is already closed.", reply.Text)
}
