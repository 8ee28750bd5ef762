//go:build integration

package worker_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/demo"
	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/internal/incident/oncall"
	"github.com/vigil-health/vigil/internal/reference"
	"github.com/vigil-health/vigil/internal/testenv"
	"github.com/vigil-health/vigil/worker"
	"github.com/vigil-health/vigil/workflows"
)

// dispatchWait is the first escalation step's wait in these tests.
const dispatchWait = 4 * time.Second

// dispatchAlertType creates an alert type (NURSE, then EMERGENCY_DOCTOR)
// whose first escalation step is due dispatchWait after assignment.
func dispatchAlertType(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	_, err := demo.SeedStaff(ctx, env.DB, "demo-password")
	require.NoError(t, err)
	name := "DISPATCH_" + strings.ToUpper(strings.ReplaceAll(uuid.NewString()[:8], "-", ""))
	_, err = env.DB.ExecContext(ctx, `
		INSERT INTO alert_types (alert_type, severity, category, description, requires_immediate_response, roles)
		VALUES ($1, 'HIGH', 'TEST', 'escalation dispatcher test', true, '{NURSE,EMERGENCY_DOCTOR}')`, name)
	require.NoError(t, err)
	_, err = env.DB.ExecContext(ctx, `INSERT INTO escalation_policies (id, alert_type, steps, start_reminder_seconds)
		VALUES ('type:'||$1, $1, $2::jsonb, 3600)`, name,
		`[{"wait_seconds": `+strconv.Itoa(int(dispatchWait/time.Second))+`, "target": "next_in_role"}, {"wait_seconds": 3600, "target": "failsafe"}]`)
	require.NoError(t, err)
	return name
}

// startWorker starts a worker without the escalation dispatcher on
// taskQueue; the test drives its own dispatcher.
func startWorker(t *testing.T, taskQueue string) *worker.Workers {
	t.Helper()
	london, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	w := worker.New(env.Client, taskQueue, worker.Dependencies{DB: env.DB, HospitalTZ: london,
		TransitionKeys: testenv.TransitionKeys, NoEscalationDispatcher: true})
	require.NoError(t, w.Start())
	return w
}

// dispatcher is an escalation dispatcher that claims and picks a step half
// a second before it is due.
func dispatcher() *activities.EscalationDispatcher {
	london, _ := time.LoadLocation("Europe/London")
	return &activities.EscalationDispatcher{Lead: 500 * time.Millisecond, Incidents: &activities.Incidents{
		Store: &incident.Store{DB: env.DB}, Reference: &reference.Store{DB: env.DB},
		Schedule: &oncall.Schedule{DB: env.DB, Location: london},
	}}
}

// armed is the incident's armed step: its name and due time.
func armed(t require.TestingT, incidentID string) (step string, due time.Time, found bool) {
	var row struct {
		Step string    `db:"step"`
		Due  time.Time `db:"due_at"`
	}
	err := env.DB.Get(&row, `SELECT step, due_at FROM escalation_schedule WHERE incident_id = $1 AND done_at IS NULL`, incidentID)
	if err != nil {
		return "", time.Time{}, false
	}
	return row.Step, row.Due, true
}

// escalationPages are the incident's in-app escalation-1 pages, as
// recipient.
func escalationPages(t *testing.T, incidentID string) []string {
	t.Helper()
	var rows []string
	require.NoError(t, env.DB.Select(&rows, `SELECT recipient FROM notification_outbox
		WHERE incident_id = $1 AND step = 'escalation-1' AND channel = 'inapp' AND status = 'sent'`, incidentID))
	return rows
}

// awaitArmed waits until the incident is ASSIGNED with escalation-1 armed
// and returns its assignee and due time.
func awaitArmed(t *testing.T, incidentID string) (assignee string, due time.Time) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var a *string
		if !assert.NoError(c, env.DB.Get(&a, `SELECT assigned_to FROM incidents WHERE id = $1 AND status = 'ASSIGNED'`, incidentID)) {
			return
		}
		step, d, found := armed(c, incidentID)
		if assert.True(c, found) && assert.NotNil(c, a) {
			assert.Equal(c, "escalation-1", step)
			assignee, due = *a, d
		}
	}, 20*time.Second, 20*time.Millisecond)
	return assignee, due
}

// TestEscalationDispatcher_PagesDueStepOnce runs the incident workflow on
// the real Temporal server with the workflow's worker stopped when the
// first escalation step falls due: the dispatcher pages the step at once
// (the next nurse, as the workflow would), and when a worker is back, the
// workflow's own timer runs the step, finds it done, records the same
// recipient and pages nobody again, and arms the next step.
func TestEscalationDispatcher_PagesDueStepOnce(t *testing.T) {
	ctx := context.Background()
	alertType := dispatchAlertType(t)
	taskQueue := "test-" + uuid.NewString()
	w := startWorker(t, taskQueue)
	res := env.Alert(t, taskQueue, "P001:"+alertType+":"+uuid.NewString(), alertType, "HIGH", "P001", "W1-12")
	incidentID := res.IncidentID
	assignee, due := awaitArmed(t, incidentID)
	w.Stop() // the workflow's timer cannot page: no worker

	d := dispatcher()
	n, err := d.DispatchDue(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "not due yet")
	time.Sleep(time.Until(due))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		_, err := d.DispatchDue(ctx)
		assert.NoError(c, err)
		assert.Len(c, escalationPages(t, incidentID), 1)
	}, 10*time.Second, 10*time.Millisecond)
	paged := escalationPages(t, incidentID)[0]
	require.NotEqual(t, assignee, paged, "the next person in the role")
	var late float64
	require.NoError(t, env.DB.Get(&late, `SELECT extract(epoch FROM sent_at - due_at) FROM notification_outbox
		WHERE incident_id = $1 AND step = 'escalation-1' AND channel = 'inapp'`, incidentID))
	require.Less(t, late, 1.0, "paged as it fell due, without a workflow task")
	_, _, found := armed(t, incidentID)
	require.False(t, found, "the step is done")

	// A worker is back: the workflow's timer runs the step.
	w2 := startWorker(t, taskQueue)
	t.Cleanup(w2.Stop)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var row struct {
			Step       int    `db:"escalation_step"`
			AssignedTo string `db:"assigned_to"`
		}
		if assert.NoError(c, env.DB.Get(&row, `SELECT escalation_step, assigned_to FROM incidents WHERE id = $1`, incidentID)) {
			assert.Equal(c, 1, row.Step)
			assert.Equal(c, paged, row.AssignedTo, "the workflow escalated to whom the dispatcher paged")
		}
	}, 60*time.Second, 50*time.Millisecond)
	require.Equal(t, []string{paged}, escalationPages(t, incidentID), "paged once")
	var inbox int
	require.NoError(t, env.DB.Get(&inbox, `SELECT count(*) FROM staff_notifications n JOIN notification_outbox o ON o.id = n.outbox_id
		WHERE o.incident_id = $1 AND o.step = 'escalation-1'`, incidentID))
	require.Equal(t, 1, inbox)
	var pagedEvents []string
	require.NoError(t, env.DB.Select(&pagedEvents, `SELECT detail->>'staff_id' FROM incident_events
		WHERE incident_id = $1 AND action = 'PAGED' AND detail->>'step' = 'escalation-1'`, incidentID))
	require.Equal(t, []string{paged}, pagedEvents, "the audit trail records the dispatcher's page")
	step, _, found := armed(t, incidentID)
	require.True(t, found)
	require.Equal(t, "escalation-2", step, "the next step is armed")
}

// TestEscalationDispatcher_SkipsAcknowledged: an incident acknowledged
// before its step falls due is never paged by the dispatcher (the
// acknowledgement's projection cancels the armed step).
func TestEscalationDispatcher_SkipsAcknowledged(t *testing.T) {
	ctx := context.Background()
	alertType := dispatchAlertType(t)
	taskQueue := "test-" + uuid.NewString()
	w := startWorker(t, taskQueue)
	t.Cleanup(w.Stop)
	dedupKey := "P001:" + alertType + ":" + uuid.NewString()
	res := env.Alert(t, taskQueue, dedupKey, alertType, "HIGH", "P001", "W1-12")
	assignee, due := awaitArmed(t, res.IncidentID)
	_, err := transition(t, dedupKey, workflows.IncidentUpdateAcknowledge, &workflows.TransitionRequest{
		IncidentID: res.IncidentID, Actor: workflows.Actor{StaffID: assignee, Access: "staff"}})
	require.NoError(t, err)
	_, _, found := armed(t, res.IncidentID)
	require.False(t, found, "the acknowledgement cancelled the armed step")
	var rows int
	require.NoError(t, env.DB.Get(&rows, `SELECT count(*) FROM escalation_schedule WHERE incident_id = $1`, res.IncidentID))
	require.Zero(t, rows)

	time.Sleep(time.Until(due.Add(100 * time.Millisecond)))
	_, err = dispatcher().DispatchDue(ctx)
	require.NoError(t, err)
	require.Empty(t, escalationPages(t, res.IncidentID))
}
