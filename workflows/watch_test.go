package workflows_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/directory"
	"github.com/vigil-health/vigil/workflows"
)

func obs(id, capacity string) workflows.Observation {
	return workflows.Observation{ServiceID: id, Name: "Svc " + id, Capacity: capacity, UpdatedBy: "nurse.a"}
}

func TestDecideChanges(t *testing.T) {
	state := func(id, capacity string) workflows.ServiceState {
		return workflows.ServiceState{ServiceID: id, Name: "Svc " + id, Capacity: capacity}
	}
	tests := []struct {
		name     string
		prev     []workflows.ServiceState
		obs      []workflows.Observation
		recovery int
		kinds    []string
		announce []bool
		after    string // capacity of the first service afterwards
	}{
		{"first sighting is silent", nil, []workflows.Observation{obs("1", "HIGH")}, 1, []string{"first_sighting"}, []bool{false}, "HIGH"},
		{"no change says nothing", []workflows.ServiceState{state("1", "LOW")}, []workflows.Observation{obs("1", "LOW")}, 1, nil, nil, "LOW"},
		{"HIGH to LOW is announced", []workflows.ServiceState{state("1", "HIGH")}, []workflows.Observation{obs("1", "LOW")}, 1, []string{"change"}, []bool{true}, "LOW"},
		{"LOW to NONE is announced", []workflows.ServiceState{state("1", "LOW")}, []workflows.Observation{obs("1", "NONE")}, 1, []string{"change"}, []bool{true}, "NONE"},
		{"NONE to HIGH is announced without hysteresis", []workflows.ServiceState{state("1", "NONE")}, []workflows.Observation{obs("1", "HIGH")}, 1, []string{"change"}, []bool{true}, "HIGH"},
		{"HIGH to reset is the robot: recorded, silent, stays HIGH", []workflows.ServiceState{state("1", "HIGH")}, []workflows.Observation{obs("1", "")}, 1, []string{"robot_reset"}, []bool{false}, "HIGH"},
		{"LOW to reset is a change", []workflows.ServiceState{state("1", "LOW")}, []workflows.Observation{obs("1", "")}, 1, []string{"change"}, []bool{true}, ""},
		{"disappearing is reported as NONE", []workflows.ServiceState{state("1", "HIGH")}, nil, 1, []string{"disappeared"}, []bool{true}, "NONE"},
		{"a gone service is reported once", []workflows.ServiceState{state("1", "NONE")}, nil, 1, nil, nil, "NONE"},
		{"a recovery waits for the hysteresis", []workflows.ServiceState{state("1", "NONE")}, []workflows.Observation{obs("1", "HIGH")}, 2, nil, nil, "NONE"},
		{"a worsening ignores the hysteresis", []workflows.ServiceState{state("1", "HIGH")}, []workflows.Observation{obs("1", "NONE")}, 3, []string{"change"}, []bool{true}, "NONE"},
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
		var changes []workflows.Change
		for range 2 {
			prev, changes = workflows.DecideChanges(prev, []workflows.Observation{obs("1", "HIGH")}, 3)
			require.Empty(t, changes)
		}
		prev, changes = workflows.DecideChanges(prev, []workflows.Observation{obs("1", "HIGH")}, 3)
		require.Len(t, changes, 1)
		require.Equal(t, "HIGH", prev[0].Capacity)
	})
	t.Run("a flap resets the hysteresis streak", func(t *testing.T) {
		prev := []workflows.ServiceState{state("1", "NONE")}
		prev, _ = workflows.DecideChanges(prev, []workflows.Observation{obs("1", "HIGH")}, 2)
		prev, _ = workflows.DecideChanges(prev, []workflows.Observation{obs("1", "NONE")}, 2)
		_, changes := workflows.DecideChanges(prev, []workflows.Observation{obs("1", "HIGH")}, 2)
		require.Empty(t, changes, "the streak started again")
	})
}

// watchHarness runs the watch workflow with a scripted directory.
type watchHarness struct {
	mu       sync.Mutex // activities run concurrently
	t        *testing.T
	env      *testsuite.TestWorkflowEnvironment
	answers  []func() ([]activities.Observation, error)
	polls    int
	recorded []activities.RecordChangesInput
	notified []activities.ChangeRecord
}

func newWatchHarness(t *testing.T) *watchHarness { return newWatchHarnessWith(t, 0) }

// newWatchHarnessWith makes the first poll take firstPoll of workflow time.
func newWatchHarnessWith(t *testing.T, firstPoll time.Duration) *watchHarness {
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
	h.env.OnActivity(a.RecordChanges, mock.Anything, mock.Anything).Return(func(_ context.Context, in *activities.RecordChangesInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.recorded = append(h.recorded, *in)
		return nil
	})
	h.env.OnActivity(a.NotifyChange, mock.Anything, mock.Anything).Return(func(_ context.Context, in *activities.NotifyChangeInput) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.notified = append(h.notified, in.Change)
		return nil
	})
	return h
}

func (h *watchHarness) script(answers ...func() ([]activities.Observation, error)) {
	h.answers = answers
}

func see(pairs ...string) func() ([]activities.Observation, error) {
	return func() ([]activities.Observation, error) {
		var out []activities.Observation
		for i := 0; i+1 < len(pairs); i += 2 {
			out = append(out, activities.Observation{ServiceID: pairs[i], Name: "Svc " + pairs[i], Region: "North", Capacity: pairs[i+1]})
		}
		return out, nil
	}
}

func failing() ([]activities.Observation, error) { return nil, errors.New("directory unavailable") }

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
			if c.Kind == workflows.ChangeFirstSighting || c.Kind == workflows.ChangeRobotReset {
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
