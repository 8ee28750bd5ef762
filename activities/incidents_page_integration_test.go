//go:build integration

package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/incident"
	"github.com/vigil-health/vigil/internal/incident/oncall"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/reference"
)

// lateness returns the sample count and sum of vigil_escalation_lateness_seconds.
func lateness(t *testing.T, reg *metrics.Registry) (int, float64) {
	t.Helper()
	families, err := reg.Gatherer().Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == "vigil_escalation_lateness_seconds" {
			h := f.GetMetric()[0].GetHistogram()
			return int(h.GetSampleCount()), h.GetSampleSum()
		}
	}
	return 0, 0
}

// TestPage_StoresDueTime checks that a page's due time reaches the outbox
// (due_at, on insert only: a retry keeps the first) and the lateness
// histogram, and that a page sent at once has none.
func TestPage_StoresDueTime(t *testing.T) {
	ctx := context.Background()
	reg := metrics.New()
	a := &activities.Incidents{Store: &incident.Store{DB: db}, Reference: &reference.Store{DB: db}, Metrics: reg.Incidents()}
	incident, nurse := newIncident(t), newStaff(t, "")
	due := time.Now().Add(-2 * time.Second).UTC().Truncate(time.Microsecond)

	tests := []struct {
		name    string
		step    string
		due     time.Time
		wantDue *time.Time
		// observed is the histogram's sample count after the page.
		observed int
	}{
		{name: "sent at once", step: "assign", wantDue: nil, observed: 0},
		{name: "escalation step", step: "escalation-1", due: due, wantDue: &due, observed: 1},
		{name: "retry keeps the first due time", step: "escalation-1", due: due.Add(time.Minute), wantDue: &due, observed: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := a.Page(ctx, &activities.PageInput{
				IncidentID: incident, Step: tt.step, Recipient: nurse, Kind: "INCIDENT_ESCALATED",
				Title: "Escalated incident", Body: "HIGH FALL_DETECTED incident (W1).", Due: tt.due,
			})
			require.NoError(t, err)
			require.True(t, res.Delivered)

			var row struct {
				DueAt  *time.Time `db:"due_at"`
				SentAt time.Time  `db:"sent_at"`
			}
			require.NoError(t, db.Get(&row, `SELECT due_at, sent_at FROM notification_outbox
				WHERE incident_id = $1 AND step = $2 AND recipient = $3 AND channel = 'inapp'`, incident, tt.step, nurse))
			if tt.wantDue == nil {
				require.Nil(t, row.DueAt)
			} else {
				require.NotNil(t, row.DueAt)
				require.True(t, tt.wantDue.Equal(*row.DueAt), "due_at %s, want %s", row.DueAt, tt.wantDue)
			}
			n, sum := lateness(t, reg)
			require.Equal(t, tt.observed, n)
			if n > 0 {
				require.InDelta(t, row.SentAt.Sub(due).Seconds(), sum, 1e-3, "lateness is sent_at - due_at")
				require.GreaterOrEqual(t, sum, 2.0)
			}
		})
	}
}

// TestPageStep_PicksPagesAndIsIdempotentPerStep checks the one-step page:
// nobody found sends nothing; a page records the SMS it did not send when
// SMS is off; and a re-run of the same step (its workflow task lost with its
// worker) pages whoever the first run paged, never a second person.
func TestPageStep_PicksPagesAndIsIdempotentPerStep(t *testing.T) {
	ctx := context.Background()
	a := &activities.Incidents{Store: &incident.Store{DB: db}, Reference: &reference.Store{DB: db}, Schedule: &oncall.Schedule{DB: db, Location: time.UTC}}
	incident, nurse := newIncident(t), newStaff(t, "")
	nobody := []activities.PickChoice{{PickInput: activities.PickInput{Roles: []string{"NO_SUCH_ROLE"}, At: time.Now()}}}
	step := func(stepName, recipient string, choices []activities.PickChoice) *activities.PageStepResult {
		t.Helper()
		res, err := a.PageStep(ctx, &activities.PageStepInput{Choices: choices, Page: activities.PageInput{
			IncidentID: incident, Step: stepName, Recipient: recipient, Kind: "INCIDENT_ESCALATED",
			Title: "Escalated incident", Body: "HIGH FALL_DETECTED incident (W1).",
		}})
		require.NoError(t, err)
		return res
	}
	outbox := func(stepName string) []string {
		t.Helper()
		var rows []string
		require.NoError(t, db.Select(&rows, `SELECT recipient || '/' || channel || '/' || status FROM notification_outbox
			WHERE incident_id = $1 AND step = $2 ORDER BY channel`, incident, stepName))
		return rows
	}

	tests := []struct {
		name       string
		step       string
		recipient  string
		choices    []activities.PickChoice
		wantFound  bool
		wantStaff  string
		wantOutbox []string
	}{
		{name: "nobody on call: nothing sent", step: "escalation-1", choices: nobody, wantOutbox: nil},
		{name: "a known recipient is paged; SMS off is recorded", step: "reminder-1", recipient: nurse,
			wantFound: true, wantStaff: nurse, wantOutbox: []string{nurse + "/inapp/sent", nurse + "/sms/skipped"}},
		{name: "a re-run pages the first run's recipient", step: "reminder-1", choices: nobody,
			wantFound: true, wantStaff: nurse, wantOutbox: []string{nurse + "/inapp/sent", nurse + "/sms/skipped"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := step(tt.step, tt.recipient, tt.choices)
			require.Equal(t, tt.wantFound, res.Pick.Found)
			require.Equal(t, tt.wantStaff, res.Pick.StaffID)
			require.False(t, res.SMS, "SMS is off")
			require.Equal(t, tt.wantFound, res.Page.Delivered)
			require.Equal(t, tt.wantOutbox, outbox(tt.step))
		})
	}
}
