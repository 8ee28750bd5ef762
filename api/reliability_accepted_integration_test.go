//go:build integration

package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/workflows"
)

// slowIncident stands in for the incident workflow (its type name and its
// alert update): it accepts every alert at once, then takes longer than the
// API's wait to say what became of it.
func slowIncident(ctx workflow.Context, _ *workflows.IncidentInput) error {
	if err := workflow.SetUpdateHandlerWithOptions(ctx, workflows.IncidentUpdateAlert,
		func(ctx workflow.Context, _ *workflows.AlertUpdate) (*workflows.AlertResult, error) {
			if err := workflow.Sleep(ctx, time.Minute); err != nil {
				return nil, err
			}
			return &workflows.AlertResult{Created: true, AlertCount: 1, Status: workflows.StatusOpen}, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(workflow.Context, *workflows.AlertUpdate) error { return nil }},
	); err != nil {
		return err
	}
	return workflow.Await(ctx, func() bool { return false })
}

// TestReliability_AlertAcceptedButNotAnsweredInTimeIs202: when the incident
// workflow has durably accepted the alert (the update is in its history)
// but its outcome does not come within the wait, the answer is 202
// "accepted", naming the run, never 500 or a 504 maybe_applied.
func TestReliability_AlertAcceptedButNotAnsweredInTimeIs202(t *testing.T) {
	const wait = 2 * time.Second
	taskQueue := "test-slow-incident-" + uuid.NewString()
	w := worker.New(env.Client, taskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(slowIncident, workflow.RegisterOptions{Name: "Incident"})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	s := alertAPI(t, taskQueue, wait)
	key := s.apiKey(t, "accepted-202")
	var got api.AlertResponse
	start := time.Now()
	resp := s.alertCall(t, "/v1/alerts", key, alertBody("FALL_DETECTED", "P-202-"+uuid.NewString()[:8]), idem("a-1"), &got)
	took := time.Since(start)
	t.Logf("POST /v1/alerts answered %d after %v", resp.StatusCode, took)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, "accepted", got.Result)
	require.NotEmpty(t, got.WorkflowID)
	require.Empty(t, got.IncidentID, "the outcome, and so the incident, is not known yet")
	require.Less(t, took, wait+time.Second, "answered within the wait")
}
