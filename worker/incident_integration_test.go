//go:build integration

package worker_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/demo"
	"github.com/vigil-health/vigil/internal/testenv"
	"github.com/vigil-health/vigil/worker"
	"github.com/vigil-health/vigil/workflows"
)

// alert sends one FALL_DETECTED alert for patient P001 the way the API does.
func alert(t *testing.T, taskQueue, dedupKey string) workflows.AlertResult {
	t.Helper()
	return env.Alert(t, taskQueue, dedupKey, "FALL_DETECTED", "HIGH", "P001", "W1-12")
}

func transition(t *testing.T, dedupKey, name string, req *workflows.TransitionRequest) (*workflows.TransitionResult, error) {
	t.Helper()
	h, err := env.Client.UpdateWorkflow(context.Background(), workflows.TransitionUpdate(testenv.TransitionKeys,
		workflows.IncidentWorkflowID(workflows.DedupKeyHash(dedupKey)), name, "", req))
	if err != nil {
		return nil, err
	}
	var res workflows.TransitionResult
	return &res, h.Get(context.Background(), &res)
}

// TestIncident_LifecycleOnRealServer runs the incident workflow on the real
// Temporal server with its real activities against Postgres: the demo
// hospital's on-call nurse is assigned and paged, duplicates merge, every
// transition lands in the audit table, and the outbox never pages twice.
func TestIncident_LifecycleOnRealServer(t *testing.T) {
	ctx := context.Background()
	_, err := demo.SeedStaff(ctx, env.DB, "demo-password")
	require.NoError(t, err)
	london, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	taskQueue := "test-" + uuid.NewString()
	w := worker.New(env.Client, taskQueue, worker.Dependencies{DB: env.DB, HospitalTZ: london, TransitionKeys: testenv.TransitionKeys})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	dedupKey := "P001:FALL_DETECTED:" + uuid.NewString()
	first := alert(t, taskQueue, dedupKey)
	require.True(t, first.Created)
	incidentID := first.IncidentID
	second := alert(t, taskQueue, dedupKey)
	require.False(t, second.Created, "a second alert of the dedup key merges")
	require.Equal(t, incidentID, second.IncidentID)
	require.Equal(t, 2, second.AlertCount)

	var assignee string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var row struct {
			Status     string  `db:"status"`
			AssignedTo *string `db:"assigned_to"`
			AlertCount int     `db:"alert_count"`
		}
		if !assert.NoError(c, env.DB.Get(&row, `SELECT status, assigned_to, alert_count FROM incidents WHERE id = $1`, incidentID)) {
			return
		}
		assert.Equal(c, workflows.StatusAssigned, row.Status)
		if assert.NotNil(c, row.AssignedTo) {
			assignee = *row.AssignedTo
		}
		assert.Equal(c, 2, row.AlertCount)
	}, 20*time.Second, 50*time.Millisecond)

	// Nurses are on every shift in the demo rota; FALL_DETECTED goes to NURSE first.
	var role string
	require.NoError(t, env.DB.Get(&role, `SELECT role FROM staff WHERE id = $1`, assignee))
	require.Equal(t, "NURSE", role)

	req := func(staff, access, notes string) *workflows.TransitionRequest {
		return &workflows.TransitionRequest{IncidentID: incidentID, Actor: workflows.Actor{StaffID: staff, Access: access}, Notes: notes}
	}
	_, err = transition(t, dedupKey, workflows.IncidentUpdateAcknowledge, req("D01", "staff", ""))
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr, "someone else's incident")
	require.Equal(t, workflows.RejectForbidden, appErr.Type())

	res, err := transition(t, dedupKey, workflows.IncidentUpdateAcknowledge, req(assignee, "staff", ""))
	require.NoError(t, err)
	require.Equal(t, workflows.StatusAssigned, res.PreviousStatus)
	require.Equal(t, workflows.StatusAcknowledged, res.Status)
	_, err = transition(t, dedupKey, workflows.IncidentUpdateStart, req(assignee, "staff", ""))
	require.NoError(t, err)
	_, err = transition(t, dedupKey, workflows.IncidentUpdateResolve, req(assignee, "staff", "short"))
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, workflows.RejectInvalid, appErr.Type())
	_, err = transition(t, dedupKey, workflows.IncidentUpdateResolve, req(assignee, "staff", "Patient helped back to bed, no injury."))
	require.NoError(t, err)

	run := env.Client.GetWorkflow(ctx, workflows.IncidentWorkflowID(workflows.DedupKeyHash(dedupKey)), "")
	require.NoError(t, run.Get(ctx, nil), "the workflow completes once resolved")
	firstRunID := run.GetRunID()

	var actions []string
	require.NoError(t, env.DB.Select(&actions, `SELECT action FROM incident_events WHERE incident_id = $1 ORDER BY seq`, incidentID))
	// The second alert merges before or after the assignment, depending on
	// timing; everything else has one order.
	at := slices.Index(actions, "ALERT_MERGED")
	require.Positive(t, at)
	actions = slices.Delete(actions, at, at+1)
	require.Equal(t, []string{"CREATED", "ASSIGNED", "PAGED", "ACKNOWLEDGED", "STARTED_PROGRESS", "RESOLVED"}, actions)

	var pages, inbox int
	require.NoError(t, env.DB.Get(&pages, `SELECT count(*) FROM notification_outbox WHERE incident_id = $1 AND status = 'sent'`, incidentID))
	require.NoError(t, env.DB.Get(&inbox, `SELECT count(*) FROM staff_notifications WHERE incident_id = $1 AND staff_id = $2`, incidentID, assignee))
	require.Equal(t, 1, pages)
	require.Equal(t, 1, inbox)

	var row struct {
		Status       string     `db:"status"`
		FirstPagedAt *time.Time `db:"first_paged_at"`
		AckAt        *time.Time `db:"acknowledged_at"`
		ResolvedAt   *time.Time `db:"resolved_at"`
	}
	require.NoError(t, env.DB.Get(&row, `SELECT status, first_paged_at, acknowledged_at, resolved_at FROM incidents WHERE id = $1`, incidentID))
	require.Equal(t, workflows.StatusResolved, row.Status)
	require.NotNil(t, row.FirstPagedAt)
	require.NotNil(t, row.AckAt)
	require.NotNil(t, row.ResolvedAt)

	// A new alert of the same key after resolution opens a new incident.
	third := alert(t, taskQueue, dedupKey)
	require.True(t, third.Created)
	require.NotEqual(t, incidentID, third.IncidentID)
	_, err = transition(t, dedupKey, workflows.IncidentUpdateResolve, &workflows.TransitionRequest{
		IncidentID: third.IncidentID, Actor: workflows.Actor{StaffID: "C01", Access: "charge"}, Notes: "False alarm, sensor knocked.",
	})
	require.NoError(t, err)

	wfID := workflows.IncidentWorkflowID(workflows.DedupKeyHash(dedupKey))
	env.ReplayAndRecord(t, wfID, "", "")
	env.ReplayAndRecord(t, wfID, firstRunID, "incident.json")
}
