package workflows_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/actionproof"
	"github.com/vigil-health/vigil/workflows"
)

var t0 = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

// testKeys sign the transitions the tests send, as the API does.
var testKeys = func() *actionproof.Keyring {
	k, err := actionproof.New([]byte("a test key of at least thirty-two bytes"))
	if err != nil {
		panic(err)
	}
	return k
}()

// testWorkflowID is the test environment's workflow id.
const testWorkflowID = "default-test-workflow-id"

// criticalPlan is the default CRITICAL policy: 2 min then the next nurse,
// 5 min then the failsafe role; start reminder after 5 min.
var criticalPlan = activities.Plan{
	PolicyID: "severity:CRITICAL",
	Roles:    []string{"NURSE", "EMERGENCY_DOCTOR"},
	Steps: []activities.PlanStep{
		{WaitSeconds: 120, Target: workflows.TargetNextInRole},
		{WaitSeconds: 300, Target: workflows.TargetFailsafe},
	},
	StartReminderSeconds: 300,
	FailsafeRole:         "CHARGE_NURSE",
}

type page struct {
	at time.Time
	activities.PageInput
}

// harness runs the incident workflow with its activities replaced by
// recorders; pick decides who is on call.
type harness struct {
	t       *testing.T
	env     *testsuite.TestWorkflowEnvironment
	pages   []page
	picks   []activities.PickInput
	records []activities.RecordInput
	pick    func(in *activities.PickInput) *activities.PickResult
	results map[string]error
	sms     []string
	// mu guards the recorders: activities run in goroutines of their own.
	mu sync.Mutex
	// onRecord, when set, runs inside each Record (in the activity's
	// goroutine) before it returns.
	onRecord func(in *activities.RecordInput)
}

func newHarness(t *testing.T) *harness { return newHarnessWith(t, 0) }

// newHarnessWith delays the first Page (the assignment's) by pageDelay of
// workflow time, as if the worker had been down that long.
func newHarnessWith(t *testing.T, pageDelay time.Duration) *harness {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	h := &harness{t: t, env: s.NewTestWorkflowEnvironment(), results: map[string]error{}}
	h.env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{workflows.TransitionProofInterceptor(testKeys)}})
	h.env.SetStartTime(t0)
	h.env.SetTestTimeout(30 * time.Second)
	h.pick = func(in *activities.PickInput) *activities.PickResult {
		if in.FailsafeOnly {
			return &activities.PickResult{Found: true, StaffID: "C01", Role: "CHARGE_NURSE", Reason: "failsafe"}
		}
		for _, id := range []string{"N01", "N02", "N03"} {
			if !slices.Contains(in.Exclude, id) {
				return &activities.PickResult{Found: true, StaffID: id, Role: in.Roles[0], Candidates: 3, Reason: "least busy"}
			}
		}
		return &activities.PickResult{Found: false}
	}
	var a *activities.Incidents
	h.env.RegisterActivity(a)
	h.env.OnActivity(a.LoadPlan, mock.Anything, mock.Anything).Return(&criticalPlan, nil)
	h.env.OnActivity(a.Record, mock.Anything, mock.Anything).Return(func(_ context.Context, in *activities.RecordInput) (*activities.RecordResult, error) {
		if h.onRecord != nil {
			h.onRecord(in)
		}
		h.mu.Lock()
		h.records = append(h.records, *in)
		h.mu.Unlock()
		return &activities.RecordResult{Slack: true}, nil
	})
	pick := func(_ context.Context, in *activities.PickInput) (*activities.PickResult, error) {
		h.mu.Lock()
		h.picks = append(h.picks, *in)
		h.mu.Unlock()
		return h.pick(in), nil
	}
	h.env.OnActivity(a.Pick, mock.Anything, mock.Anything).Return(pick)
	var n *activities.Notifier
	h.env.RegisterActivity(n)
	h.env.OnActivity(n.SyncSlack, mock.Anything, mock.Anything).Return(&activities.SlackSyncResult{}, nil)
	h.env.OnActivity(n.SendSMS, mock.Anything, mock.Anything).Return(func(_ context.Context, in *activities.SMSInput) (*activities.SMSResult, error) {
		h.mu.Lock()
		h.sms = append(h.sms, in.Step+"@"+in.Recipient)
		h.mu.Unlock()
		return &activities.SMSResult{Sent: true}, nil
	})
	pageFn := func(_ context.Context, in *activities.PageInput) (*activities.PageResult, error) {
		h.mu.Lock()
		h.pages = append(h.pages, page{at: h.env.Now(), PageInput: *in})
		h.mu.Unlock()
		return &activities.PageResult{Delivered: true, DeliveredAt: h.env.Now()}, nil
	}
	if pageDelay > 0 {
		h.env.OnActivity(a.Page, mock.Anything, mock.Anything).Return(pageFn).After(pageDelay).Once()
	}
	h.env.OnActivity(a.Page, mock.Anything, mock.Anything).Return(pageFn)
	// PageStep as activities.PageStep does it: the first choice that finds
	// someone is paged; SMS is on.
	pageStep := func(ctx context.Context, in *activities.PageStepInput) (*activities.PageStepResult, error) {
		res := &activities.PageStepResult{SMS: true}
		if in.Page.Recipient != "" {
			res.Pick = activities.PickResult{Found: true, StaffID: in.Page.Recipient}
		}
		for i := 0; i < len(in.Choices) && !res.Pick.Found; i++ {
			p, _ := pick(ctx, &in.Choices[i].PickInput)
			if p.Found && !(in.Choices[i].SameRoleOnly && p.Fallback) {
				res.Pick = *p
			}
		}
		if !res.Pick.Found {
			return res, nil
		}
		pg := in.Page
		pg.Recipient = res.Pick.StaffID
		out, err := pageFn(ctx, &pg)
		res.Page = *out
		return res, err
	}
	if pageDelay > 0 {
		h.env.OnActivity(a.PageStep, mock.Anything, mock.Anything).Return(pageStep).After(pageDelay).Once()
	}
	h.env.OnActivity(a.PageStep, mock.Anything, mock.Anything).Return(pageStep)
	return h
}

func input() *workflows.IncidentInput {
	return &workflows.IncidentInput{
		IncidentID: "inc-1", DedupKeyHash: "k1", AlertType: "CARDIAC_ARREST", Severity: "CRITICAL",
		PatientID: "P001", Room: "ICU-1", Source: "monitor", OpenedAt: t0,
	}
}

// at schedules fn at offset d from the start.
func (h *harness) at(d time.Duration, fn func()) { h.env.RegisterDelayedCallback(fn, d) }

// update sends an update at offset d and stores its outcome under key.
func (h *harness) update(d time.Duration, key, name string, req any) {
	h.at(d, func() {
		if tr, ok := req.(*workflows.TransitionRequest); ok && tr.Proof == "" {
			workflows.SignTransition(testKeys, testWorkflowID, name, key, h.env.Now(), tr)
		}
		h.env.UpdateWorkflow(name, key, &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   func(err error) { h.results[key] = err },
			OnComplete: func(_ any, err error) { h.results[key] = err },
		}, req)
	})
}

func tr(staff, access, notes string) *workflows.TransitionRequest {
	return &workflows.TransitionRequest{IncidentID: "inc-1", Actor: workflows.Actor{StaffID: staff, Access: access}, Notes: notes}
}

func (h *harness) run(in *workflows.IncidentInput) {
	h.env.ExecuteWorkflow(workflows.Incident, in)
	require.True(h.t, h.env.IsWorkflowCompleted())
}

func (h *harness) state() workflows.IncidentState {
	v, err := h.env.QueryWorkflow(workflows.IncidentQueryState)
	require.NoError(h.t, err)
	var st workflows.IncidentState
	require.NoError(h.t, v.Get(&st))
	return st
}

func (h *harness) pageSteps() []string {
	var out []string
	for _, p := range h.pages {
		out = append(out, p.Step+"@"+p.Recipient+"+"+p.at.Sub(t0).String())
	}
	return out
}

func (h *harness) actions() []string {
	var out []string
	for _, r := range h.records {
		for _, e := range r.Events {
			out = append(out, e.Action)
		}
	}
	return out
}

func rejectType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

const resolution = "Patient stabilised, monitoring continues."

func TestIncident_HappyPathThroughEveryState(t *testing.T) {
	h := newHarness(t)
	h.update(30*time.Second, "ack", workflows.IncidentUpdateAcknowledge, tr("N01", "staff", ""))
	h.update(time.Minute, "start", workflows.IncidentUpdateStart, tr("N01", "staff", ""))
	h.update(90*time.Second, "note", workflows.IncidentUpdateNote, tr("N01", "staff", "Doctor on the way"))
	h.update(10*time.Minute, "resolve", workflows.IncidentUpdateResolve, tr("N01", "staff", resolution))
	h.run(input())

	require.NoError(t, h.env.GetWorkflowError())
	for _, k := range []string{"ack", "start", "note", "resolve"} {
		require.NoError(t, h.results[k], k)
	}
	require.Equal(t, []string{"assign@N01+0s"}, h.pageSteps(), "an acknowledgement stops the escalation")
	require.Equal(t, []string{"assign@N01"}, h.sms, "every page also goes by SMS")
	require.Equal(t, []string{"CREATED", "ASSIGNED", "PAGED", "ACKNOWLEDGED", "STARTED_PROGRESS", "NOTE_ADDED", "RESOLVED"}, h.actions())

	last := h.records[len(h.records)-1].Row
	require.Equal(t, workflows.StatusResolved, last.Status)
	require.Equal(t, t0.Add(30*time.Second), *last.AcknowledgedAt)
	require.Equal(t, t0.Add(time.Minute), *last.InProgressAt)
	require.Equal(t, t0.Add(10*time.Minute), *last.ResolvedAt)
	require.Equal(t, t0, *last.FirstPagedAt)
	require.Equal(t, resolution, last.ResolutionNotes)
	require.Equal(t, "N01", last.ResolvedBy)
	// Every event records the actor, workflow time and both states.
	for _, r := range h.records {
		for _, e := range r.Events {
			require.False(t, e.At.IsZero())
			require.NotEmpty(t, e.ActorType)
		}
	}
	var ack activities.AuditEvent
	for _, r := range h.records {
		for _, e := range r.Events {
			if e.Action == workflows.ActionAcknowledged {
				ack = e
			}
		}
	}
	require.Equal(t, "N01", ack.ActorID)
	require.Equal(t, workflows.StatusAssigned, ack.FromStatus)
	require.Equal(t, workflows.StatusAcknowledged, ack.ToStatus)
}

func TestIncident_IllegalAndForbiddenTransitionsAreRejected(t *testing.T) {
	tests := []struct {
		name    string
		setup   []func(h *harness)
		update  string
		req     *workflows.TransitionRequest
		reject  string
		message string
	}{
		{name: "start before acknowledging", update: workflows.IncidentUpdateStart, req: tr("N01", "staff", ""), reject: workflows.RejectIllegal, message: "acknowledge it first"},
		{name: "acknowledge someone else's incident", update: workflows.IncidentUpdateAcknowledge, req: tr("N09", "staff", ""), reject: workflows.RejectForbidden},
		{name: "resolve with short notes", update: workflows.IncidentUpdateResolve, req: tr("N01", "charge", "done"), reject: workflows.RejectInvalid},
		{name: "resolve before acknowledging", update: workflows.IncidentUpdateResolve, req: tr("N01", "staff", resolution), reject: workflows.RejectIllegal},
		{name: "reassign without charge", update: workflows.IncidentUpdateReassign, req: &workflows.TransitionRequest{IncidentID: "inc-1", Actor: workflows.Actor{StaffID: "N01", Access: "staff"}, ToStaffID: "N02"}, reject: workflows.RejectForbidden},
		{name: "act on another incident of the same key", update: workflows.IncidentUpdateAcknowledge, req: &workflows.TransitionRequest{IncidentID: "inc-0", Actor: workflows.Actor{StaffID: "N01"}}, reject: workflows.RejectClosed},
		{name: "empty note", update: workflows.IncidentUpdateNote, req: tr("N01", "staff", "   "), reject: workflows.RejectInvalid},
		{name: "acknowledge twice", setup: []func(h *harness){func(h *harness) {
			h.update(5*time.Second, "first", workflows.IncidentUpdateAcknowledge, tr("N01", "staff", ""))
		}}, update: workflows.IncidentUpdateAcknowledge, req: tr("N01", "staff", ""), reject: workflows.RejectIllegal, message: "ACKNOWLEDGED"},
		{name: "claim an acknowledged incident without charge", setup: []func(h *harness){func(h *harness) {
			h.update(5*time.Second, "first", workflows.IncidentUpdateAcknowledge, tr("N01", "staff", ""))
		}}, update: workflows.IncidentUpdateClaim, req: tr("N02", "staff", ""), reject: workflows.RejectForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			for _, s := range tt.setup {
				s(h)
			}
			h.update(10*time.Second, "under-test", tt.update, tt.req)
			h.update(20*time.Second, "cleanup", workflows.IncidentUpdateResolve, tr("C01", "charge", resolution))
			h.run(input())
			require.NoError(t, h.env.GetWorkflowError())
			err := h.results["under-test"]
			require.Error(t, err)
			require.Equal(t, tt.reject, rejectType(err), err.Error())
			require.Contains(t, err.Error(), tt.message)
			require.NoError(t, h.results["cleanup"], "a charge nurse may resolve from any open state")
		})
	}
}

func TestIncident_EscalatesStepByStepUntilAcknowledged(t *testing.T) {
	h := newHarness(t)
	// Nobody acknowledges for 9 minutes: step 1 at 2 min pages the next
	// nurse, step 2 at 7 min pages the failsafe; the charge nurse acks.
	h.update(9*time.Minute, "ack", workflows.IncidentUpdateAcknowledge, tr("C01", "staff", ""))
	h.update(20*time.Minute, "resolve", workflows.IncidentUpdateResolve, tr("C01", "staff", resolution))
	h.run(input())
	require.NoError(t, h.env.GetWorkflowError())
	require.NoError(t, h.results["ack"], "a paged responder may acknowledge")
	require.Equal(t, []string{
		"assign@N01+0s",
		"escalation-1@N02+2m0s",
		"escalation-2@C01+7m0s",
		// acknowledged at 9 min, not started: a start reminder every 5 min
		"reminder-1@C01+14m0s",
		"reminder-2@C01+19m0s",
	}, h.pageSteps())
	require.Contains(t, h.actions(), workflows.ActionEscalated)
	require.Equal(t, []string{"N01"}, h.picks[1].Exclude, "next in role excludes who was already paged")
}

func TestIncident_LastStepRepeatsUntilSomeoneAnswers(t *testing.T) {
	h := newHarness(t)
	h.update(13*time.Minute, "resolve", workflows.IncidentUpdateResolve, tr("C01", "charge", resolution))
	h.run(input())
	require.Equal(t, []string{
		"assign@N01+0s", "escalation-1@N02+2m0s", "escalation-2@C01+7m0s", "escalation-repeat-3@C01+12m0s",
	}, h.pageSteps())
}

func TestIncident_NobodyOnCallPagesFailsafeAndRetries(t *testing.T) {
	h := newHarness(t)
	onShift := false
	h.pick = func(in *activities.PickInput) *activities.PickResult {
		switch {
		case in.FailsafeOnly:
			return &activities.PickResult{Found: true, StaffID: "C01", Role: "CHARGE_NURSE"}
		case onShift:
			return &activities.PickResult{Found: true, StaffID: "N05", Role: "NURSE"}
		default:
			return &activities.PickResult{Found: false, Reason: "nobody on call"}
		}
	}
	h.at(150*time.Second, func() { onShift = true })
	h.update(4*time.Minute, "ack", workflows.IncidentUpdateAcknowledge, tr("N05", "staff", ""))
	h.update(5*time.Minute, "resolve", workflows.IncidentUpdateResolve, tr("N05", "staff", resolution))
	h.run(input())
	require.NoError(t, h.results["ack"])
	require.Equal(t, []string{"failsafe-unassigned@C01+0s", "assign@N05+3m0s"}, h.pageSteps(),
		"the failsafe is paged once, and assignment retries every minute until someone is on shift")
	acts := h.actions()
	require.Equal(t, 1, countOf(acts, workflows.ActionNobodyOnCall))
	require.Contains(t, acts, workflows.ActionAssigned)
}

func TestIncident_FailsafeMayAcknowledgeAnUnassignedIncident(t *testing.T) {
	h := newHarness(t)
	h.pick = func(in *activities.PickInput) *activities.PickResult {
		if in.FailsafeOnly {
			return &activities.PickResult{Found: true, StaffID: "C01", Role: "CHARGE_NURSE"}
		}
		return &activities.PickResult{Found: false}
	}
	h.update(30*time.Second, "ack", workflows.IncidentUpdateAcknowledge, tr("C01", "staff", ""))
	h.update(time.Minute, "resolve", workflows.IncidentUpdateResolve, tr("C01", "staff", resolution))
	h.run(input())
	require.NoError(t, h.results["ack"])
	require.NoError(t, h.results["resolve"])
}

func TestIncident_AutoResolveWaitsForStableOKAndFlappingCancelsIt(t *testing.T) {
	h := newHarness(t)
	h.update(10*time.Second, "ack", workflows.IncidentUpdateAcknowledge, tr("N01", "staff", ""))
	h.update(20*time.Second, "start", workflows.IncidentUpdateStart, tr("N01", "staff", ""))
	signal := func(d time.Duration) {
		h.at(d, func() { h.env.SignalWorkflow(workflows.IncidentSignalSourceResolved, struct{}{}) })
	}
	h.update(time.Millisecond, "first", workflows.IncidentUpdateAlert, &workflows.AlertUpdate{Count: 1})
	signal(time.Minute)                                                                                // OK at 1:00 ...
	h.update(2*time.Minute, "refire", workflows.IncidentUpdateAlert, &workflows.AlertUpdate{Count: 1}) // ... fires again at 2:00
	signal(3 * time.Minute)                                                                            // OK again at 3:00
	h.run(input())
	require.NoError(t, h.env.GetWorkflowError())
	last := h.records[len(h.records)-1].Row
	require.Equal(t, workflows.StatusResolved, last.Status)
	require.Equal(t, t0.Add(5*time.Minute), *last.ResolvedAt, "resolved 2 min after the last OK, not after the first")
	require.Equal(t, "source", last.ResolvedBy)
	acts := h.actions()
	require.NoError(t, h.results["first"])
	require.NoError(t, h.results["refire"])
	require.Equal(t, 2, countOf(acts, workflows.ActionSourceResolved))
	require.Contains(t, acts, workflows.ActionAlertMerged)
	require.Equal(t, workflows.ActionAutoResolved, acts[len(acts)-1])
}

func TestIncident_AlertsMergeIntoOneIncident(t *testing.T) {
	h := newHarness(t)
	var first, second workflows.AlertResult
	h.at(time.Millisecond, func() {
		h.env.UpdateWorkflow(workflows.IncidentUpdateAlert, "a1", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Error(err) },
			OnComplete: func(v any, err error) { require.NoError(t, err); first = *v.(*workflows.AlertResult) },
		}, &workflows.AlertUpdate{Count: 1})
	})
	h.at(time.Second, func() {
		h.env.UpdateWorkflow(workflows.IncidentUpdateAlert, "a2", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Error(err) },
			OnComplete: func(v any, err error) { require.NoError(t, err); second = *v.(*workflows.AlertResult) },
		}, &workflows.AlertUpdate{Count: 25})
	})
	h.update(time.Minute, "resolve", workflows.IncidentUpdateResolve, tr("C01", "charge", resolution))
	h.run(input())
	require.True(t, first.Created)
	require.False(t, second.Created)
	require.Equal(t, "inc-1", second.IncidentID)
	require.Equal(t, 26, second.AlertCount, "a coalesced storm counts every alert with one update")
	require.Equal(t, 26, h.records[len(h.records)-1].Row.AlertCount)
}

func TestIncident_ClaimAndReassign(t *testing.T) {
	h := newHarness(t)
	h.update(10*time.Second, "claim", workflows.IncidentUpdateClaim, tr("N07", "staff", ""))
	h.update(20*time.Second, "reassign", workflows.IncidentUpdateReassign, &workflows.TransitionRequest{
		IncidentID: "inc-1", Actor: workflows.Actor{StaffID: "C01", Access: "charge"}, ToStaffID: "N03",
	})
	h.update(30*time.Second, "ack", workflows.IncidentUpdateAcknowledge, tr("N03", "staff", ""))
	h.update(40*time.Second, "resolve", workflows.IncidentUpdateResolve, tr("N03", "staff", resolution))
	h.run(input())
	for _, k := range []string{"claim", "reassign", "ack", "resolve"} {
		require.NoError(t, h.results[k], k)
	}
	require.Equal(t, []string{"assign@N01+0s", "reassign-1@N03+20s"}, h.pageSteps())
	var claimed *activities.IncidentRow
	for i, r := range h.records {
		if len(r.Events) > 0 && r.Events[0].Action == workflows.ActionClaimed {
			claimed = &h.records[i].Row
		}
	}
	require.NotNil(t, claimed)
	require.Equal(t, "N07", *claimed.AssignedTo)
	require.Equal(t, t0.Add(10*time.Second), *claimed.AcknowledgedAt, "a claim records the acknowledgement time")
}

func TestIncident_ContinueAsNewKeepsState(t *testing.T) {
	h := newHarness(t)
	in := input()
	in.ContinueAsNewAfterEvents = 6
	h.update(10*time.Second, "note1", workflows.IncidentUpdateNote, tr("N01", "staff", "one"))
	h.update(20*time.Second, "note2", workflows.IncidentUpdateNote, tr("N01", "staff", "two"))
	h.update(30*time.Second, "ack", workflows.IncidentUpdateAcknowledge, tr("N01", "staff", ""))
	h.run(in)
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, h.env.GetWorkflowError(), &can)

	// Run the next generation from the carried input: it picks up where the
	// first left off without reloading its plan or re-paging.
	var next workflows.IncidentInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.NotNil(t, next.Carry)
	require.Equal(t, workflows.StatusAcknowledged, next.Carry.Status)
	require.Equal(t, "N01", next.Carry.AssignedTo)
	require.Equal(t, criticalPlan.PolicyID, next.Carry.Plan.PolicyID)

	h2 := newHarness(t)
	next.ContinueAsNewAfterEvents = 0
	h2.update(time.Minute, "resolve", workflows.IncidentUpdateResolve, tr("N01", "staff", resolution))
	h2.run(&next)
	require.NoError(t, h2.env.GetWorkflowError())
	require.NoError(t, h2.results["resolve"])
	require.Empty(t, h2.pages, "no page is repeated after continue-as-new")
	require.Greater(t, h2.records[0].Events[0].Seq, 6, "audit sequence continues")
}

func TestPlanEscalation(t *testing.T) {
	steps := []workflows.EscalationStep{
		{Wait: 2 * time.Minute, Target: workflows.TargetNextInRole},
		{Wait: 5 * time.Minute, Target: workflows.TargetRole, Role: "EMERGENCY_DOCTOR"},
		{Wait: 5 * time.Minute, Target: workflows.TargetFailsafe},
	}
	due := t0.Add(2 * time.Minute)
	tests := []struct {
		name    string
		next    int
		now     time.Time
		fire    int
		skipped int
		delayed bool
	}{
		{"on time fires the due step", 0, due, 0, 0, false},
		{"within the grace fires the due step", 0, due.Add(59 * time.Second), 0, 0, false},
		{"late but no other step overdue", 0, due.Add(3 * time.Minute), 0, 0, true},
		{"late past the next step: one consolidated page", 0, due.Add(6 * time.Minute), 1, 1, true},
		{"down for an hour: only the last step", 0, due.Add(time.Hour), 2, 2, true},
		{"past the last step repeats it", 3, due, 2, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fire, skipped, delayed := workflows.PlanEscalation(steps, tt.next, due, tt.now)
			require.Equal(t, tt.fire, fire)
			require.Equal(t, tt.skipped, skipped)
			require.Equal(t, tt.delayed, delayed)
		})
	}
}

func countOf(xs []string, x string) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

func TestIncident_LateTimerSendsOneDelayedPage(t *testing.T) {
	// The assignment page takes 10 minutes, as if the worker had been down:
	// when the incident resumes, step 1 (due at 2 min) and step 2 (due at
	// 7 min) are both overdue. One page marked delayed goes to step 2's
	// target (the failsafe) instead of a burst of two stale pages.
	h := newHarnessWith(t, 10*time.Minute)
	h.update(30*time.Minute, "resolve", workflows.IncidentUpdateResolve, tr("C01", "charge", resolution))
	h.run(input())
	require.NoError(t, h.env.GetWorkflowError())
	steps := h.pageSteps()
	require.GreaterOrEqual(t, len(steps), 2)
	require.Equal(t, "delayed-2@C01+10m0s", steps[1], "one consolidated page for the latest overdue step, named after it: %v", steps)
	var delayed map[string]string
	for _, r := range h.records {
		for _, e := range r.Events {
			if e.Action == workflows.ActionDelayedPage {
				delayed = e.Detail
			}
		}
	}
	require.Equal(t, "1", delayed["skipped_steps"])
	require.Equal(t, "2", delayed["paging_step"])
	// After the delayed page, the schedule resumes from now: the last step
	// repeats 5 minutes later.
	require.Equal(t, "escalation-repeat-3@C01+15m0s", steps[2])
}

// sourceAck is a source acknowledgement from integration.
func sourceAck(integration string) *workflows.TransitionRequest {
	return &workflows.TransitionRequest{IncidentID: "inc-1", Actor: workflows.Actor{
		Access: workflows.AccessSource, Source: "apikey:sender", Integration: integration,
	}}
}

func TestIncident_SourceActionsAnswerOnlyToTheOwningIntegration(t *testing.T) {
	h := newHarness(t)
	in := input()
	in.Integration = "apikey:1"
	h.update(10*time.Second, "other", workflows.IncidentUpdateAcknowledge, sourceAck("apikey:2"))
	h.update(11*time.Second, "staff", workflows.IncidentUpdateAcknowledge, sourceAck(workflows.IntegrationStaff))
	h.update(12*time.Second, "none", workflows.IncidentUpdateAcknowledge, sourceAck(""))
	var afterRefusal workflows.IncidentState
	h.at(20*time.Second, func() {
		h.env.SignalWorkflow(workflows.IncidentSignalSourceResolved, &workflows.SourceResolvedSignal{Integration: "apikey:2", Source: "apikey:other"})
	})
	h.at(21*time.Second, func() {
		h.env.SignalWorkflow(workflows.IncidentSignalSourceResolved, &workflows.SourceResolvedSignal{Integration: workflows.IntegrationStaff, Source: "staff:N05"})
	})
	h.at(25*time.Second, func() { afterRefusal = h.state() })
	h.update(30*time.Second, "owner", workflows.IncidentUpdateAcknowledge, sourceAck("apikey:1"))
	h.at(40*time.Second, func() {
		h.env.SignalWorkflow(workflows.IncidentSignalSourceResolved, &workflows.SourceResolvedSignal{Integration: "apikey:1", Source: "apikey:sender"})
	})
	h.run(in)
	require.NoError(t, h.env.GetWorkflowError())

	for _, k := range []string{"other", "staff", "none"} {
		require.Error(t, h.results[k], k)
		require.Equal(t, workflows.RejectForbidden, rejectType(h.results[k]), "%s: %v", k, h.results[k])
	}
	require.Contains(t, h.results["other"].Error(), "another integration")
	require.Contains(t, h.results["staff"].Error(), "staff routes")

	// The refused signals changed nothing: still escalating, no OK wait.
	require.Equal(t, workflows.StatusAssigned, afterRefusal.Status)
	require.True(t, afterRefusal.AcknowledgedAt.IsZero())
	require.True(t, afterRefusal.SourceOKSince.IsZero())
	require.True(t, afterRefusal.ResolvedAt.IsZero())

	// ... and are in the timeline with their reason.
	var refused []activities.AuditEvent
	for _, r := range h.records {
		for _, e := range r.Events {
			if e.Action == workflows.ActionSourceRefused {
				refused = append(refused, e)
			}
		}
	}
	require.Len(t, refused, 2)
	require.Equal(t, "apikey:other", refused[0].ActorID)
	require.Equal(t, "source", refused[0].ActorType)
	require.Equal(t, workflows.StatusAssigned, refused[0].FromStatus)
	require.Equal(t, workflows.StatusAssigned, refused[0].ToStatus)
	require.Equal(t, map[string]string{
		"action": workflows.IncidentSignalSourceResolved, "integration": "apikey:2", "reason": "the incident belongs to another integration",
	}, refused[0].Detail)
	require.Equal(t, workflows.IntegrationStaff, refused[1].Detail["integration"])
	require.Contains(t, refused[1].Detail["reason"], "staff routes")

	// The owner still acknowledges and resolves (PagerDuty semantics kept).
	require.NoError(t, h.results["owner"])
	last := h.records[len(h.records)-1].Row
	require.Equal(t, workflows.StatusResolved, last.Status)
	require.Equal(t, "source", last.ResolvedBy)
	require.Equal(t, t0.Add(30*time.Second), *last.AcknowledgedAt)
	require.Equal(t, t0.Add(40*time.Second+workflows.DefaultStableOKWait), *last.ResolvedAt)
	require.Equal(t, "apikey:1", last.Integration)
	acts := h.actions()
	require.Equal(t, 1, countOf(acts, workflows.ActionSourceResolved))
	require.Equal(t, workflows.ActionAutoResolved, acts[len(acts)-1])
}

func TestIncident_RunsWithoutAnOwnerAcceptAnySourceAsBefore(t *testing.T) {
	h := newHarness(t)
	h.update(10*time.Second, "ack", workflows.IncidentUpdateAcknowledge, sourceAck("apikey:2"))
	h.at(20*time.Second, func() {
		h.env.SignalWorkflow(workflows.IncidentSignalSourceResolved, &workflows.SourceResolvedSignal{Integration: "apikey:3"})
	})
	h.run(input()) // no Integration: a run started before integrations were scoped
	require.NoError(t, h.env.GetWorkflowError())
	require.NoError(t, h.results["ack"])
	last := h.records[len(h.records)-1].Row
	require.Equal(t, workflows.StatusResolved, last.Status)
	require.Equal(t, "source", last.ResolvedBy)
	require.Equal(t, "k1", last.UnscopedKeyHash, "before scoping, the key hash was unscoped")
	require.NotContains(t, h.actions(), workflows.ActionSourceRefused)
}

// alert sends an alert update at offset d; its answer lands in *out.
func (h *harness) alert(d time.Duration, id string, u *workflows.AlertUpdate, out *workflows.AlertResult) {
	h.at(d, func() {
		h.env.UpdateWorkflow(workflows.IncidentUpdateAlert, id, &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { h.results[id] = err },
			OnComplete: func(v any, err error) {
				h.results[id] = err
				if err == nil {
					*out = *v.(*workflows.AlertResult)
				}
			},
		}, u)
	})
}

func TestIncident_MergedAlertAnswersBeforeItsProjection(t *testing.T) {
	// The Record of the merge waits (up to 5 s of real time) for the
	// merge's answer: the answer must not wait for the projection, as it
	// did when a slow Postgres made the API time out and answer 500.
	h := newHarness(t)
	answered := make(chan struct{})
	var answeredFirst atomic.Bool
	h.onRecord = func(in *activities.RecordInput) {
		for _, e := range in.Events {
			if e.Action == workflows.ActionAlertMerged {
				select {
				case <-answered:
					answeredFirst.Store(true)
				case <-time.After(5 * time.Second):
				}
			}
		}
	}
	var first, merged workflows.AlertResult
	h.alert(time.Millisecond, "a1", &workflows.AlertUpdate{Count: 1}, &first)
	h.at(time.Second, func() {
		h.env.UpdateWorkflow(workflows.IncidentUpdateAlert, "a2", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Error(err) },
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				merged = *v.(*workflows.AlertResult)
				close(answered)
			},
		}, &workflows.AlertUpdate{Count: 2})
	})
	h.update(time.Minute, "resolve", workflows.IncidentUpdateResolve, tr("C01", "charge", resolution))
	h.run(input())
	require.NoError(t, h.env.GetWorkflowError())
	require.True(t, answeredFirst.Load(), "the merge answered while its projection was still being written")
	require.Equal(t, 3, merged.AlertCount)
	require.Equal(t, 1, countOf(h.actions(), workflows.ActionAlertMerged), "the projection still follows")
	var mergedRow *activities.IncidentRow
	for i, r := range h.records {
		if len(r.Events) > 0 && r.Events[0].Action == workflows.ActionAlertMerged {
			mergedRow = &h.records[i].Row
		}
	}
	require.NotNil(t, mergedRow)
	require.Equal(t, 3, mergedRow.AlertCount)
	require.Equal(t, workflows.StatusResolved, h.records[len(h.records)-1].Row.Status, "the run closed after its last projection")
}

func TestIncident_RepeatedIdempotencyKeysCountOnce(t *testing.T) {
	k := func(s string) string { return workflows.IdempotencyKeyHash("apikey:1", s) }
	many := make([]string, workflows.MaxRememberedAlertKeys+1)
	for i := range many {
		many[i] = k("bulk-" + strconv.Itoa(i))
	}
	tests := []struct {
		name    string
		update  *workflows.AlertUpdate
		dups    []int
		total   int
		created bool
	}{
		{"the first alert opens the incident", &workflows.AlertUpdate{Count: 1, IdempotencyKeys: []string{k("a")}}, nil, 1, true},
		{"a retry is not counted", &workflows.AlertUpdate{Count: 1, IdempotencyKeys: []string{k("a")}}, []int{0}, 1, false},
		{"a coalesced batch counts each new key once",
			&workflows.AlertUpdate{Count: 4, IdempotencyKeys: []string{k("b"), k("a"), k("b"), ""}}, []int{1, 2}, 3, false},
		{"alerts without a key always count", &workflows.AlertUpdate{Count: 2}, nil, 5, false},
		{"older senders send fewer keys than alerts", &workflows.AlertUpdate{Count: 3, IdempotencyKeys: []string{k("b")}}, []int{0}, 7, false},
		{"keys past the bound are forgotten", &workflows.AlertUpdate{Count: len(many), IdempotencyKeys: many}, nil, 7 + len(many), false},
		{"the oldest key was forgotten", &workflows.AlertUpdate{Count: 2, IdempotencyKeys: []string{many[0], many[1]}}, []int{1}, 8 + len(many), false},
	}
	h := newHarness(t)
	got := make([]workflows.AlertResult, len(tests))
	for i, tt := range tests {
		h.alert(time.Duration(i+1)*time.Second, tt.name, tt.update, &got[i])
	}
	var st workflows.IncidentState
	h.at(time.Minute, func() { st = h.state() })
	h.update(2*time.Minute, "resolve", workflows.IncidentUpdateResolve, tr("C01", "charge", resolution))
	h.run(input())
	require.NoError(t, h.env.GetWorkflowError())
	merges := 0
	for i, tt := range tests {
		require.NoError(t, h.results[tt.name], tt.name)
		require.Equal(t, tt.dups, got[i].Duplicates, tt.name)
		require.Equal(t, tt.total, got[i].AlertCount, tt.name)
		require.Equal(t, tt.created, got[i].Created, tt.name)
		if !tt.created && tt.update.Count > len(tt.dups) {
			merges++
		}
	}
	require.Equal(t, merges, countOf(h.actions(), workflows.ActionAlertMerged), "an update of retries only changes nothing")
	require.Len(t, st.AlertKeys, workflows.MaxRememberedAlertKeys)
	require.Equal(t, many[2], st.AlertKeys[0], "oldest first")
	require.Equal(t, many[0], st.AlertKeys[len(st.AlertKeys)-1], "the forgotten key counted again is the latest")
	for _, key := range st.AlertKeys {
		require.Len(t, key, 32, "only hashes are kept")
	}
}

func TestIncident_IdempotencyKeysSurviveContinueAsNew(t *testing.T) {
	key := workflows.IdempotencyKeyHash("apikey:1", "alert-7")
	h := newHarness(t)
	in := input()
	in.ContinueAsNewAfterEvents = 4
	var first workflows.AlertResult
	h.alert(time.Second, "a1", &workflows.AlertUpdate{Count: 1, IdempotencyKeys: []string{key}}, &first)
	h.update(10*time.Second, "note", workflows.IncidentUpdateNote, tr("N01", "staff", "one"))
	h.run(in)
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, h.env.GetWorkflowError(), &can)
	var next workflows.IncidentInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Equal(t, []string{key}, next.Carry.AlertKeys)

	h2 := newHarness(t)
	next.ContinueAsNewAfterEvents = 0
	var retry workflows.AlertResult
	h2.alert(time.Second, "retry", &workflows.AlertUpdate{Count: 1, IdempotencyKeys: []string{key}}, &retry)
	h2.update(time.Minute, "resolve", workflows.IncidentUpdateResolve, tr("C01", "charge", resolution))
	h2.run(&next)
	require.NoError(t, h2.env.GetWorkflowError())
	require.NoError(t, h2.results["retry"])
	require.Equal(t, []int{0}, retry.Duplicates)
	require.Equal(t, 1, retry.AlertCount)
}

func TestIncident_AlertValidatorRefusesMalformedKeys(t *testing.T) {
	tests := []struct {
		name   string
		update *workflows.AlertUpdate
	}{
		{"more keys than alerts", &workflows.AlertUpdate{Count: 1, IdempotencyKeys: []string{"a", "b"}}},
		{"a key that is not a hash", &workflows.AlertUpdate{Count: 1, IdempotencyKeys: []string{strings.Repeat("x", 65)}}},
		{"no alerts", &workflows.AlertUpdate{Count: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			var res workflows.AlertResult
			h.alert(time.Second, "bad", tt.update, &res)
			h.update(time.Minute, "resolve", workflows.IncidentUpdateResolve, tr("C01", "charge", resolution))
			h.run(input())
			require.Equal(t, workflows.RejectInvalid, rejectType(h.results["bad"]), "%v", h.results["bad"])
		})
	}
}
