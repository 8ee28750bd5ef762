package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/workflows"
)

// TestIncident_ArmsEscalationStepsWithItsProjection checks the escalation
// step each projection arms for the dispatcher (versionArmedSteps): the
// step escalate pages when its timer fires, with its due time and label, as
// long as the incident is ASSIGNED; the acknowledgement's projection arms
// nothing (the store then cancels the armed step).
func TestIncident_ArmsEscalationStepsWithItsProjection(t *testing.T) {
	type armed struct {
		Status string
		Step   string
		Due    time.Duration
		Target string // the first choice: a role, or failsafe
	}
	tests := []struct {
		name  string
		setup func(h *harness)
		want  []armed
	}{
		{
			name: "acknowledged after two steps",
			setup: func(h *harness) {
				h.update(9*time.Minute, "ack", workflows.IncidentUpdateAcknowledge, tr("C01", "staff", ""))
				h.update(20*time.Minute, "resolve", workflows.IncidentUpdateResolve, tr("C01", "staff", resolution))
			},
			want: []armed{
				{Status: workflows.StatusOpen},
				{Status: workflows.StatusAssigned, Step: "escalation-1", Due: 2 * time.Minute, Target: "NURSE"},
				{Status: workflows.StatusAssigned, Step: "escalation-2", Due: 7 * time.Minute, Target: "failsafe"},
				{Status: workflows.StatusAssigned, Step: "escalation-repeat-3", Due: 12 * time.Minute, Target: "failsafe"},
				{Status: workflows.StatusAcknowledged},
				{Status: workflows.StatusResolved},
			},
		},
		{
			name: "reassigned: the escalation restarts",
			setup: func(h *harness) {
				h.update(time.Minute, "reassign", workflows.IncidentUpdateReassign,
					&workflows.TransitionRequest{IncidentID: "inc-1", Actor: workflows.Actor{StaffID: "C01", Access: "charge"}, ToStaffID: "N03"})
				h.update(2*time.Minute, "resolve", workflows.IncidentUpdateResolve, tr("C01", "charge", resolution))
			},
			want: []armed{
				{Status: workflows.StatusOpen},
				{Status: workflows.StatusAssigned, Step: "escalation-1", Due: 2 * time.Minute, Target: "NURSE"},
				{Status: workflows.StatusAssigned, Step: "escalation-1-r1", Due: 3 * time.Minute, Target: "NURSE"},
				{Status: workflows.StatusResolved},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			tt.setup(h)
			h.run(input())
			require.NoError(t, h.env.GetWorkflowError())
			var got []armed
			for _, r := range h.records {
				a := armed{Status: r.Row.Status}
				if r.Armed != nil {
					in := r.Armed.Input
					require.Equal(t, r.Armed.Due, in.Page.Due, "the page carries its due time")
					require.Equal(t, "inc-1", in.Page.IncidentID)
					require.Equal(t, "INCIDENT_ESCALATED", in.Page.Kind)
					require.Empty(t, in.Page.Recipient, "the step picks when it fires")
					require.NotEmpty(t, in.Page.Body)
					a.Step, a.Due, a.Target = in.Page.Step, r.Armed.Due.Sub(t0), target(in.Choices)
				}
				if len(got) == 0 || got[len(got)-1] != a {
					got = append(got, a)
				}
			}
			require.Equal(t, tt.want, got)
		})
	}
}

// target is the first of a step's choices: its role, or "failsafe".
func target(choices []activities.PickChoice) string {
	if len(choices) == 0 {
		return ""
	}
	if choices[0].FailsafeOnly {
		return "failsafe"
	}
	return choices[0].Roles[0]
}
