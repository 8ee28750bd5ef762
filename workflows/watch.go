package workflows

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vigil-health/vigil/activities"
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
// effect at once; the live statuses are a Query.
func Watch(ctx workflow.Context, in *WatchInput) error {
	w := &watch{in: in}
	if err := w.setup(ctx); err != nil {
		return err
	}
	return w.run(ctx)
}

type watch struct {
	in      *WatchInput
	st      WatchState
	changes int
	stopped bool
	polls   int
	// due is when the next poll is meant to happen.
	due time.Time
}

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

func (w *watch) setup(ctx workflow.Context) error {
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
	if err := workflow.SetQueryHandler(ctx, WatchQueryStatuses, func() (WatchState, error) { return w.st, nil }); err != nil {
		return fmt.Errorf("register query: %w", err)
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, WatchUpdateConfigure,
		func(ctx workflow.Context, c WatchConfig) (WatchState, error) {
			w.st.Config = c
			w.changes++
			return w.st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, c WatchConfig) error {
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
		name   string
		paused bool
	}{{WatchUpdatePause, true}, {WatchUpdateResume, false}} {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name,
			func(ctx workflow.Context) (WatchState, error) {
				w.st.Paused = u.paused
				w.changes++
				return w.st, w.upsertState(ctx)
			},
			workflow.UpdateHandlerOptions{Validator: func(workflow.Context) error {
				if w.st.Paused == u.paused {
					already := "running"
					if u.paused {
						already = "paused"
					}
					return temporal.NewApplicationError("the watch is already "+already, RejectIllegal)
				}
				return nil
			}}); err != nil {
			return fmt.Errorf("register update: %w", err)
		}
	}
	if err := workflow.SetUpdateHandler(ctx, WatchUpdateStop, func(ctx workflow.Context) error {
		w.stopped = true
		w.changes++
		return nil
	}); err != nil {
		return fmt.Errorf("register update: %w", err)
	}
	return w.upsertState(ctx)
}

func (w *watch) run(ctx workflow.Context) error {
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
			next := *w.in
			carry := w.st
			next.Carry, next.Config = &carry, w.st.Config
			return workflow.NewContinueAsNewError(ctx, Watch, &next)
		}
		// Sleep until the next poll, waking early on any update. Jitter
		// spreads many watches' polls over time.
		wait := w.st.Config.Interval + w.jitter(ctx)
		w.due = workflow.Now(ctx).Add(wait)
		woken, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return w.changes != seen || w.stopped })
		if err != nil {
			return err
		}
		if woken {
			w.due = workflow.Now(ctx) // an update (resume, configure) polls at once
		}
	}
	return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}

// jitter is up to a tenth of the interval, drawn in a side effect.
func (w *watch) jitter(ctx workflow.Context) time.Duration {
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
func (w *watch) poll(ctx workflow.Context) error {
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
	err := workflow.ExecuteActivity(pollCtx(ctx, info.TaskQueueName), watchActivities.Poll, &activities.PollInput{
		WatchID: w.in.WatchID, PollID: pollID, Kind: cfg.Kind, ServiceID: cfg.ServiceID, Search: cfg.Search,
		ScheduledAt: scheduled,
	}).Get(ctx, &res)
	now := workflow.Now(ctx)
	w.st.LastPollAt = now
	if err != nil {
		return w.degrade(ctx, pollID, now, err)
	}
	var changes []Change
	if w.st.Degraded {
		w.st.Degraded, w.st.LastError = false, ""
		changes = append(changes, Change{Kind: ChangeSourceBack, ServiceID: "-", Name: cfg.Description, Announce: false})
		_ = w.upsertState(ctx)
	}
	next, decided := DecideChanges(w.st.Services, res.Observations, cfg.RecoveryPolls)
	w.st.Services = next
	changes = append(changes, decided...)
	if err := w.record(ctx, pollID, now, changes, res.Observations); err != nil {
		return err
	}
	return w.announce(ctx, pollID, changes)
}

func (w *watch) degrade(ctx workflow.Context, pollID string, now time.Time, pollErr error) error {
	w.st.LastError = pollErr.Error()
	if w.st.Degraded {
		return nil // announced once, when it began
	}
	w.st.Degraded = true
	_ = w.upsertState(ctx)
	c := Change{
		Kind: ChangeDegraded, ServiceID: "-", Name: w.st.Config.Description, Capacity: "",
		ChangedBy: "vigil", ChangedAt: now, Announce: true,
	}
	workflow.GetLogger(ctx).Warn("watch degraded: directory unavailable", "err", pollErr)
	if err := w.record(ctx, pollID, now, []Change{c}, nil); err != nil {
		return err
	}
	return w.announce(ctx, pollID, []Change{c})
}

func (w *watch) record(ctx workflow.Context, pollID string, at time.Time, changes []Change, current []activities.Observation) error {
	state := WatchActive
	if w.st.Degraded {
		state = WatchDegraded
	}
	if w.st.Paused {
		state = WatchPaused
	}
	recs := make([]activities.ChangeRecord, 0, len(changes))
	for _, c := range changes {
		recs = append(recs, changeRecord(c))
	}
	return workflow.ExecuteActivity(dbCtx(ctx), watchActivities.RecordChanges, &activities.RecordChangesInput{
		WatchID: w.in.WatchID, PollID: pollID, At: at, Changes: recs, Current: current, State: state,
	}).Get(ctx, nil)
}

// announce notifies the changes people are told about, in parallel.
func (w *watch) announce(ctx workflow.Context, pollID string, changes []Change) error {
	cfg := w.st.Config
	var futures []workflow.Future
	for _, c := range changes {
		if !c.Announce || (cfg.SlackChannel == "" && len(cfg.SMSNumbers) == 0) {
			continue
		}
		futures = append(futures, workflow.ExecuteActivity(sideCtx(ctx), watchActivities.NotifyChange, &activities.NotifyChangeInput{
			WatchID: w.in.WatchID, PollID: pollID, Description: cfg.Description, Change: changeRecord(c),
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

func changeRecord(c Change) activities.ChangeRecord {
	return activities.ChangeRecord{
		Kind: c.Kind, ServiceID: c.ServiceID, Name: c.Name, Type: c.Type, Region: c.Region,
		Previous: c.Previous, PrevRAG: c.PrevRAG, Capacity: c.Capacity, RAG: c.RAG,
		ChangedBy: c.ChangedBy, ChangedAt: c.ChangedAt,
	}
}

func (w *watch) upsertState(ctx workflow.Context) error {
	state := WatchActive
	switch {
	case w.st.Paused:
		state = WatchPaused
	case w.st.Degraded:
		state = WatchDegraded
	}
	return workflow.UpsertTypedSearchAttributes(ctx,
		VigilKindKey.ValueSet(KindWatch),
		WatchIDKey.ValueSet(w.in.WatchID),
		WatchStateKey.ValueSet(state),
	)
}

func (w *watch) shouldContinueAsNew(ctx workflow.Context) bool {
	if w.in.ContinueAsNewAfterPolls > 0 {
		return w.polls >= w.in.ContinueAsNewAfterPolls
	}
	info := workflow.GetInfo(ctx)
	return w.polls >= maxPollsPerRun || info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() >= maxHistoryLength
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
