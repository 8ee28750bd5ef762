//go:build integration

package incident_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/incident"
)

// recordArmed writes incident id's projection at seq with status, arming
// step due at due (no step when step is "").
func recordArmed(t *testing.T, id string, seq int, status, step string, due time.Time) {
	t.Helper()
	opened := due.Add(-time.Hour)
	staff := "N01"
	var arm *incident.ArmedStep
	if step != "" {
		arm = &incident.ArmedStep{Step: step, Due: due, Input: json.RawMessage(`{"Page":{"Step":"` + step + `"}}`)}
	}
	require.NoError(t, store().Record(context.Background(), incident.Row{
		ID: id, WorkflowID: "incident:" + id, DedupKeyHash: id, AlertType: "FALL_DETECTED", Severity: "HIGH",
		PatientID: "P-TEST", Room: "12B", Source: "test", Status: status, AssignedTo: &staff, AssignedRole: "NURSE",
		AlertCount: 1, OpenedAt: opened, AssignedAt: &opened, LastAlertAt: opened, LastSeq: seq,
	}, nil, arm))
}

// claimed is the steps of ids a claim at now takes, as incident/step.
func claimed(t *testing.T, now time.Time, lease time.Duration, ids ...string) []string {
	t.Helper()
	steps, err := store().ClaimDueSteps(context.Background(), now, incident.DueWindow{MaxLate: 24 * time.Hour, Limit: 64, Lease: lease})
	require.NoError(t, err)
	var got []string
	for _, st := range steps {
		for _, id := range ids {
			if st.IncidentID == id {
				got = append(got, id+"/"+st.Step)
			}
		}
	}
	return got
}

// TestEscalationSchedule_ArmClaimLeaseDone arms a step with a projection
// and claims it as the dispatcher does: not before it is due, once per
// lease, again when a lease runs out (a dispatcher killed mid-page), never
// after it is done, and a step re-armed by a later projection is new.
func TestEscalationSchedule_ArmClaimLeaseDone(t *testing.T) {
	ctx := context.Background()
	due := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	id := uuid.NewString()
	const lease = 10 * time.Second
	recordArmed(t, id, 3, incident.StatusAssigned, "escalation-1", due)

	next, found, err := store().NextStepDue(ctx, due.Add(-time.Minute))
	require.NoError(t, err)
	require.True(t, found)
	require.False(t, next.After(due))

	require.Empty(t, claimed(t, due.Add(-time.Millisecond), lease, id), "not due yet")
	tooLate, err := store().ClaimDueSteps(ctx, due.Add(2*time.Minute), incident.DueWindow{MaxLate: time.Minute, Limit: 64, Lease: lease})
	require.NoError(t, err)
	require.Empty(t, tooLate, "overdue past maxLate: left to the workflow's delayed page")
	if next, found, err := store().NextStepDue(ctx, due.Add(time.Millisecond)); assert.NoError(t, err) && found {
		require.False(t, next.Equal(due), "a step older than the window is not waited for")
	}
	early, err := store().ClaimDueSteps(ctx, due.Add(-2*time.Second), incident.DueWindow{Lead: time.Second, MaxLate: time.Minute, Limit: 64, Lease: lease})
	require.NoError(t, err)
	require.Empty(t, early, "due after the lead")
	steps, err := store().ClaimDueSteps(ctx, due.Add(-time.Second), incident.DueWindow{Lead: time.Second, MaxLate: time.Minute, Limit: 64, Lease: lease})
	require.NoError(t, err)
	require.Len(t, steps, 1)
	st := steps[0]
	require.Equal(t, id, st.IncidentID)
	require.Equal(t, "escalation-1", st.Step)
	require.True(t, st.Due.Equal(due))
	require.JSONEq(t, `{"Page":{"Step":"escalation-1"}}`, string(st.Input))
	require.True(t, st.ClaimedUntil.Equal(due.Add(lease-time.Second)), "claimed a lead ahead")
	require.Equal(t, 1, st.Attempts)

	require.Empty(t, claimed(t, due.Add(lease/2), lease, id), "claimed by another dispatcher")
	require.Equal(t, []string{id + "/escalation-1"}, claimed(t, due.Add(lease), lease, id), "the lease ran out")

	res, err := store().PageArmedSteps(ctx, []incident.ArmedPage{{Step: st}})
	require.NoError(t, err)
	require.Equal(t, []incident.ArmedPageResult{{Armed: true}}, res, "found nobody: done, nothing sent")
	require.Empty(t, claimed(t, due.Add(time.Hour), lease, id), "paged")
	recordArmed(t, id, 4, incident.StatusAssigned, "escalation-1", due)
	require.Empty(t, claimed(t, due.Add(time.Hour), lease, id), "the same step written again stays paged")
	recordArmed(t, id, 2, incident.StatusAssigned, "escalation-9", due)
	require.Empty(t, claimed(t, due.Add(time.Hour), lease, id), "an older projection changes nothing")

	recordArmed(t, id, 5, incident.StatusAssigned, "escalation-2", due.Add(time.Minute))
	require.Empty(t, claimed(t, due.Add(time.Second), lease, id))
	require.Equal(t, []string{id + "/escalation-2"}, claimed(t, due.Add(time.Minute), lease, id), "the next step")
}

// TestEscalationSchedule_Cancel checks that a step is never claimed once
// the incident has left ASSIGNED: the projection that acknowledges (or
// claims, or resolves) cancels it in its transaction, and a step whose
// incident is not ASSIGNED is skipped however it got there.
func TestEscalationSchedule_Cancel(t *testing.T) {
	due := time.Now().Add(2 * time.Hour).Truncate(time.Millisecond)
	tests := []struct {
		name   string
		cancel func(t *testing.T, id string)
	}{
		{"acknowledged", func(t *testing.T, id string) { recordArmed(t, id, 2, incident.StatusAcknowledged, "", due) }},
		{"resolved", func(t *testing.T, id string) { recordArmed(t, id, 2, incident.StatusResolved, "", due) }},
		{"status only", func(t *testing.T, id string) {
			_, err := db.ExecContext(context.Background(), `UPDATE incidents SET status = 'ACKNOWLEDGED' WHERE id = $1`, id)
			require.NoError(t, err)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := uuid.NewString()
			recordArmed(t, id, 1, incident.StatusAssigned, "escalation-1", due)
			tt.cancel(t, id)
			require.Empty(t, claimed(t, due.Add(time.Minute), time.Second, id))
			// A dispatcher that claimed it before it was cancelled sends
			// nothing.
			res, err := store().PageArmedSteps(context.Background(), []incident.ArmedPage{{
				Step: incident.DueStep{IncidentID: id, Step: "escalation-1", Due: due},
				Page: &incident.InAppPage{IncidentID: id, Step: "escalation-1", Recipient: "N01", Kind: "INCIDENT_ESCALATED", Title: "t", Body: "b"},
			}})
			require.NoError(t, err)
			require.Equal(t, []incident.ArmedPageResult{{}}, res)
			var pages int
			require.NoError(t, db.Get(&pages, `SELECT count(*) FROM notification_outbox WHERE incident_id = $1`, id))
			require.Zero(t, pages)
			// A retried older projection does not arm it again.
			recordArmed(t, id, 1, incident.StatusAssigned, "escalation-1", due)
			require.Empty(t, claimed(t, due.Add(time.Minute), time.Second, id))
		})
	}
}

// TestClaimStepPick_FirstPickStands: the first pick recorded for a step is
// the one every later attempt gets.
func TestClaimStepPick_FirstPickStands(t *testing.T) {
	ctx := context.Background()
	id := uuid.NewString()
	_, found, err := store().StepPicked(ctx, id, "escalation-1")
	require.NoError(t, err)
	require.False(t, found)
	first := incident.StepPick{Recipient: "N02", Role: "NURSE", Reason: "least busy"}
	won, err := store().ClaimStepPick(ctx, id, "escalation-1", first)
	require.NoError(t, err)
	require.Equal(t, first, won)
	won, err = store().ClaimStepPick(ctx, id, "escalation-1", incident.StepPick{Recipient: "N03", Role: "NURSE", Fallback: true})
	require.NoError(t, err)
	require.Equal(t, first, won, "a later pick of the same step loses")
	got, found, err := store().StepPicked(ctx, id, "escalation-1")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, first, got)
	won, err = store().ClaimStepPick(ctx, id, "escalation-2", incident.StepPick{Recipient: "N03"})
	require.NoError(t, err)
	require.Equal(t, "N03", won.Recipient, "another step picks anew")
}

// TestPageInApps_OneTransactionForSeveral pages several people in one
// transaction, as the dispatcher does: results in the order of the pages,
// a page sent before is not sent again, and each page is one outbox row and
// one notification.
func TestPageInApps_OneTransactionForSeveral(t *testing.T) {
	ctx := context.Background()
	ids := insert(t, row{Opened: time.Now()}, row{Opened: time.Now()}, row{Opened: time.Now()})
	due := time.Now().Add(-time.Second)
	page := func(i int, staff string) incident.InAppPage {
		return incident.InAppPage{IncidentID: ids[i], Step: "escalation-1", Recipient: staff, Kind: "INCIDENT_ESCALATED",
			Title: "t", Body: "b", Due: due, SMSSkipped: "SMS is not configured"}
	}
	first, _, err := store().PageInApp(ctx, page(0, "N02"))
	require.NoError(t, err)

	sent, err := store().PageInApps(ctx, []incident.InAppPage{page(1, "N02"), page(0, "N02"), page(2, "N01"), page(1, "N01")})
	require.NoError(t, err)
	require.Len(t, sent, 4)
	require.Equal(t, []bool{false, true, false, false}, []bool{sent[0].Before, sent[1].Before, sent[2].Before, sent[3].Before})
	require.True(t, sent[1].At.Equal(first), "sent before: its first sending time")
	for _, i := range []int{0, 2, 3} {
		require.False(t, sent[i].At.IsZero())
	}
	var rows []string
	require.NoError(t, db.Select(&rows, `SELECT o.incident_id || '/' || o.recipient || '/' || o.channel || '/' || o.status || '/' || (n.id IS NOT NULL)
		FROM notification_outbox o LEFT JOIN staff_notifications n ON n.outbox_id = o.id
		WHERE o.incident_id = ANY($1::uuid[]) ORDER BY 1`, pq.Array(ids)))
	want := []string{
		ids[0] + "/N02/inapp/sent/true", ids[0] + "/N02/sms/skipped/false",
		ids[1] + "/N01/inapp/sent/true", ids[1] + "/N01/sms/skipped/false",
		ids[1] + "/N02/inapp/sent/true", ids[1] + "/N02/sms/skipped/false",
		ids[2] + "/N01/inapp/sent/true", ids[2] + "/N01/sms/skipped/false",
	}
	slices.Sort(want)
	require.Equal(t, want, rows)
}
