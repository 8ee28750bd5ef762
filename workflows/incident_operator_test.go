package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/actionproof"
	"github.com/vigil-health/vigil/workflows"
)

// signal sends an operator signal at offset d.
func (h *harness) signal(d time.Duration, name string, sig any) {
	h.at(d, func() { h.env.SignalWorkflow(name, sig) })
}

// events are the recorded audit events, in order.
func (h *harness) events() []activities.AuditEvent {
	var out []activities.AuditEvent
	for _, r := range h.records {
		out = append(out, r.Events...)
	}
	return out
}

// TestIncident_OperatorSignals checks that an operator acknowledges,
// resolves and adds notes with signals, recorded as operator:<name> and
// under the staff state rules, and that every refused signal is in the
// timeline with its reason.
func TestIncident_OperatorSignals(t *testing.T) {
	h := newHarness(t)
	// Refused: no name (the Web UI's update payload sent as a signal), a
	// resolve before any acknowledgement, short notes, an empty note.
	h.signal(10*time.Second, workflows.IncidentSignalAcknowledge, map[string]any{"Actor": map[string]string{"StaffID": "C01"}})
	h.signal(20*time.Second, workflows.IncidentSignalResolve, workflows.OperatorSignal{Operator: "alice", Notes: resolution})
	h.signal(30*time.Second, workflows.IncidentSignalAcknowledge, workflows.OperatorSignal{Operator: "alice"})
	h.signal(40*time.Second, workflows.IncidentSignalAcknowledge, workflows.OperatorSignal{Operator: "bob"})
	h.signal(50*time.Second, workflows.IncidentSignalNote, workflows.OperatorSignal{Operator: "alice", Notes: " "})
	h.signal(60*time.Second, workflows.IncidentSignalNote, workflows.OperatorSignal{Operator: "alice", Notes: "Called the ward"})
	h.signal(70*time.Second, workflows.IncidentSignalResolve, workflows.OperatorSignal{Operator: "alice", Notes: "short"})
	h.signal(80*time.Second, workflows.IncidentSignalResolve, workflows.OperatorSignal{Operator: "alice.ops@vigil", Notes: resolution})
	h.run(input())
	require.NoError(t, h.env.GetWorkflowError())

	type row struct{ action, actor, reason string }
	var got []row
	for _, e := range h.events() {
		if e.ActorType == "operator" {
			got = append(got, row{e.Action, e.ActorID, e.Detail["reason"]})
		}
	}
	require.Equal(t, []row{
		{workflows.ActionOperatorRefused, "operator:?", `the payload must name the operator: {"operator": "<1 to 64 letters, digits or . - _ @>"}`},
		{workflows.ActionOperatorRefused, "operator:alice", "cannot resolve an incident that is ASSIGNED; acknowledge it first"},
		{workflows.ActionAcknowledged, "operator:alice", ""},
		{workflows.ActionOperatorRefused, "operator:bob", "cannot acknowledge an incident that is ACKNOWLEDGED"},
		{workflows.ActionOperatorRefused, "operator:alice", `a note must be 1 to 2000 characters of text: {"operator": "<name>", "notes": "..."}`},
		{workflows.ActionNoteAdded, "operator:alice", ""},
		{workflows.ActionOperatorRefused, "operator:alice", `resolution notes must be 10 to 2000 characters of text: {"operator": "<name>", "notes": "..."}`},
		{workflows.ActionResolved, "operator:alice.ops@vigil", ""},
	}, got)
	last := h.records[len(h.records)-1].Row
	require.Equal(t, workflows.StatusResolved, last.Status)
	require.Equal(t, "operator:alice.ops@vigil", last.ResolvedBy, "never a staff member")
	require.Equal(t, resolution, last.ResolutionNotes)
	require.Equal(t, t0.Add(30*time.Second), *last.AcknowledgedAt)
	require.Equal(t, []string{"assign@N01+0s"}, h.pageSteps(), "the operator's acknowledgement stops the escalation")
}

// TestIncident_UpdatesWithoutTheAPIsProofAreRefused checks that a staff
// transition sent as an Update without the API's proof (from the Web UI or
// the CLI), with a forged or stale proof, or replayed under another update
// id, is refused, and the reason points to the operator signals.
func TestIncident_UpdatesWithoutTheAPIsProofAreRefused(t *testing.T) {
	other, err := actionproof.New([]byte("someone else's key of thirty-two bytes!"))
	require.NoError(t, err)
	signed := func(keys *actionproof.Keyring, updateID string, at time.Time) *workflows.TransitionRequest {
		req := tr("C01", "charge", "")
		workflows.SignTransition(keys, testWorkflowID, workflows.IncidentUpdateAcknowledge, updateID, at, req)
		return req
	}
	tests := []struct {
		name string
		req  *workflows.TransitionRequest
	}{
		{name: "no proof (the Web UI's Send an Update)", req: &workflows.TransitionRequest{
			IncidentID: "inc-1", Actor: workflows.Actor{StaffID: "C01", Access: "charge"}, Proof: "none"}},
		{name: "signed with another key", req: signed(other, "ack", t0)},
		{name: "signed for another update id", req: signed(testKeys, "some-other-update", t0)},
		{name: "signed long ago", req: signed(testKeys, "ack", t0.Add(-time.Hour))},
		{name: "access level changed after signing", req: func() *workflows.TransitionRequest {
			r := signed(testKeys, "ack", t0)
			r.Actor.Access = "admin"
			return r
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.update(30*time.Second, "ack", workflows.IncidentUpdateAcknowledge, tt.req)
			h.signal(time.Minute, workflows.IncidentSignalAcknowledge, workflows.OperatorSignal{Operator: "ops"})
			h.signal(2*time.Minute, workflows.IncidentSignalResolve, workflows.OperatorSignal{Operator: "ops", Notes: resolution})
			h.run(input())
			require.Equal(t, workflows.RejectForbidden, rejectType(h.results["ack"]))
			require.ErrorContains(t, h.results["ack"], workflows.RefusedWithoutProof)
			require.ErrorContains(t, h.results["ack"], "signals acknowledge, resolve and note")
			for _, e := range h.events() {
				require.NotEqual(t, "C01", e.ActorID, "nothing was done as C01")
			}
		})
	}
}
