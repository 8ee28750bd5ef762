//go:build integration

package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkpb "go.temporal.io/api/sdk/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/workflows"
)

// TestOperator_FindsReadsAndActsThroughTemporal walks the operator's path:
// the incident a nurse names by its REST id is found in Temporal by that id
// (IncidentID search attribute), its run reads as what it is without
// decoding anything (static summary, current details), an Update sent as
// the Web UI would send it is refused and names the signals, and the
// operator's acknowledge and resolve signals act as operator:<name>, in the
// REST timeline.
func TestOperator_FindsReadsAndActsThroughTemporal(t *testing.T) {
	s := startStack(t)
	ctx := context.Background()
	key := s.apiKey(t, "operator-test")
	patient := "P-OPS-" + uuid.NewString()[:8]
	var created api.AlertResponse
	require.Equal(t, http.StatusCreated, s.call(t, "POST", "/v1/alerts", key, alertBody("FALL_DETECTED", patient), &created).StatusCode)
	id := created.IncidentID

	// 1. Found by the REST id.
	var exec *workflowpb.WorkflowExecutionInfo
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		res, err := env.Client.ListWorkflow(ctx, listRequest(fmt.Sprintf(`IncidentID = %q`, id)))
		if !assert.NoError(c, err) || len(res.Executions) != 1 {
			c.Errorf("not found yet")
			return
		}
		exec = res.Executions[0]
	}, 20*time.Second, 200*time.Millisecond)
	require.Equal(t, created.WorkflowID, exec.Execution.WorkflowId)

	// 2. Readable at a glance, without patient data.
	desc, err := env.Client.DescribeWorkflow(ctx, created.WorkflowID, "")
	require.NoError(t, err)
	summary, err := desc.GetStaticSummary()
	require.NoError(t, err)
	require.Equal(t, workflows.IncidentSummary("HIGH", "FALL_DETECTED", id), summary)
	details, err := desc.GetStaticDetails()
	require.NoError(t, err)
	require.Contains(t, details, id)
	for _, s := range []string{summary, details} {
		require.NotContains(t, s, patient)
		require.NotContains(t, s, "W1-12")
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		v, err := env.Client.QueryWorkflow(ctx, created.WorkflowID, "", "__temporal_workflow_metadata")
		if !assert.NoError(c, err) {
			return
		}
		var md sdkpb.WorkflowMetadata
		if assert.NoError(c, v.Get(&md)) && !strings.Contains(md.GetCurrentDetails(), "ASSIGNED") {
			c.Errorf("details %q", md.GetCurrentDetails())
		}
	}, 20*time.Second, 200*time.Millisecond)

	// 3. The Web UI's "Send an Update" as a charge nurse is refused.
	h, err := env.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: created.WorkflowID, UpdateName: workflows.IncidentUpdateAcknowledge,
		Args:         []any{map[string]any{"Actor": map[string]string{"StaffID": "C01", "Access": "charge"}}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	require.ErrorContains(t, err, workflows.RefusedWithoutProof)
	require.ErrorContains(t, err, "signals acknowledge, resolve and note")

	// 4. The operator acknowledges and resolves with signals.
	require.NoError(t, env.Client.SignalWorkflow(ctx, created.WorkflowID, "", workflows.IncidentSignalAcknowledge,
		map[string]string{"operator": "alice"}))
	require.NoError(t, env.Client.SignalWorkflow(ctx, created.WorkflowID, "", workflows.IncidentSignalResolve,
		map[string]string{"operator": "alice", "notes": "Sensor unplugged by the cleaner; nobody fell."}))

	// 5. The REST timeline shows the operator, never a staff member.
	token := s.login(t, "c01")
	var detail incident.IncidentDetail
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		detail = incident.IncidentDetail{}
		s.call(t, "GET", "/v1/incidents/"+id, token, "", &detail)
		if detail.Status != workflows.StatusResolved {
			c.Errorf("status %s", detail.Status)
		}
	}, 20*time.Second, 200*time.Millisecond)
	var acts []string
	for _, e := range detail.Timeline {
		if e.ActorType == "operator" {
			acts = append(acts, e.Action+" by "+e.ActorID)
		}
		require.NotEqual(t, "C01", e.ActorID)
	}
	require.Equal(t, []string{"ACKNOWLEDGED by operator:alice", "RESOLVED by operator:alice"}, acts)
	require.NotNil(t, detail.ResolvedBy)
	require.Equal(t, "operator:alice", *detail.ResolvedBy)
}
