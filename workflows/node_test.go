package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/workflows"
)

const (
	nodeDay  = 24 * time.Hour
	nodeWeek = 7 * nodeDay
	// nodeEvery is how often the tests' scans observe the node (the real
	// schedule's 15 minutes would only make the tests slower).
	nodeEvery = 6 * time.Hour
)

var nodeStart = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

// nodeMail is one SendNodeMail call as the harness saw it.
type nodeMail struct {
	At   time.Duration // since nodeStart
	Key  string
	Kind string
}

func (m nodeMail) String() string { return fmt.Sprintf("%s %s @%s", m.Kind, m.Key, m.At) }

// nodeHarness runs NodeMonitor for node "7" with a scripted evaluation and
// scripted mail outcomes.
type nodeHarness struct {
	mu  sync.Mutex
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment
	// conditions returns the active conditions at a time since nodeStart.
	conditions func(at time.Duration) []string
	interval   func(at time.Duration) int
	// mailOutcome decides each SendNodeMail call (nil: sent).
	mailOutcome func(call int, req *node.MailRequest) (string, error)
	recorded    []node.ObservationRef
	mails       []nodeMail
	// name is the node's name in evaluations ("" for none).
	name string
	// rescanErr fails RescanNode; rescans and refused are what the
	// operator signals did.
	rescanErr error
	rescans   []activities.RescanNodeInput
	refused   []activities.OperatorSignalRecord
}

func newNodeHarness(t *testing.T, conditions func(time.Duration) []string) *nodeHarness {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	h := &nodeHarness{t: t, env: s.NewTestWorkflowEnvironment(), conditions: conditions}
	h.env.SetStartTime(nodeStart)
	h.env.SetTestTimeout(time.Minute)
	var a *activities.Nodes
	h.env.RegisterActivity(a)
	h.env.OnActivity(a.RecordNodeObservation, mock.Anything, mock.Anything).Return(
		func(_ context.Context, obs *node.ObservationRef) (*node.Evaluation, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.recorded = append(h.recorded, *obs)
			at := obs.ObservedAt.Sub(nodeStart)
			conds := h.conditions(at)
			headline := "ONLINE"
			if len(conds) > 0 {
				headline = conds[0]
			}
			weeks := 1
			if h.interval != nil {
				weeks = h.interval(at)
			}
			return &node.Evaluation{Headline: headline, Conditions: conds, IntervalWeeks: weeks, Name: h.name,
				Facts: node.MailFacts{LastWrite: &nodeStart}}, nil
		})
	h.env.OnActivity(a.RescanNode, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in *activities.RescanNodeInput) (*node.ObservationRef, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.rescans = append(h.rescans, *in)
			if h.rescanErr != nil {
				return nil, h.rescanErr
			}
			return &node.ObservationRef{ScanID: in.ScanID, NodeID: in.NodeID, ObservedAt: h.env.Now().Truncate(time.Second)}, nil
		})
	var ops *activities.Operators
	h.env.RegisterActivity(ops)
	h.env.OnActivity(ops.RecordOperatorSignal, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in *activities.OperatorSignalRecord) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.refused = append(h.refused, *in)
			return nil
		})
	h.env.OnActivity(a.SendNodeMail, mock.Anything, mock.Anything).Return(
		func(_ context.Context, req *node.MailRequest) (*node.MailResult, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.mails = append(h.mails, nodeMail{At: h.env.Now().Sub(nodeStart).Truncate(time.Second), Key: req.Key, Kind: req.Kind})
			status := node.MailSent
			if h.mailOutcome != nil {
				var err error
				if status, err = h.mailOutcome(len(h.mails), req); err != nil {
					return nil, err
				}
			}
			return &node.MailResult{Status: status}, nil
		})
	return h
}

// observeEvery signals an observation every period from the start until
// end (exclusive), then cancels the workflow at end.
func (h *nodeHarness) observeEvery(period, end time.Duration) {
	n := 0
	for at := time.Duration(0); at < end; at += period {
		h.observeAt(at, fmt.Sprintf("scan-%d", n))
		n++
	}
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, end)
}

func (h *nodeHarness) observeAt(at time.Duration, scanID string) {
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(workflows.SignalNodeObservation, &workflows.NodeObservationRef{
			ScanID: scanID, NodeID: "7", ObservedAt: h.env.Now().Truncate(time.Second),
		})
	}, max(at, time.Millisecond))
}

func (h *nodeHarness) run(in *workflows.NodeMonitorInput) error {
	if in == nil {
		in = &workflows.NodeMonitorInput{NodeID: "7"}
	}
	h.env.ExecuteWorkflow(workflows.NodeMonitor, in)
	require.True(h.t, h.env.IsWorkflowCompleted())
	return h.env.GetWorkflowError()
}

func (h *nodeHarness) runCancelled() {
	err := h.run(nil)
	var canceled *temporal.CanceledError
	require.ErrorAs(h.t, err, &canceled, "the monitor ends only when cancelled")
}

func (h *nodeHarness) sent() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, len(h.mails))
	for i, m := range h.mails {
		out[i] = m.String()
	}
	return out
}

func always(conds ...string) func(time.Duration) []string {
	return func(time.Duration) []string { return conds }
}

// between is active in [from, to).
func between(cond string, from, to time.Duration) func(time.Duration) []string {
	return func(at time.Duration) []string {
		if at >= from && at < to {
			return []string{cond}
		}
		return []string{"ONLINE"}
	}
}

func TestNodeMonitor_AlertThenRemindersEveryNWeeks(t *testing.T) {
	for _, weeks := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d weeks", weeks), func(t *testing.T) {
			h := newNodeHarness(t, always("OFFLINE"))
			h.interval = func(time.Duration) int { return weeks }
			every := time.Duration(weeks) * nodeWeek
			// Observed from 8:00 every 6 hours for two intervals and a day.
			h.observeEvery(nodeEvery, 2*every+nodeDay)
			h.runCancelled()
			require.Equal(t, []string{
				"alert node:7:OFFLINE:1:0 @0s",
				fmt.Sprintf("reminder node:7:OFFLINE:1:1 @%s", every),
				fmt.Sprintf("reminder node:7:OFFLINE:1:2 @%s", 2*every),
			}, h.sent(), "nothing before the interval, a reminder exactly at it")
		})
	}
}

func TestNodeMonitor_ReminderExactlyAfterIntervalFromLastSend(t *testing.T) {
	// The condition first shows with the second scan (14:00): the
	// reminder is due exactly a week after that send, fired by the timer
	// rather than by a later scan.
	h := newNodeHarness(t, between("OFFLINE", 6*time.Hour, 100*nodeDay))
	h.observeEvery(nodeEvery, nodeWeek+nodeDay)
	h.runCancelled()
	require.Equal(t, []string{
		"alert node:7:OFFLINE:1:0 @6h0m0s",
		"reminder node:7:OFFLINE:1:1 @174h0m0s",
	}, h.sent())
}

func TestNodeMonitor_RecoveredThenImmediateAlertOnRecurrence(t *testing.T) {
	h := newNodeHarness(t, func(at time.Duration) []string {
		switch {
		case at < 2*nodeDay:
			return []string{"NO IMPORTS"}
		case at < 3*nodeDay:
			return []string{"ONLINE"}
		default:
			return []string{"NO IMPORTS"}
		}
	})
	h.observeEvery(nodeEvery, 4*nodeDay)
	h.runCancelled()
	require.Equal(t, []string{
		"alert node:7:NO IMPORTS:1:0 @0s",
		"recovered node:7:NO IMPORTS:1:1 @48h0m0s",
		"alert node:7:NO IMPORTS:2:0 @72h0m0s",
	}, h.sent())
}

func TestNodeMonitor_RecoveryResetsTheReminderCadence(t *testing.T) {
	// Cleared after 5 days, back after 6: the reminder is due a week after
	// the second alert, not a week after the first.
	h := newNodeHarness(t, func(at time.Duration) []string {
		if at >= 5*nodeDay && at < 6*nodeDay {
			return []string{"ONLINE"}
		}
		return []string{"OFFLINE"}
	})
	h.observeEvery(nodeEvery, 6*nodeDay+nodeWeek+nodeDay)
	h.runCancelled()
	require.Equal(t, []string{
		"alert node:7:OFFLINE:1:0 @0s",
		"recovered node:7:OFFLINE:1:1 @120h0m0s",
		"alert node:7:OFFLINE:2:0 @144h0m0s",
		"reminder node:7:OFFLINE:2:1 @312h0m0s",
	}, h.sent())
}

func TestNodeMonitor_WhichConditionsMail(t *testing.T) {
	tests := []struct {
		name  string
		conds []string
		want  []string
	}{
		{"extreme error rate mails", []string{"EXTREME ERROR RATE"}, []string{"alert node:7:EXTREME ERROR RATE:1:0 @0s"}},
		{"DWH outdated mails", []string{"ONLINE", "DWH OUTDATED"}, []string{"alert node:7:DWH OUTDATED:1:0 @0s"}},
		{"testing and high error rate do not", []string{"TESTING", "HIGH ERROR RATE"}, []string{}},
		{"concurrent conditions mail each, in a fixed order", []string{"GAP IN MONITORING", "OFFLINE", "NO IMPORTS", "DWH OUTDATED"}, []string{
			"alert node:7:OFFLINE:1:0 @0s", "alert node:7:NO IMPORTS:1:0 @0s", "alert node:7:DWH OUTDATED:1:0 @0s",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newNodeHarness(t, always(tt.conds...))
			h.observeEvery(nodeEvery, 2*nodeDay)
			h.runCancelled()
			require.Equal(t, tt.want, h.sent())
		})
	}
}

func TestNodeMonitor_NoRecipientsRetriedWithTheSameKey(t *testing.T) {
	h := newNodeHarness(t, always("OFFLINE"))
	h.mailOutcome = func(call int, _ *node.MailRequest) (string, error) {
		if call <= 2 {
			return node.MailNoRecipients, nil
		}
		return node.MailSent, nil
	}
	h.observeEvery(nodeEvery, 12*time.Hour+nodeWeek+time.Hour)
	h.runCancelled()
	require.Equal(t, []string{
		"alert node:7:OFFLINE:1:0 @0s",
		"alert node:7:OFFLINE:1:0 @6h0m0s",
		"alert node:7:OFFLINE:1:0 @12h0m0s",
		"reminder node:7:OFFLINE:1:1 @180h0m0s",
	}, h.sent(), "retried once per observation until a contact exists; the cadence counts from the real send")
}

func TestNodeMonitor_PermanentMailFailureWaitsForTheReminder(t *testing.T) {
	h := newNodeHarness(t, always("OFFLINE"))
	h.mailOutcome = func(call int, _ *node.MailRequest) (string, error) {
		if call == 1 {
			return "", temporal.NewNonRetryableApplicationError("550 no such user", activities.ErrTypeMailPermanent, nil)
		}
		return node.MailSent, nil
	}
	h.observeEvery(nodeEvery, nodeWeek+nodeDay)
	h.runCancelled()
	require.Equal(t, []string{
		"alert node:7:OFFLINE:1:0 @0s",
		"reminder node:7:OFFLINE:1:1 @168h0m0s",
	}, h.sent(), "a permanent failure is not retried every scan")
}

func TestNodeMonitor_RemindersWaitWhileTheNodeIsNotObserved(t *testing.T) {
	h := newNodeHarness(t, always("OFFLINE"))
	// Observed for the first day, then nothing until day 9 (the scan was
	// down): the reminder due on day 7 goes with the day-9 observation.
	for at := time.Duration(0); at < nodeDay; at += nodeEvery {
		h.observeAt(at, fmt.Sprintf("scan-a%d", at/nodeEvery))
	}
	h.observeAt(9*nodeDay, "scan-b")
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 10*nodeDay)
	h.runCancelled()
	require.Equal(t, []string{
		"alert node:7:OFFLINE:1:0 @0s",
		"reminder node:7:OFFLINE:1:1 @216h0m0s",
	}, h.sent())
}

func TestNodeMonitor_IntervalChangeRearmsTheTimer(t *testing.T) {
	h := newNodeHarness(t, always("OFFLINE"))
	// The operator sets two weeks on day 3.
	h.interval = func(at time.Duration) int {
		if at >= 3*nodeDay {
			return 2
		}
		return 1
	}
	h.observeEvery(nodeEvery, 2*nodeWeek+nodeDay)
	h.runCancelled()
	require.Equal(t, []string{
		"alert node:7:OFFLINE:1:0 @0s",
		"reminder node:7:OFFLINE:1:1 @336h0m0s",
	}, h.sent())
}

func TestNodeMonitor_DuplicateScanIgnored(t *testing.T) {
	h := newNodeHarness(t, always("OFFLINE"))
	h.observeAt(0, "scan-1")
	h.observeAt(time.Minute, "scan-1") // a retried scan
	h.observeAt(2*time.Minute, "scan-2")
	h.observeAt(3*time.Minute, "") // nothing to read it by
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Hour)
	h.runCancelled()
	var scans []string
	for _, o := range h.recorded {
		scans = append(scans, o.ScanID)
		require.Equal(t, "7", o.NodeID)
	}
	require.Equal(t, []string{"scan-1", "scan-2"}, scans)
	require.Equal(t, []string{"alert node:7:OFFLINE:1:0 @0s"}, h.sent())
}

func TestNodeMonitor_StatusQuery(t *testing.T) {
	h := newNodeHarness(t, always("OFFLINE", "DWH OUTDATED"))
	h.observeAt(0, "scan-1")
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(workflows.NodeQueryStatus)
		require.NoError(t, err)
		var st workflows.NodeMonitorState
		require.NoError(t, v.Get(&st))
		require.Equal(t, "7", st.NodeID)
		require.Equal(t, "OFFLINE", st.Headline)
		require.Equal(t, []string{"OFFLINE", "DWH OUTDATED"}, st.Last.Conditions)
		var conds []string
		for _, m := range st.Mails {
			conds = append(conds, m.Condition)
		}
		require.Equal(t, []string{"OFFLINE", "NO IMPORTS", "DWH OUTDATED", "EXTREME ERROR RATE"}, conds)
		require.True(t, st.Mails[0].Active)
		require.False(t, st.Mails[1].Active)
		require.Equal(t, 1, st.Mails[0].Seq)
		h.env.CancelWorkflow()
	}, time.Hour)
	h.runCancelled()
}

func TestNodeMonitor_ContinueAsNewCarriesState(t *testing.T) {
	h := newNodeHarness(t, always("OFFLINE"))
	h.observeAt(0, "scan-1")
	h.observeAt(nodeEvery, "scan-2")
	err := h.run(&workflows.NodeMonitorInput{NodeID: "7", ContinueAsNewAfter: 2})
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, err, &can)
	var next workflows.NodeMonitorInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.NotNil(t, next.Carry)
	require.Equal(t, []string{"scan-1", "scan-2"}, next.Carry.RecentScans)
	require.Equal(t, 2, next.Carry.Observations)
	off := next.Carry.Mails[0]
	require.Equal(t, "OFFLINE", off.Condition)
	require.True(t, off.Active)
	require.Equal(t, 1, off.Episodes)
	require.Equal(t, 1, off.Seq)
	require.WithinDuration(t, nodeStart, off.LastSent, time.Second)
	require.Equal(t, []string{"alert node:7:OFFLINE:1:0 @0s"}, h.sent())

	// The next run knows the alert went out: no second alert, the
	// reminder a week after the first send, a repeated scan ignored.
	h2 := newNodeHarness(t, always("OFFLINE"))
	h2.env.SetStartTime(nodeStart.Add(nodeEvery))
	h2.observeAt(time.Minute, "scan-2")
	for at := nodeEvery; at < nodeWeek+nodeDay; at += nodeEvery {
		h2.observeAt(at-nodeEvery, fmt.Sprintf("scan-next-%d", at/nodeEvery))
	}
	h2.env.RegisterDelayedCallback(h2.env.CancelWorkflow, nodeWeek+nodeDay)
	next.ContinueAsNewAfter = 0
	h2.env.ExecuteWorkflow(workflows.NodeMonitor, &next)
	var canceled *temporal.CanceledError
	require.ErrorAs(t, h2.env.GetWorkflowError(), &canceled)
	require.Equal(t, []string{"reminder node:7:OFFLINE:1:1 @168h0m0s"}, h2.sent())
	require.False(t, slices.ContainsFunc(h2.recorded, func(o node.ObservationRef) bool { return o.ScanID == "scan-2" }))
}

func TestNodeMonitor_RecordFailureSkipsTheObservation(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(nodeStart)
	var a *activities.Nodes
	env.RegisterActivity(a)
	calls := 0
	env.OnActivity(a.RecordNodeObservation, mock.Anything, mock.Anything).Return(
		func(context.Context, *node.ObservationRef) (*node.Evaluation, error) {
			calls++
			if calls == 1 {
				return nil, temporal.NewNonRetryableApplicationError("bad data", activities.ErrTypeInvalidData, nil)
			}
			return &node.Evaluation{Headline: "ONLINE", Conditions: []string{"ONLINE"}}, nil
		})
	for i, at := range []time.Duration{time.Millisecond, time.Hour} {
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(workflows.SignalNodeObservation, &workflows.NodeObservationRef{ScanID: fmt.Sprint(i), NodeID: "7", ObservedAt: env.Now()})
		}, at)
	}
	env.RegisterDelayedCallback(env.CancelWorkflow, 2*time.Hour)
	env.ExecuteWorkflow(workflows.NodeMonitor, &workflows.NodeMonitorInput{NodeID: "7"})
	var canceled *temporal.CanceledError
	require.ErrorAs(t, env.GetWorkflowError(), &canceled, "a failed recording does not end the monitor")
	require.Equal(t, 2, calls)
}

func TestNodeMonitor_InvalidInput(t *testing.T) {
	h := newNodeHarness(t, always("ONLINE"))
	err := h.run(&workflows.NodeMonitorInput{})
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae))
	require.Equal(t, "InvalidInput", ae.Type())
}

func TestNodeMonitor_RegisteredNameMatchesTheScan(t *testing.T) {
	// The fleet scan starts node workflows by name.
	h := newNodeHarness(t, always("OFFLINE"))
	h.env.RegisterWorkflow(workflows.NodeMonitor)
	h.observeAt(0, "scan-1")
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Hour)
	h.env.ExecuteWorkflow(node.MonitorWorkflow, &node.MonitorStart{NodeID: "7"})
	var canceled *temporal.CanceledError
	require.ErrorAs(t, h.env.GetWorkflowError(), &canceled)
	require.Equal(t, []string{"alert node:7:OFFLINE:1:0 @0s"}, h.sent())
	require.Equal(t, "node:7", workflows.NodeWorkflowID("7"))
}

func TestNodeMonitor_RescanSignal(t *testing.T) {
	h := newNodeHarness(t, always("OFFLINE"))
	h.observeAt(0, "scan-1")
	signal := func(at time.Duration, payload any) {
		h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(workflows.NodeSignalRescan, payload) }, at)
	}
	signal(time.Hour, workflows.OperatorSignal{Operator: "alice", Reason: "site says it is back"})
	signal(2*time.Hour, map[string]string{"operator": "bob smith"})
	signal(3*time.Hour, 42)
	var details string
	var handlers map[string]string
	h.env.RegisterDelayedCallback(func() {
		md := workflowMetadata(t, h.env)
		details, handlers = md.GetCurrentDetails(), handlerDescriptions(md)
	}, 4*time.Hour)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 5*time.Hour)
	h.runCancelled()

	require.Len(t, h.rescans, 1)
	r := h.rescans[0]
	require.Equal(t, "7", r.NodeID)
	require.True(t, strings.HasPrefix(r.ScanID, "rescan-"), r.ScanID)
	require.Equal(t, "operator:alice", r.Signal.Actor)
	require.Equal(t, "site says it is back", r.Signal.Reason)
	require.Equal(t, workflows.NodeSignalRescan, r.Signal.Signal)
	require.Equal(t, "node", r.Signal.Kind)
	var scans []string
	for _, o := range h.recorded {
		scans = append(scans, o.ScanID)
	}
	require.Equal(t, []string{"scan-1", r.ScanID}, scans, "the rescan's observation is recorded and evaluated")

	var refusals []string
	for _, rec := range h.refused {
		require.Equal(t, activities.OperatorSignalRefused, rec.Outcome)
		refusals = append(refusals, rec.Refusal)
	}
	require.Equal(t, []string{
		"the operator name must be 1 to 64 letters, digits or . - _ @",
		`the payload must be a JSON object {"operator":"<name>","reason":"<text>"}`,
	}, refusals)

	require.Contains(t, details, "Node 7\n")
	require.Contains(t, details, "Status: OFFLINE")
	require.Contains(t, details, "Last import: 2026-03-02 08:00 UTC")
	require.Contains(t, details, "Last observation: 2026-03-02 09:00 UTC ("+r.ScanID+")")
	require.Contains(t, details, "Last mail: OFFLINE alert at 2026-03-02 08:00 UTC: sent")
	require.Contains(t, details, "Next reminder: 2026-03-09 08:00 UTC")
	require.Contains(t, details, "Last operator signal: rescan ("+r.ScanID+") by operator:alice")
	require.Contains(t, details, "Last refused signal: rescan from an unnamed operator at 2026-03-02 11:00 UTC")
	for _, name := range []string{"signal:rescan", "signal:" + workflows.SignalNodeObservation, "query:status"} {
		require.NotEmpty(t, handlers[name], name)
	}
}

func TestNodeMonitor_FailedRescanIsRecorded(t *testing.T) {
	h := newNodeHarness(t, always("ONLINE"))
	h.rescanErr = temporal.NewNonRetryableApplicationError("no broker is configured on this worker", activities.ErrTypeNoBroker, nil)
	h.env.RegisterDelayedCallback(func() {
		h.env.SignalWorkflow(workflows.NodeSignalRescan, workflows.OperatorSignal{Operator: "alice"})
	}, time.Minute)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Hour)
	h.runCancelled()
	require.Len(t, h.rescans, 1)
	require.Empty(t, h.recorded)
	require.Len(t, h.refused, 1)
	require.Equal(t, activities.OperatorSignalFailed, h.refused[0].Outcome)
	require.Equal(t, "operator:alice", h.refused[0].Actor)
	require.Equal(t, "the rescan failed: no broker is configured on this worker", h.refused[0].Refusal)
}

func TestNodeMonitor_NodeNameSearchAttribute(t *testing.T) {
	for _, tt := range []struct {
		name, atStart, evaluated string
		upserts                  []string
	}{
		{"named by the scan at start", "Klinikum Am Hafen", "Klinikum Am Hafen", nil},
		{"named by the evaluation", "", "Klinikum Am Hafen", []string{"Klinikum Am Hafen"}},
		{"renamed in the settings", "Klinik Hafen", "Klinikum Am Hafen", []string{"Klinikum Am Hafen"}},
		{"no name", "", "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newNodeHarness(t, always("ONLINE"))
			h.name = tt.evaluated
			if tt.atStart != "" {
				require.NoError(t, h.env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(
					workflows.VigilKindKey.ValueSet(workflows.KindNode), workflows.NodeIDKey.ValueSet("7"),
					workflows.NodeNameKey.ValueSet(tt.atStart))))
			}
			var upserts []string
			h.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
				if v, ok := args.Get(0).(temporal.SearchAttributes).GetString(workflows.NodeNameKey); ok {
					upserts = append(upserts, v)
				}
			}).Return(nil)
			h.observeAt(0, "scan-1")
			h.observeAt(time.Hour, "scan-2")
			var details string
			var st workflows.NodeMonitorState
			h.env.RegisterDelayedCallback(func() {
				details = workflowMetadata(t, h.env).GetCurrentDetails()
				v, err := h.env.QueryWorkflow(workflows.NodeQueryStatus)
				require.NoError(t, err)
				require.NoError(t, v.Get(&st))
			}, 2*time.Hour)
			h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 3*time.Hour)
			h.runCancelled()
			require.Equal(t, tt.upserts, upserts)
			want := tt.evaluated
			if want == "" {
				want = tt.atStart
			}
			require.Equal(t, want, st.Name)
			require.True(t, strings.HasPrefix(details, workflows.NodeSummary("7", want)+"\n"), details)
		})
	}
}

func TestNodeSummary(t *testing.T) {
	require.Equal(t, "Node 5 · Evangelisches Krankenhaus Lindenau", workflows.NodeSummary("5", "Evangelisches Krankenhaus Lindenau"))
	require.Equal(t, "Node 5", workflows.NodeSummary("5", ""))
}
