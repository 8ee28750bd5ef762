//go:build integration

package activities_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/internal/incident/oncall"
	"github.com/vigil-health/vigil/internal/reference"
)

func incidentActivities() *activities.Incidents {
	return &activities.Incidents{Store: &incident.Store{DB: db}, Reference: &reference.Store{DB: db},
		Schedule: &oncall.Schedule{DB: db, Location: time.UTC}}
}

// inappPages are the in-app pages of the incident's step, as recipient.
func inappPages(t *testing.T, incidentID, step string) []string {
	t.Helper()
	var rows []string
	require.NoError(t, db.Select(&rows, `SELECT recipient FROM notification_outbox
		WHERE incident_id = $1 AND step = $2 AND channel = 'inapp' AND status = 'sent'`, incidentID, step))
	return rows
}

// TestPageStep_RecordedPickStands checks how a step's second run (the
// workflow's timer after the dispatcher) finds the first: the recorded pick
// is paged, once, even when the choices would now find nobody; a delayed
// page of a step the dispatcher paged (PagedAs) is that page.
func TestPageStep_RecordedPickStands(t *testing.T) {
	ctx := context.Background()
	a := incidentActivities()
	id, nurse := newIncident(t), newStaff(t, "")
	nobody := []activities.PickChoice{{PickInput: activities.PickInput{Roles: []string{"NO_SUCH_ROLE"}, At: time.Now()}}}
	_, err := a.Store.ClaimStepPick(ctx, id, "escalation-1", incident.StepPick{Recipient: nurse, Role: "NURSE", Reason: "least busy"})
	require.NoError(t, err)

	tests := []struct {
		name      string
		step      string
		pagedAs   string
		wantStaff string
		want      map[string][]string // step -> in-app recipients after the run
	}{
		{name: "the recorded pick is paged", step: "escalation-1", wantStaff: nurse,
			want: map[string][]string{"escalation-1": {nurse}}},
		{name: "a second run pages nobody again", step: "escalation-1", wantStaff: nurse,
			want: map[string][]string{"escalation-1": {nurse}}},
		{name: "a delayed page of the dispatcher's step is that page", step: "delayed-1", pagedAs: "escalation-1", wantStaff: nurse,
			want: map[string][]string{"escalation-1": {nurse}, "delayed-1": nil}},
		{name: "a delayed page of a step nobody paged picks", step: "delayed-2", pagedAs: "escalation-2",
			want: map[string][]string{"delayed-2": nil, "escalation-2": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := a.PageStep(ctx, &activities.PageStepInput{Choices: nobody, PagedAs: tt.pagedAs, Page: activities.PageInput{
				IncidentID: id, Step: tt.step, Kind: "INCIDENT_ESCALATED", Title: "Escalated incident", Body: "b",
			}})
			require.NoError(t, err)
			require.Equal(t, tt.wantStaff != "", res.Pick.Found)
			require.Equal(t, tt.wantStaff, res.Pick.StaffID)
			if tt.wantStaff != "" {
				require.Equal(t, "NURSE", res.Pick.Role, "the first run's pick, role included")
				require.True(t, res.Page.Delivered)
			}
			for step, want := range tt.want {
				require.Equal(t, want, inappPages(t, id, step), step)
			}
		})
	}
}

// TestEscalationDispatcher_RetriesAnExpiredClaim: a step claimed by a
// dispatcher that died before paging is claimed again when its lease runs
// out, and paged once.
func TestEscalationDispatcher_RetriesAnExpiredClaim(t *testing.T) {
	ctx := context.Background()
	a := incidentActivities()
	due := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	id, nurse := armedIncident(t, a, due)

	// A dispatcher claims it and dies.
	const lease = 300 * time.Millisecond
	dead, err := a.Store.ClaimDueSteps(ctx, time.Now(), incident.DueWindow{MaxLate: time.Minute, Limit: 64, Lease: lease})
	require.NoError(t, err)
	require.Len(t, dead, 1)

	d := &activities.EscalationDispatcher{Incidents: a, Lease: lease}
	n, err := d.DispatchDue(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "still claimed")
	require.Empty(t, inappPages(t, id, "escalation-1"))

	time.Sleep(lease)
	n, err = d.DispatchDue(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []string{nurse}, inappPages(t, id, "escalation-1"))
	n, err = d.DispatchDue(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "done")
	require.Equal(t, []string{nurse}, inappPages(t, id, "escalation-1"))
}

// armedIncident is an ASSIGNED incident whose step escalation-1, a page to
// a new nurse, is armed due at due.
func armedIncident(t *testing.T, a *activities.Incidents, due time.Time) (id, nurse string) {
	t.Helper()
	id, nurse = newIncident(t), newStaff(t, "")
	in, err := json.Marshal(activities.PageStepInput{Page: activities.PageInput{
		IncidentID: id, Step: "escalation-1", Recipient: nurse, Kind: "INCIDENT_ESCALATED", Title: "Escalated incident", Body: "b", Due: due,
	}})
	require.NoError(t, err)
	staff := nurse
	require.NoError(t, a.Store.Record(context.Background(), incident.Row{
		ID: id, WorkflowID: "incident:" + id, DedupKeyHash: id, AlertType: "CARDIAC_ARREST", Severity: "CRITICAL",
		PatientID: "P001", Room: "ICU-3", Status: incident.StatusAssigned, AssignedTo: &staff, AlertCount: 1,
		OpenedAt: due.Add(-time.Minute), LastAlertAt: due.Add(-time.Minute), LastSeq: 2,
	}, nil, &incident.ArmedStep{Step: "escalation-1", Due: due, Input: in}))
	return id, nurse
}

// TestEscalationDispatcher_RunPagesStepsAsTheyFallDue runs the dispatcher
// as the worker does: steps are claimed and picked ahead and each is paged
// once, when it is due and not before; a step cancelled after its pick is
// not paged.
func TestEscalationDispatcher_RunPagesStepsAsTheyFallDue(t *testing.T) {
	a := incidentActivities()
	start := time.Now()
	type armed struct{ id, nurse string }
	var steps []armed
	for i := range 6 {
		id, nurse := armedIncident(t, a, start.Add(1500*time.Millisecond+time.Duration(i)*100*time.Millisecond).Truncate(time.Millisecond))
		steps = append(steps, armed{id, nurse})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&activities.EscalationDispatcher{Incidents: a, Lead: time.Second}).Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })

	// The last one is acknowledged after its pick, before it is due.
	time.Sleep(time.Until(start.Add(1200 * time.Millisecond)))
	cancelled := steps[len(steps)-1]
	_, err := db.Exec(`DELETE FROM escalation_schedule WHERE incident_id = $1`, cancelled.id)
	require.NoError(t, err)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, st := range steps[:len(steps)-1] {
			assert.Equal(c, []string{st.nurse}, inappPages(t, st.id, "escalation-1"))
		}
	}, 10*time.Second, 20*time.Millisecond)
	var late []float64
	require.NoError(t, db.Select(&late, `SELECT extract(epoch FROM sent_at - due_at) FROM notification_outbox
		WHERE incident_id = ANY($1::uuid[]) AND channel = 'inapp'`, pq.Array([]string{steps[0].id, steps[1].id, steps[2].id, steps[3].id, steps[4].id})))
	require.Len(t, late, 5)
	for _, l := range late {
		require.GreaterOrEqual(t, l, 0.0, "not before it is due")
		require.Less(t, l, 1.0)
	}
	require.Empty(t, inappPages(t, cancelled.id, "escalation-1"), "cancelled")
}
