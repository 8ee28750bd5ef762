package workflows

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/watch"
)

// Limits of a watch's configuration.
const (
	MinWatchInterval     = time.Minute
	DefaultWatchInterval = 5 * time.Minute
	// maxPollsPerRun continues a watch as new long before its history could
	// grow large (a poll is about 10-20 events).
	maxPollsPerRun = 500
)

// Watch is a capacity watch: every interval (plus jitter) it polls the
// directory, has the snapshot stored, decides what changed and announces
// it. Changes of configuration, pause and resume arrive as Updates and take
// effect at once; the live statuses are a Query. Operators can also pause
// and resume it with signals (pause, resume; payload OperatorSignal), which
// make the same transitions as the Updates; the run's current details in
// the Web UI show its state, last poll, services by status, last change and
// last operator signal.
func Watch(ctx workflow.Context, in *WatchInput) error {
	return setUpAndRun(ctx, &watchRun{in: in})
}

type watchRun struct {
	in      *WatchInput
	st      WatchState
	changes int
	stopped bool
	polls   int
	// due is when the next poll is meant to happen.
	due time.Time
	// signals are the operator signal channels, by name; applying counts
	// the signals being applied.
	signals  []namedChannel
	applying int
	ops      operatorLog
	// polling is set from a poll's start until its changes are recorded
	// and announced.
	polling bool
}

// namedChannel is a signal channel with its name.
type namedChannel struct {
	name string
	ch   workflow.ReceiveChannel
}

// deletedStateChange versions setting WatchState to deleted when a watch
// is stopped.
const deletedStateChange = "watch-deleted-state"

var watchActivities *activities.Watches

// ValidateWatchConfig checks a configuration; the API checks the same
// before it starts or updates a watch.
func ValidateWatchConfig(c WatchConfig) error {
	switch c.Kind {
	case WatchKindService:
		if c.ServiceID == "" {
			return errors.New("service_id is required for a service watch")
		}
	case WatchKindSearch:
		if c.Search.Postcode == "" || len(c.Search.ServiceTypes) == 0 {
			return errors.New("a search watch needs a postcode and service types")
		}
	default:
		return fmt.Errorf("kind must be %s or %s", WatchKindService, WatchKindSearch)
	}
	if c.Interval < MinWatchInterval {
		return fmt.Errorf("interval must be at least %s", MinWatchInterval)
	}
	if c.RecoveryPolls < 1 || c.RecoveryPolls > 20 {
		return errors.New("recovery_polls must be 1 to 20")
	}
	return nil
}

func (w *watchRun) setup(ctx workflow.Context) error {
	if w.in == nil || w.in.WatchID == "" {
		return temporal.NewNonRetryableApplicationError("watch id is required", "InvalidInput", nil)
	}
	if w.in.Carry != nil {
		w.st = *w.in.Carry
	} else {
		w.st = WatchState{Config: w.in.Config}
	}
	if err := ValidateWatchConfig(w.st.Config); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", err)
	}
	if err := workflow.SetQueryHandlerWithOptions(ctx, WatchQueryStatuses, func() (WatchState, error) { return w.st, nil },
		workflow.QueryHandlerOptions{Description: "The watch's live state: configuration, every service's last status, paused, degraded, polls."}); err != nil {
		return fmt.Errorf("register query: %w", err)
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, WatchUpdateConfigure,
		func(ctx workflow.Context, c WatchConfig) (WatchState, error) {
			w.st.Config = c
			w.changes++
			w.details(ctx)
			return w.st, nil
		},
		workflow.UpdateHandlerOptions{Description: "Replace the watch's configuration (PATCH /v1/watches/{id}); its kind cannot change. Polls at once.",
			Validator: func(_ workflow.Context, c WatchConfig) error {
				if c.Kind != w.st.Config.Kind {
					return temporal.NewApplicationError("a watch's kind cannot change", RejectInvalid)
				}
				if err := ValidateWatchConfig(c); err != nil {
					return temporal.NewApplicationError(err.Error(), RejectInvalid)
				}
				return nil
			}}); err != nil {
		return fmt.Errorf("register update: %w", err)
	}
	for _, u := range []struct {
		name, description string
		paused            bool
	}{
		{WatchUpdatePause, "Pause polling until resumed (POST /v1/watches/{id}/pause); refused when already paused.", true},
		{WatchUpdateResume, "Resume polling, at once (POST /v1/watches/{id}/resume); refused when not paused.", false},
	} {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name,
			func(ctx workflow.Context) (WatchState, error) {
				w.st.Paused = u.paused
				w.changes++
				w.details(ctx)
				return w.st, w.upsertState(ctx)
			},
			workflow.UpdateHandlerOptions{Description: u.description, Validator: func(workflow.Context) error {
				return w.checkPause(u.paused)
			}}); err != nil {
			return fmt.Errorf("register update: %w", err)
		}
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, WatchUpdateStop, func(ctx workflow.Context) error {
		w.stopped = true
		w.changes++
		return nil
	}, workflow.UpdateHandlerOptions{Description: "End the watch (DELETE /v1/watches/{id}); its history stays."}); err != nil {
		return fmt.Errorf("register update: %w", err)
	}
	w.listen(ctx)
	w.details(ctx)
	return w.upsertState(ctx)
}

// checkPause refuses a pause of a paused watch and a resume of a running
// one: the rule of the updates and the signals alike.
func (w *watchRun) checkPause(pause bool) error {
	if w.st.Paused == pause {
		already := "running"
		if pause {
			already = "paused"
		}
		return temporal.NewApplicationError("the watch is already "+already, RejectIllegal)
	}
	return nil
}

// listen applies the operator signals, one at a time, in the order they
// arrive.
func (w *watchRun) listen(ctx workflow.Context) {
	for _, s := range []struct{ name, description string }{
		{WatchSignalPause, `Operator pause, as the pause update: {"operator":"<name>","reason":"<text>"}. Refused (and recorded) when already paused.`},
		{WatchSignalResume, `Operator resume, as the resume update (polls at once): {"operator":"<name>","reason":"<text>"}. Refused (and recorded) when not paused.`},
	} {
		w.signals = append(w.signals, namedChannel{s.name,
			workflow.GetSignalChannelWithOptions(ctx, s.name, workflow.SignalChannelOptions{Description: s.description})})
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var name string
			var raw converter.RawValue
			sel := workflow.NewSelector(ctx)
			for _, s := range w.signals {
				sel.AddReceive(s.ch, func(c workflow.ReceiveChannel, _ bool) {
					c.Receive(ctx, &raw)
					name = s.name
				})
			}
			sel.Select(ctx)
			w.operatorSignal(ctx, name, raw)
		}
	})
}

// drainSignal applies one operator signal that arrived but was not taken
// yet, once none is being applied; false when there is none.
func (w *watchRun) drainSignal(ctx workflow.Context) (bool, error) {
	if err := workflow.Await(ctx, func() bool { return w.applying == 0 }); err != nil {
		return false, err
	}
	for _, s := range w.signals {
		var raw converter.RawValue
		if s.ch.ReceiveAsync(&raw) {
			w.operatorSignal(ctx, s.name, raw)
			return true, nil
		}
	}
	return false, nil
}

// drainSignals applies, one by one, every operator signal that arrived but
// was not taken yet.
func (w *watchRun) drainSignals(ctx workflow.Context) error {
	for {
		more, err := w.drainSignal(ctx)
		if err != nil || !more {
			return err
		}
	}
}

// operatorSignal applies an operator's pause or resume as the update of the
// same name does, and records it (the watch's row shows who did it); a
// refused one is recorded with its reason.
func (w *watchRun) operatorSignal(ctx workflow.Context, name string, raw converter.RawValue) {
	w.applying++
	defer func() { w.applying-- }()
	pause := name == WatchSignalPause
	sig, err := DecodeOperatorSignal(raw)
	if err == nil && w.stopped {
		err = errors.New("the watch is being deleted")
	}
	if err == nil {
		err = w.checkPause(pause)
	}
	if err != nil {
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) {
			err = errors.New(ae.Message())
		}
		w.ops.refuse(ctx, KindWatch, w.in.WatchID, name, sig, activities.OperatorSignalRefused, err)
		w.details(ctx)
		return
	}
	w.st.Paused = pause
	w.changes++
	now := workflow.Now(ctx)
	w.st.StateChangedBy, w.st.StateChangedAt = sig.Actor(), now
	what := "resumed"
	if pause {
		what = "paused"
	}
	w.ops.accepted(ctx, what, sig)
	w.details(ctx)
	logger := workflow.GetLogger(ctx)
	logger.Info("watch "+what+" by operator signal", "actor", sig.Actor())
	if err := w.upsertState(ctx); err != nil {
		logger.Warn("watch state search attribute not updated", "err", err)
	}
	rec := w.ops.record(ctx, KindWatch, w.in.WatchID, name, sig, activities.OperatorSignalAccepted, nil)
	// A poll under way records the state it was scheduled with: the row
	// gets the signal's state after it, not before.
	if err := workflow.Await(ctx, func() bool { return !w.polling }); err != nil {
		logger.Error("operator signal not recorded", "signal", name, "err", err)
		return
	}
	in := &activities.WatchOperatorStateInput{WatchID: w.in.WatchID, State: w.state(), Signal: rec}
	actx := withSummary(dbCtx(ctx), "record "+what+" by "+sig.Actor())
	if err := workflow.ExecuteActivity(actx, watchActivities.RecordWatchOperatorState, in).Get(ctx, nil); err != nil {
		logger.Error("operator signal not recorded", "signal", name, "err", err)
	}
}

func (w *watchRun) run(ctx workflow.Context) error {
	for !w.stopped {
		// Updates are counted from the start of the iteration, so one that
		// lands during a poll (resume, configure, stop) wakes the wait
		// below at once instead of being absorbed into it.
		seen := w.changes
		if !w.st.Paused {
			if err := w.poll(ctx); err != nil {
				return err
			}
		}
		if w.shouldContinueAsNew(ctx) {
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return err
			}
			// Operator signals already delivered are applied here: the next
			// run would not see them.
			if err := w.drainSignals(ctx); err != nil {
				return err
			}
			next := *w.in
			carry := w.st
			next.Carry, next.Config = &carry, w.st.Config
			return workflow.NewContinueAsNewError(ctx, Watch, &next)
		}
		// Sleep until the next poll, waking early on any update. Jitter
		// spreads many watches' polls over time.
		wait := w.st.Config.Interval + w.jitter(ctx)
		w.due = workflow.Now(ctx).Add(wait)
		summary := "next poll in " + HumanDuration(wait)
		if w.st.Paused {
			summary = "paused; next check in " + HumanDuration(wait)
		}
		woken, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{Timeout: wait, TimerOptions: workflow.TimerOptions{Summary: summary}},
			func() bool { return w.changes != seen || w.stopped })
		if err != nil {
			return err
		}
		if woken {
			w.due = workflow.Now(ctx) // an update (resume, configure) polls at once
		}
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) && w.applying == 0 }); err != nil {
		return err
	}
	return w.deleted(ctx)
}

// deleted marks the stopped watch's run: WatchState becomes deleted (runs
// stopped before this version keep their last state), and operator signals
// still waiting are refused.
func (w *watchRun) deleted(ctx workflow.Context) error {
	if workflow.GetVersion(ctx, deletedStateChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, WatchStateKey.ValueSet(WatchDeleted)); err != nil {
		return fmt.Errorf("upsert search attributes: %w", err)
	}
	if err := w.drainSignals(ctx); err != nil {
		return err
	}
	w.details(ctx)
	return nil
}

// jitter is up to a tenth of the interval, drawn in a side effect.
func (w *watchRun) jitter(ctx workflow.Context) time.Duration {
	var d time.Duration
	max := int64(w.st.Config.Interval / 10)
	if max <= 0 {
		return 0
	}
	_ = workflow.SideEffect(ctx, func(workflow.Context) any { return time.Duration(rand.Int64N(max)) }).Get(&d)
	return d
}

// poll asks the directory, decides and records changes, and announces them.
// A directory failure is a distinct degraded state, announced once; it is
// never mistaken for a RED status.
func (w *watchRun) poll(ctx workflow.Context) error {
	w.polling = true
	defer func() { w.polling = false }()
	w.polls++
	w.st.Polls++
	info := workflow.GetInfo(ctx)
	pollID := info.WorkflowExecution.ID + ":" + info.WorkflowExecution.RunID + ":" + strconv.Itoa(w.polls)
	cfg := w.st.Config
	var res activities.PollResult
	scheduled := w.due
	if scheduled.IsZero() {
		scheduled = workflow.Now(ctx)
	}
	actx := withSummary(pollCtx(ctx, info.TaskQueueName), "poll directory (poll "+strconv.Itoa(w.st.Polls)+")")
	err := workflow.ExecuteActivity(actx, watchActivities.Poll, &activities.PollInput{
		WatchID: w.in.WatchID, PollID: pollID, Kind: cfg.Kind, ServiceID: cfg.ServiceID, Search: cfg.Search,
		ScheduledAt: scheduled,
	}).Get(ctx, &res)
	now := workflow.Now(ctx)
	w.st.LastPollAt = now
	if err != nil {
		return w.degrade(ctx, pollID, now, err)
	}
	var changes []watch.Change
	if w.st.Degraded {
		w.st.Degraded, w.st.LastError = false, ""
		changes = append(changes, watch.Change{Kind: watch.ChangeSourceBack, ServiceID: "-", Name: cfg.Description, Announce: false})
		_ = w.upsertState(ctx)
	}
	next, decided := DecideChanges(w.st.Services, res.Observations, cfg.RecoveryPolls)
	w.st.Services = next
	changes = append(changes, decided...)
	w.noteChanges(now, changes)
	w.details(ctx)
	if err := w.record(ctx, pollID, now, changes, res.Observations); err != nil {
		return err
	}
	return w.announce(ctx, pollID, changes)
}

// noteChanges keeps the latest change (first sightings aside) for the
// current details.
func (w *watchRun) noteChanges(at time.Time, changes []watch.Change) {
	var last *watch.Change
	n := 0
	for i := range changes {
		if changes[i].Kind != watch.ChangeFirstSighting {
			last = &changes[i]
			n++
		}
	}
	if last == nil {
		return
	}
	w.st.LastChange = clock(at) + ": " + describeChange(*last)
	if n > 1 {
		w.st.LastChange += fmt.Sprintf(" (and %d more)", n-1)
	}
}

// describeChange says what changed, e.g. "St James's ED (2000001) HIGH →
// LOW".
func describeChange(c watch.Change) string {
	or := func(s string) string {
		if s == "" {
			return "reset"
		}
		return s
	}
	switch c.Kind {
	case watch.ChangeDegraded:
		return "directory unavailable (degraded)"
	case watch.ChangeSourceBack:
		return "directory back"
	case watch.ChangeRobotReset:
		return fmt.Sprintf("%s (%s) robot reset", c.Name, c.ServiceID)
	}
	return fmt.Sprintf("%s (%s) %s → %s", c.Name, c.ServiceID, or(c.Previous), or(c.Capacity))
}

func (w *watchRun) degrade(ctx workflow.Context, pollID string, now time.Time, pollErr error) error {
	w.st.LastError = pollErr.Error()
	if w.st.Degraded {
		w.details(ctx)
		return nil // announced once, when it began
	}
	w.st.Degraded = true
	_ = w.upsertState(ctx)
	c := watch.Change{
		Kind: watch.ChangeDegraded, ServiceID: "-", Name: w.st.Config.Description, Capacity: "",
		ChangedBy: "vigil", ChangedAt: now, Announce: true,
	}
	workflow.GetLogger(ctx).Warn("watch degraded: directory unavailable", "err", pollErr)
	w.noteChanges(now, []watch.Change{c})
	w.details(ctx)
	if err := w.record(ctx, pollID, now, []watch.Change{c}, nil); err != nil {
		return err
	}
	return w.announce(ctx, pollID, []watch.Change{c})
}

func (w *watchRun) record(ctx workflow.Context, pollID string, at time.Time, changes []watch.Change, current []watch.Observation) error {
	state := WatchActive
	if w.st.Degraded {
		state = WatchDegraded
	}
	if w.st.Paused {
		state = WatchPaused
	}
	// A copy, never nil: the activity's input says "Changes":[] when the
	// poll changed nothing, as recorded histories do.
	recs := append(make([]watch.Change, 0, len(changes)), changes...)
	summary := "record poll"
	if len(changes) > 0 {
		summary = "record " + strconv.Itoa(len(changes)) + " change(s)"
	}
	in := &activities.RecordChangesInput{
		WatchID: w.in.WatchID, PollID: pollID, At: at, Changes: recs, Current: current, State: state,
	}
	// The record is a short, idempotent Postgres step (unique per poll and
	// change): since localRecordChange it runs as a local activity in the
	// workflow task that took the poll's answer, so a poll costs two
	// workflow tasks instead of three.
	var recorded workflow.Future
	if workflow.GetVersion(ctx, localRecordChange, workflow.DefaultVersion, 1) == 1 {
		recorded = workflow.ExecuteLocalActivity(summarizedLocal(localDBCtx(ctx), summary), watchActivities.RecordChanges, in)
	} else {
		recorded = workflow.ExecuteActivity(withSummary(dbCtx(ctx), summary), watchActivities.RecordChanges, in)
	}
	if err := recorded.Get(ctx, nil); err != nil {
		return err
	}
	// A pause or resume that landed while this was written (the API writes
	// its state when the update completes) may have been overwritten with
	// the state the record was scheduled with: write the state again.
	now := w.state()
	if now == state || w.stopped || workflow.GetVersion(ctx, stateRewriteChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	return workflow.ExecuteActivity(withSummary(dbCtx(ctx), "record state "+now), watchActivities.RecordChanges, &activities.RecordChangesInput{
		WatchID: w.in.WatchID, PollID: pollID, At: workflow.Now(ctx), State: now,
	}).Get(ctx, nil)
}

// stateRewriteChange versions writing a watch's state again when it
// changed while a poll was recorded.
const stateRewriteChange = "watch-state-rewrite"

// localRecordChange versions recording a poll as a local activity.
const localRecordChange = "watch-local-record"

// announce notifies the changes people are told about, in parallel.
func (w *watchRun) announce(ctx workflow.Context, pollID string, changes []watch.Change) error {
	cfg := w.st.Config
	var futures []workflow.Future
	for _, c := range changes {
		if !c.Announce || (cfg.SlackChannel == "" && len(cfg.SMSNumbers) == 0) {
			continue
		}
		actx := withSummary(sideCtx(ctx), "notify: "+describeChange(c))
		futures = append(futures, workflow.ExecuteActivity(actx, watchActivities.NotifyChange, &activities.NotifyChangeInput{
			WatchID: w.in.WatchID, PollID: pollID, Description: cfg.Description, Change: c,
			SlackChannel: cfg.SlackChannel, SMSNumbers: cfg.SMSNumbers,
		}))
	}
	for _, f := range futures {
		// A failed notification is retried by its policy and then given up;
		// it never stops the watch.
		_ = f.Get(ctx, nil)
	}
	return nil
}

// state is the watch's state for the WatchState search attribute and its
// row: paused, else degraded, else active.
func (w *watchRun) state() string {
	switch {
	case w.st.Paused:
		return WatchPaused
	case w.st.Degraded:
		return WatchDegraded
	}
	return WatchActive
}

func (w *watchRun) upsertState(ctx workflow.Context) error {
	return workflow.UpsertTypedSearchAttributes(ctx,
		VigilKindKey.ValueSet(KindWatch),
		WatchIDKey.ValueSet(w.in.WatchID),
		WatchStateKey.ValueSet(w.state()),
	)
}

// details sets the run's current details in the Web UI: what it watches,
// its state, last poll, services by status, last change and last operator
// signal. Service names and ids only: a watch holds no personal data.
func (w *watchRun) details(ctx workflow.Context) {
	lines := []string{WatchSummary(w.st.Config) + " · every " + HumanDuration(w.st.Config.Interval)}
	state := w.state()
	switch {
	case w.stopped:
		state = WatchDeleted
	case w.st.Degraded:
		state += " (directory unavailable)"
		if w.st.Paused {
			state += "; paused"
		}
	}
	if w.st.StateChangedBy != "" && !w.stopped {
		state += " · last paused or resumed by " + w.st.StateChangedBy + " at " + clock(w.st.StateChangedAt)
	}
	lines = append(lines, "State: "+state)
	if w.st.Polls > 0 {
		lines = append(lines, fmt.Sprintf("Last poll: %s (poll %d)", clock(w.st.LastPollAt), w.st.Polls))
	}
	if len(w.st.Services) > 0 {
		counts := map[string]int{}
		for _, s := range w.st.Services {
			counts[s.Capacity]++
		}
		var parts []string
		for _, c := range []string{"HIGH", "LOW", "NONE", ""} {
			if counts[c] > 0 {
				name := c
				if c == "" {
					name = "reset"
				}
				parts = append(parts, fmt.Sprintf("%d %s", counts[c], name))
			}
		}
		lines = append(lines, fmt.Sprintf("Services: %d (%s)", len(w.st.Services), strings.Join(parts, ", ")))
	}
	if w.st.LastChange != "" {
		lines = append(lines, "Last change: "+w.st.LastChange)
	}
	lines = append(lines, w.ops.lines()...)
	workflow.SetCurrentDetails(ctx, strings.Join(lines, "\n"))
}

func (w *watchRun) shouldContinueAsNew(ctx workflow.Context) bool {
	return continueAsNewDue(ctx, w.polls, w.in.ContinueAsNewAfterPolls, maxPollsPerRun)
}

// pollCtx runs directory polls on the directory task queue, whose workers
// are rate-limited together. Three quick attempts: a directory that keeps
// failing makes the watch degraded until a later poll succeeds, rather than
// retrying for ever.
func pollCtx(ctx workflow.Context, taskQueue string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           DirectoryTaskQueue(taskQueue),
		StartToCloseTimeout: 30 * time.Second,
		// Waiting for the shared rate limit counts towards this.
		ScheduleToCloseTimeout: 2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        2 * time.Second,
			BackoffCoefficient:     2,
			MaximumAttempts:        3,
			NonRetryableErrorTypes: []string{activities.ErrTypeDirectoryAuth},
		},
	})
}
