package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/workflows"
)

// TestIncident_PagesCarryTheirDueTime checks the due time each page hands
// the Page activity (stored as notification_outbox.due_at): the moment its
// timer was set for, for escalation steps and start reminders, and none for
// pages sent at once.
func TestIncident_PagesCarryTheirDueTime(t *testing.T) {
	tests := []struct {
		name      string
		pageDelay time.Duration
		setup     func(h *harness)
		// due maps each page (step@recipient) to its due offset from t0;
		// -1 means no due time.
		due map[string]time.Duration
	}{
		{
			name: "escalation steps and reminders",
			setup: func(h *harness) {
				h.update(9*time.Minute, "ack", workflows.IncidentUpdateAcknowledge, tr("C01", "staff", ""))
				h.update(20*time.Minute, "resolve", workflows.IncidentUpdateResolve, tr("C01", "staff", resolution))
			},
			due: map[string]time.Duration{
				"assign@N01":       -1,
				"escalation-1@N02": 2 * time.Minute,
				"escalation-2@C01": 7 * time.Minute,
				"reminder-1@C01":   14 * time.Minute,
				"reminder-2@C01":   19 * time.Minute,
			},
		},
		{
			// The assignment page takes 10 minutes: the delayed page is due
			// when the first overdue step was (as its DELAYED_PAGE event says).
			name:      "delayed page",
			pageDelay: 10 * time.Minute,
			setup: func(h *harness) {
				h.update(16*time.Minute, "resolve", workflows.IncidentUpdateResolve, tr("C01", "charge", resolution))
			},
			due: map[string]time.Duration{
				"assign@N01":              -1,
				"delayed-2@C01":           2 * time.Minute,
				"escalation-repeat-3@C01": 15 * time.Minute,
			},
		},
		{
			name: "reassignment",
			setup: func(h *harness) {
				h.update(time.Minute, "reassign", workflows.IncidentUpdateReassign,
					&workflows.TransitionRequest{IncidentID: "inc-1", Actor: workflows.Actor{StaffID: "C01", Access: "charge"}, ToStaffID: "N03"})
				h.update(2*time.Minute, "resolve", workflows.IncidentUpdateResolve, tr("C01", "charge", resolution))
			},
			due: map[string]time.Duration{"assign@N01": -1, "reassign-1@N03": -1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarnessWith(t, tt.pageDelay)
			tt.setup(h)
			h.run(input())
			require.NoError(t, h.env.GetWorkflowError())
			got := map[string]time.Duration{}
			for _, p := range h.pages {
				d := time.Duration(-1)
				if !p.Due.IsZero() {
					d = p.Due.Sub(t0)
				}
				got[p.Step+"@"+p.Recipient] = d
			}
			require.Equal(t, tt.due, got)
		})
	}
}
