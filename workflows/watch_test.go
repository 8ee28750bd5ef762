package workflows_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/watch"
	"github.com/vigil-health/vigil/internal/watch/directory"
	"github.com/vigil-health/vigil/workflows"
)

func obs(id, capacity string) watch.Observation {
	return watch.Observation{ServiceStatus: watch.ServiceStatus{ServiceID: id, Name: "Svc " + id, Capacity: capacity}, UpdatedBy: "nurse.a"}
}

func TestDecideChanges(t *testing.T) {
	state := func(id, capacity string) workflows.ServiceState {
		return workflows.ServiceState{ServiceStatus: watch.ServiceStatus{ServiceID: id, Name: "Svc " + id, Capacity: capacity}}
	}
	tests := []struct {
		name     string
		prev     []workflows.ServiceState
		obs      []watch.Observation
		recovery int
		kinds    []string
		announce []bool
		after    string // capacity of the first service afterwards
	}{
		{"first sighting is silent", nil, []watch.Observation{obs("1", "HIGH")}, 1, []string{"first_sighting"}, []bool{false}, "HIGH"},
		{"no change says nothing", []workflows.ServiceState{state("1", "LOW")}, []watch.Observation{obs("1", "LOW")}, 1, nil, nil, "LOW"},
		{"HIGH to LOW is announced", []workflows.ServiceState{state("1", "HIGH")}, []watch.Observation{obs("1", "LOW")}, 1, []string{"change"}, []bool{true}, "LOW"},
		{"LOW to NONE is announced", []workflows.ServiceState{state("1", "LOW")}, []watch.Observation{obs("1", "NONE")}, 1, []string{"change"}, []bool{true}, "NONE"},
		{"NONE to HIGH is announced without hysteresis", []workflows.ServiceState{state("1", "NONE")}, []watch.Observation{obs("1", "HIGH")}, 1, []string{"change"}, []bool{true}, "HIGH"},
		{"HIGH to reset is the robot: recorded, silent, stays HIGH", []workflows.ServiceState{state("1", "HIGH")}, []watch.Observation{obs("1", "")}, 1, []string{"robot_reset"}, []bool{false}, "HIGH"},
		{"LOW to reset is a change", []workflows.ServiceState{state("1", "LOW")}, []watch.Observation{obs("1", "")}, 1, []string{"change"}, []bool{true}, ""},
		{"disappearing is reported as NONE", []workflows.ServiceState{state("1", "HIGH")}, nil, 1, []string{"disappeared"}, []bool{true}, "NONE"},
		{"a gone service is reported once", []workflows.ServiceState{state("1", "NONE")}, nil, 1, nil, nil, "NONE"},
		{"a recovery waits for the hysteresis", []workflows.ServiceState{state("1", "NONE")}, []watch.Observation{obs("1", "HIGH")}, 2, nil, nil, "NONE"},
		{"a worsening ignores the hysteresis", []workflows.ServiceState{state("1", "HIGH")}, []watch.Observation{obs("1", "NONE")}, 3, []string{"change"}, []bool{true}, "NONE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, changes := workflows.DecideChanges(tt.prev, tt.obs, tt.recovery)
			var kinds []string
			var announce []bool
			for _, c := range changes {
				kinds = append(kinds, c.Kind)
				announce = append(announce, c.Announce)
			}
			require.Equal(t, tt.kinds, kinds)
			require.Equal(t, tt.announce, announce)
			require.Equal(t, tt.after, next[0].Capacity)
		})
	}

	t.Run("hysteresis announces after K consecutive polls", func(t *testing.T) {
		prev := []workflows.ServiceState{state("1", "NONE")}
		var changes []watch.Change
		for range 2 {
			prev, changes = workflows.DecideChanges(prev, []watch.Observation{obs("1", "HIGH")}, 3)
			require.Empty(t, changes)
		}
		prev, changes = workflows.DecideChanges(prev, []watch.Observation{obs("1", "HIGH")}, 3)
		require.Len(t, changes, 1)
		require.Equal(t, "HIGH", prev[0].Capacity)
	})
	t.Run("a flap resets the hysteresis streak", func(t *testing.T) {
		prev := []workflows.ServiceState{state("1", "NONE")}
		prev, _ = workflows.DecideChanges(prev, []watch.Observation{obs("1", "HIGH")}, 2)
		prev, _ = workflows.DecideChanges(prev, []watch.Observation{obs("1", "NONE")}, 2)
		_, changes := workflows.DecideChanges(prev, []watch.Observation{obs("1", "HIGH")}, 2)
		require.Empty(t, changes, "the streak started again")
	})
}

// watchHarness runs the watch workflow with a scripted directory.
type watchHarness struct {
	mu       sync.Mutex // activities run concurrently
	t        *testing.T
	env      *testsuite.TestWorkflowEnvironment
	answers  []func() ([]watch.Observation, error)
	polls    int
	recorded []activities.RecordChangesInput
	notified []watch.Change
	// operated are the accepted operator signals, refused the refused ones.
	operated []activities.WatchOperatorStateInput
	refused  []activities.OperatorSignalRecord
	// states are the watch states written to its row, in order.
	states []string
}

func newWatchHarness(t *testing.T) *watchHarness { return newWatchHarnessWith(t, 0) }

// newWatchHarnessWith makes the first poll take firstPoll of workflow time.
func newWatchHarnessWith(t *testing.T, firstPoll time.Duration) *watchHarness {
	return newWatchHarnessSlow(t, firstPoll, 0)
}

// newWatchHarnessSlow makes the first poll take firstPoll and the first
// recording firstRecord of workflow time.
func newWatchHarnessSlow(t *testing.T, firstPoll, firstRecord time.Duration) *watchHarness {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	h := &watchHarness{t: t, env: s.NewTestWorkflowEnvironment()}
	h.env.SetStartTime(t0)
	h.env.SetTestTimeout(30 * time.Second)
	var a *activities.Watches
	h.env.RegisterActivity(a)
	poll := func(context.Context, *activities.PollInput) (*activities.PollResult, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		i := min(h.polls, len(h.answers)-1)
		h.polls++
		o, err := h.answers[i]()
		if err != nil {
			return nil, err
		}
		return &activities.PollResult{Observations: o, PolledAt: h.env.Now()}, nil
	}
	if firstPoll > 0 {
		h.env.OnActivity(a.Poll, mock.Anything, mock.Anything).Return(poll).After(firstPoll).Once()
	}
	h.env.OnActivity(a.Poll, mock.Anything, mock.Anything).Return(poll)
	record := func(_ context.Context, in *activities.RecordChangesInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.recorded = append(h.recorded, *in)
		h.states = append(h.states, "poll:"+in.State)
		return nil
	}
	if firstRecord > 0 {
		h.env.OnActivity(a.RecordChanges, mock.Anything, mock.Anything).Return(record).After(firstRecord).Once()
	}
	h.env.OnActivity(a.RecordChanges, mock.Anything, mock.Anything).Return(record)
	h.env.OnActivity(a.NotifyChange, mock.Anything, mock.Anything).Return(func(_ context.Context, in *activities.NotifyChangeInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.notified = append(h.notified, in.Change)
		return nil
	})
	h.env.OnActivity(a.RecordWatchOperatorState, mock.Anything, mock.Anything).Return(func(_ context.Context, in *activities.WatchOperatorStateInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.operated = append(h.operated, *in)
		h.states = append(h.states, "signal:"+in.State)
		return nil
	})
	var ops *activities.Operators
	h.env.RegisterActivity(ops)
	h.env.OnActivity(ops.RecordOperatorSignal, mock.Anything, mock.Anything).Return(func(_ context.Context, in *activities.OperatorSignalRecord) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.refused = append(h.refused, *in)
		return nil
	})
	return h
}

func (h *watchHarness) script(answers ...func() ([]watch.Observation, error)) {
	h.answers = answers
}

func see(pairs ...string) func() ([]watch.Observation, error) {
	return func() ([]watch.Observation, error) {
		var out []watch.Observation
		for i := 0; i+1 < len(pairs); i += 2 {
			out = append(out, watch.Observation{ServiceStatus: watch.ServiceStatus{ServiceID: pairs[i], Name: "Svc " + pairs[i], Region: "North", Capacity: pairs[i+1]}})
		}
		return out, nil
	}
}

func failing() ([]watch.Observation, error) { return nil, errors.New("directory unavailable") }

func watchInput() *workflows.WatchInput {
	return &workflows.WatchInput{WatchID: "w1", Config: workflows.WatchConfig{
		Kind: workflows.WatchKindSearch, Description: "Leeds EDs", Interval: 5 * time.Minute, RecoveryPolls: 1,
		Search:       directory.SearchQuery{Postcode: "LS1 4AP", DistanceMiles: 10, ServiceTypes: []string{"40"}, ResultsLimit: 10},
		SlackChannel: "C1", SMSNumbers: []string{"+447700900001"},
	}}
}

func (h *watchHarness) stopAt(d time.Duration) {
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(workflows.WatchUpdateStop, "stop", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { h.t.Error(err) }, OnComplete: func(any, error) {},
		})
	}, d)
}

func (h *watchHarness) kindsNotified() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, c := range h.notified {
		out = append(out, c.Kind+":"+c.ServiceID+":"+c.Previous+">"+c.Capacity)
	}
	return out
}

func TestWatch_PollsDecidesAndAnnounces(t *testing.T) {
	h := newWatchHarness(t)
	h.script(
		see("1", "HIGH", "2", "HIGH"), // first sighting: silent
		see("1", "LOW", "2", "HIGH"),  // 1 worsens
		see("1", "LOW", "2", ""),      // 2: robot reset, silent
		see("1", "NONE"),              // 1 worsens, 2 disappears
		see("1", "HIGH"),              // 1 recovers
	)
	h.stopAt(4*5*time.Minute + 4*30*time.Second + time.Minute) // after the fifth poll, jitter included
	h.env.ExecuteWorkflow(workflows.Watch, watchInput())
	require.True(t, h.env.IsWorkflowCompleted())
	require.NoError(t, h.env.GetWorkflowError())
	require.Equal(t, 5, h.polls)
	require.ElementsMatch(t, []string{"change:1:HIGH>LOW", "change:1:LOW>NONE", "disappeared:2:HIGH>NONE", "change:1:NONE>HIGH"}, h.kindsNotified())
	var silent []string
	for _, r := range h.recorded {
		for _, c := range r.Changes {
			if c.Kind == watch.ChangeFirstSighting || c.Kind == watch.ChangeRobotReset {
				silent = append(silent, c.Kind+":"+c.ServiceID)
			}
		}
	}
	require.Equal(t, []string{"first_sighting:1", "first_sighting:2", "robot_reset:2"}, silent, "recorded but not announced")
}

func TestWatch_DegradedSourceIsAnnouncedOnceAndNeverRed(t *testing.T) {
	h := newWatchHarness(t)
	h.script(see("1", "HIGH"), failing, failing, failing, see("1", "HIGH"))
	h.stopAt(26 * time.Minute)
	h.env.ExecuteWorkflow(workflows.Watch, watchInput())
	require.NoError(t, h.env.GetWorkflowError())
	require.Equal(t, []string{"degraded:-:>"}, h.kindsNotified(), "one degraded notice, no RED for the service")
	var states []string // transitions: consecutive repeats folded
	for _, r := range h.recorded {
		if len(states) == 0 || states[len(states)-1] != r.State {
			states = append(states, r.State)
		}
	}
	require.Equal(t, []string{"active", "degraded", "active"}, states)
}

func TestWatch_PauseResumeAndReconfigure(t *testing.T) {
	h := newWatchHarness(t)
	h.script(see("1", "HIGH"))
	update := func(d time.Duration, name string, arg any, check func(error)) {
		h.env.RegisterDelayedCallback(func() {
			cb := &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: check, OnComplete: func(_ any, err error) { check(err) }}
			if arg == nil {
				h.env.UpdateWorkflow(name, name+d.String(), cb)
				return
			}
			h.env.UpdateWorkflow(name, name+d.String(), cb, arg)
		}, d)
	}
	ok := func(err error) { require.NoError(t, err) }
	update(time.Minute, workflows.WatchUpdatePause, nil, ok)
	update(2*time.Minute, workflows.WatchUpdatePause, nil, func(err error) { require.ErrorContains(t, err, "already paused") })
	var pollsWhilePaused int
	h.env.RegisterDelayedCallback(func() {
		h.mu.Lock()
		pollsWhilePaused = h.polls
		h.mu.Unlock()
	}, 40*time.Minute)
	update(41*time.Minute, workflows.WatchUpdateResume, nil, ok)
	cfg := watchInput().Config
	cfg.Interval = 30 * time.Second
	update(42*time.Minute, workflows.WatchUpdateConfigure, cfg, func(err error) { require.ErrorContains(t, err, "at least 1m0s") })
	cfg.Interval = 2 * time.Minute
	update(43*time.Minute, workflows.WatchUpdateConfigure, cfg, ok)
	h.stopAt(60 * time.Minute)
	h.env.ExecuteWorkflow(workflows.Watch, watchInput())
	require.NoError(t, h.env.GetWorkflowError())
	require.Equal(t, 1, pollsWhilePaused, "no polls while paused")
	require.GreaterOrEqual(t, h.polls, 1+1+7, "resumed at once, then every 2 minutes")
}

func TestWatch_ContinueAsNewKeepsState(t *testing.T) {
	h := newWatchHarness(t)
	h.script(see("1", "LOW"), see("1", "LOW"))
	in := watchInput()
	in.ContinueAsNewAfterPolls = 2
	h.env.ExecuteWorkflow(workflows.Watch, in)
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, h.env.GetWorkflowError(), &can)
	var next workflows.WatchInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.NotNil(t, next.Carry)
	require.Equal(t, "LOW", next.Carry.Services[0].Capacity)

	// The next run knows service 1 already: LOW -> NONE is a change, not a
	// first sighting.
	h2 := newWatchHarness(t)
	h2.script(see("1", "NONE"))
	h2.stopAt(time.Minute)
	next.ContinueAsNewAfterPolls = 0
	h2.env.ExecuteWorkflow(workflows.Watch, &next)
	require.NoError(t, h2.env.GetWorkflowError())
	require.Equal(t, []string{"change:1:LOW>NONE"}, h2.kindsNotified())
}

func TestWatch_StopDuringAPollEndsAtOnce(t *testing.T) {
	// The stop lands while the first poll is still running (the poll takes
	// a minute of workflow time); the watch must end then, not after the
	// 5-minute interval.
	h := newWatchHarnessWith(t, time.Minute)
	h.script(see("1", "HIGH"))
	h.stopAt(30 * time.Second)
	h.env.ExecuteWorkflow(workflows.Watch, watchInput())
	require.NoError(t, h.env.GetWorkflowError())
	require.Less(t, h.env.Now().Sub(t0), 2*time.Minute)
}

func TestWatch_ResumeDuringAPollPollsAgainAtOnce(t *testing.T) {
	// Pause and resume both land while the first poll is running (it takes
	// a minute): the resume must still poll at once when that poll ends,
	// not after the 5-minute interval.
	h := newWatchHarnessWith(t, time.Minute)
	h.script(see("1", "HIGH"), see("1", "LOW"))
	noop := func(error) {}
	for _, u := range []struct {
		at   time.Duration
		name string
	}{{10 * time.Second, workflows.WatchUpdatePause}, {20 * time.Second, workflows.WatchUpdateResume}} {
		h.env.RegisterDelayedCallback(func() {
			h.env.UpdateWorkflow(u.name, u.name, &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: noop, OnComplete: func(any, error) {}})
		}, u.at)
	}
	var pollsBy2Min int
	h.env.RegisterDelayedCallback(func() {
		h.mu.Lock()
		pollsBy2Min = h.polls
		h.mu.Unlock()
	}, 2*time.Minute)
	h.stopAt(3 * time.Minute)
	h.env.ExecuteWorkflow(workflows.Watch, watchInput())
	require.NoError(t, h.env.GetWorkflowError())
	require.Equal(t, 2, pollsBy2Min, "the resume polled right after the running poll")
	require.Equal(t, []string{"change:1:HIGH>LOW"}, h.kindsNotified())
}

// workflowMetadata is what the Web UI shows of a run: its current details
// and its handlers with their descriptions.
func workflowMetadata(t *testing.T, env *testsuite.TestWorkflowEnvironment) *sdkpb.WorkflowMetadata {
	t.Helper()
	v, err := env.QueryWorkflow("__temporal_workflow_metadata")
	require.NoError(t, err)
	md := &sdkpb.WorkflowMetadata{}
	require.NoError(t, v.Get(md))
	return md
}

// handlerDescriptions maps "signal:pause", "update:stop", "query:statuses"
// and so on to their descriptions (the SDK's own queries left out).
func handlerDescriptions(md *sdkpb.WorkflowMetadata) map[string]string {
	out := map[string]string{}
	d := md.GetDefinition()
	for _, s := range d.GetSignalDefinitions() {
		out["signal:"+s.GetName()] = s.GetDescription()
	}
	for _, u := range d.GetUpdateDefinitions() {
		out["update:"+u.GetName()] = u.GetDescription()
	}
	for _, q := range d.GetQueryDefinitions() {
		if !strings.HasPrefix(q.GetName(), "__") {
			out["query:"+q.GetName()] = q.GetDescription()
		}
	}
	return out
}

func TestWatch_OperatorSignalsPauseAndResumeOrAreRefused(t *testing.T) {
	h := newWatchHarness(t)
	h.script(see("1", "HIGH", "2", "LOW"), see("1", "LOW", "2", "LOW"))
	var states []string
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		if v, ok := args.Get(0).(temporal.SearchAttributes).GetKeyword(workflows.WatchStateKey); ok {
			if len(states) == 0 || states[len(states)-1] != v {
				states = append(states, v)
			}
		}
	}).Return(nil)
	signal := func(at time.Duration, name string, payload any) {
		h.env.RegisterDelayedCallback(func() { h.env.SignalWorkflow(name, payload) }, at)
	}
	signal(time.Minute, workflows.WatchSignalPause, workflows.OperatorSignal{Operator: "alice", Reason: "directory maintenance"})
	signal(2*time.Minute, workflows.WatchSignalPause, map[string]string{"operator": "bob"})
	signal(3*time.Minute, workflows.WatchSignalResume, "alice")
	signal(4*time.Minute, workflows.WatchSignalResume, map[string]string{"operator": "alice smith"})
	signal(5*time.Minute, workflows.WatchSignalResume, map[string]string{"operator": strings.Repeat("a", 65)})
	signal(6*time.Minute, workflows.WatchSignalResume, map[string]string{"reason": "nobody"})
	signal(7*time.Minute, workflows.WatchSignalResume, map[string]string{"operator": "carol", "reason": "bad\x00text"})
	signal(8*time.Minute, workflows.WatchSignalResume, map[string]string{"operator": "alice", "extra": "x"})
	var paused, pollsWhilePaused int
	var details string
	var handlers map[string]string
	h.env.RegisterDelayedCallback(func() {
		h.mu.Lock()
		pollsWhilePaused = h.polls
		h.mu.Unlock()
		var st workflows.WatchState
		v, err := h.env.QueryWorkflow(workflows.WatchQueryStatuses)
		require.NoError(t, err)
		require.NoError(t, v.Get(&st))
		if st.Paused {
			paused++
		}
		md := workflowMetadata(t, h.env)
		details, handlers = md.GetCurrentDetails(), handlerDescriptions(md)
	}, 9*time.Minute)
	signal(10*time.Minute, workflows.WatchSignalResume, map[string]string{"operator": "ops.team_1@vigil-health"})
	var pollsAfterResume int
	h.env.RegisterDelayedCallback(func() {
		h.mu.Lock()
		pollsAfterResume = h.polls
		h.mu.Unlock()
	}, 11*time.Minute)
	h.stopAt(12 * time.Minute)
	h.env.ExecuteWorkflow(workflows.Watch, watchInput())
	require.NoError(t, h.env.GetWorkflowError())

	require.Equal(t, 1, paused, "the pause signal paused the watch")
	require.Equal(t, 1, pollsWhilePaused, "no polls while paused")
	require.Equal(t, 2, pollsAfterResume, "the resume signal polled at once")

	require.Len(t, h.operated, 2)
	pause, resume := h.operated[0], h.operated[1]
	require.Equal(t, "w1", pause.WatchID)
	require.Equal(t, workflows.WatchPaused, pause.State)
	require.Equal(t, "operator:alice", pause.Signal.Actor)
	require.Equal(t, "directory maintenance", pause.Signal.Reason)
	require.Equal(t, activities.OperatorSignalAccepted, pause.Signal.Outcome)
	require.Equal(t, workflows.WatchSignalPause, pause.Signal.Signal)
	require.Equal(t, "watch", pause.Signal.Kind)
	require.Equal(t, workflows.WatchActive, resume.State)
	require.Equal(t, "operator:ops.team_1@vigil-health", resume.Signal.Actor)
	require.NotEqual(t, pause.Signal.EventKey, resume.Signal.EventKey)

	type refusal struct{ signal, actor, why string }
	var refusals []refusal
	for _, r := range h.refused {
		require.Equal(t, activities.OperatorSignalRefused, r.Outcome)
		require.Equal(t, "w1", r.SubjectID)
		refusals = append(refusals, refusal{r.Signal, r.Actor, r.Refusal})
	}
	require.Equal(t, []refusal{
		{"pause", "operator:bob", "the watch is already paused"},
		{"resume", "", `the payload must be a JSON object {"operator":"<name>","reason":"<text>"}`},
		{"resume", "", "the operator name must be 1 to 64 letters, digits or . - _ @"},
		{"resume", "", "the operator name must be 1 to 64 letters, digits or . - _ @"},
		{"resume", "", `the payload names no operator: send {"operator":"<name>","reason":"<text>"}`},
		{"resume", "operator:carol", "the reason must be at most 500 characters of text without control characters"},
		{"resume", "", `the payload must be a JSON object {"operator":"<name>","reason":"<text>"}`},
	}, refusals)

	require.Contains(t, details, "Watch · EDs within 10 miles of LS1 4AP · every 5m")
	require.Contains(t, details, "State: paused · last paused or resumed by operator:alice at 2026-")
	require.Contains(t, details, "Services: 2 (1 HIGH, 1 LOW)")
	require.Contains(t, details, "Last operator signal: paused by operator:alice at")
	require.Contains(t, details, "Last refused signal: resume from an unnamed operator at")
	require.NotContains(t, details, "directory maintenance", "free text stays out of the details")
	for _, name := range []string{"signal:pause", "signal:resume", "update:pause", "update:resume", "update:configure", "update:stop", "query:statuses"} {
		require.NotEmpty(t, handlers[name], name)
	}
	require.Equal(t, []string{workflows.WatchActive, workflows.WatchPaused, workflows.WatchActive, workflows.WatchDeleted}, states,
		"WatchState follows the signals and ends deleted")
}

func TestWatch_DetailsShowPollsAndLastChange(t *testing.T) {
	h := newWatchHarness(t)
	h.script(see("1", "HIGH", "2", "HIGH"), see("1", "LOW", "2", "HIGH"))
	var details string
	h.env.RegisterDelayedCallback(func() { details = workflowMetadata(t, h.env).GetCurrentDetails() }, 7*time.Minute)
	h.stopAt(8 * time.Minute)
	h.env.ExecuteWorkflow(workflows.Watch, watchInput())
	require.NoError(t, h.env.GetWorkflowError())
	require.Contains(t, details, "State: active")
	require.Contains(t, details, "(poll 2)")
	require.Contains(t, details, "Services: 2 (1 HIGH, 1 LOW)")
	require.Contains(t, details, "Last change: 2026-")
	require.Contains(t, details, "Svc 1 (1) HIGH → LOW")
}

func TestWatchSummaryAndDetails(t *testing.T) {
	cfg := watchInput().Config
	require.Equal(t, "Watch · EDs within 10 miles of LS1 4AP", workflows.WatchSummary(cfg))
	cfg.Search.ServiceTypes = []string{"100", "28"}
	require.Equal(t, "Watch · UTCs, GP access hubs within 10 miles of LS1 4AP", workflows.WatchSummary(cfg))
	d := workflows.WatchDetails("w1", "c01", cfg)
	require.Contains(t, d, "every 5m")
	require.Contains(t, d, "Slack C1 and 1 SMS number(s)")
	require.Contains(t, d, "Created by: c01")
	require.NotContains(t, d, "+447700900001", "phone numbers stay out")
	svc := workflows.WatchConfig{Kind: workflows.WatchKindService, ServiceID: "2000001", Interval: time.Minute}
	require.Equal(t, "Watch · service 2000001", workflows.WatchSummary(svc))
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                   "0s",
		45 * time.Second:                    "45s",
		5*time.Minute + 12*time.Second:      "5m 12s",
		5 * time.Minute:                     "5m",
		time.Hour + 30*time.Second:          "1h 1m",
		7 * 24 * time.Hour:                  "7d",
		7*24*time.Hour - time.Second:        "7d",
		6*24*time.Hour + 23*time.Hour:       "6d 23h",
		59*time.Minute + 59*time.Second + 1: "59m 59s",
	} {
		require.Equal(t, want, workflows.HumanDuration(d), d.String())
	}
}

func TestWatch_PauseUpdateDuringTheRecordingIsWrittenAgain(t *testing.T) {
	// The API writes the watch's row when its pause update completes; a
	// poll's record scheduled before it (state active) may land after that
	// write, so the workflow writes the state again.
	h := newWatchHarnessSlow(t, 0, time.Minute)
	h.script(see("1", "HIGH"))
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(workflows.WatchUpdatePause, "pause", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Error(err) }, OnComplete: func(any, error) {},
		})
	}, 10*time.Second)
	h.stopAt(10 * time.Minute)
	h.env.ExecuteWorkflow(workflows.Watch, watchInput())
	require.NoError(t, h.env.GetWorkflowError())
	require.Equal(t, []string{"poll:active", "poll:paused"}, h.states)
}

func TestWatch_PauseSignalDuringAPollIsRecordedAfterIt(t *testing.T) {
	for _, tt := range []struct {
		name                string
		firstPoll, firstRec time.Duration
		want                []string
	}{
		// The pause lands while the directory is asked: the poll's record
		// already says paused.
		{"during the poll", time.Minute, 0, []string{"poll:paused", "signal:paused"}},
		// The pause lands while the poll's changes are recorded (with the
		// state they were scheduled with): the signal's state is written
		// after them, or the row would stay active.
		{"during the recording", 0, time.Minute, []string{"poll:active", "poll:paused", "signal:paused"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newWatchHarnessSlow(t, tt.firstPoll, tt.firstRec)
			h.script(see("1", "HIGH"))
			h.env.RegisterDelayedCallback(func() {
				h.env.SignalWorkflow(workflows.WatchSignalPause, workflows.OperatorSignal{Operator: "alice"})
			}, 10*time.Second)
			h.stopAt(10 * time.Minute)
			h.env.ExecuteWorkflow(workflows.Watch, watchInput())
			require.NoError(t, h.env.GetWorkflowError())
			require.Equal(t, 1, h.polls)
			require.Equal(t, tt.want, h.states)
		})
	}
}
