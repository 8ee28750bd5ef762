// Package schedules creates Vigil's Temporal Schedules at worker start: the
// daily snapshot retention, the periodic Slack capacity summary and the
// broker fleet scan. Ensure
// is idempotent, so every worker may call it: a schedule that exists is
// updated to the wanted spec, one no longer wanted is deleted.
package schedules

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/workflows"
)

// Timing of the schedules.
const (
	// TimeZone is the zone the retention's calendar is in.
	TimeZone = "Europe/London"
	// RetentionHour and RetentionMinute are when retention runs (03:30,
	// London time: the quietest hour, away from the DST change at 01:00).
	RetentionHour   = 3
	RetentionMinute = 30
	// RetentionCatchup lets a retention missed by an outage still run up
	// to an hour late.
	RetentionCatchup = time.Hour
	// RetentionTimeout bounds one retention run.
	RetentionTimeout = 12 * time.Hour
	// DefaultSummaryEvery is how often the summary is posted by default.
	DefaultSummaryEvery = time.Hour
	// SummaryCatchup drops summaries more than ten minutes late: the next
	// one is coming.
	SummaryCatchup = 10 * time.Minute
	// SummaryTimeout bounds one summary run, so a run stuck without a
	// worker never posts a stale summary.
	SummaryTimeout = 15 * time.Minute
	// FleetScanCatchup drops scans more than five minutes late: the next
	// one is coming.
	FleetScanCatchup = 5 * time.Minute
	// FleetScanTimeout bounds one fleet scan run.
	FleetScanTimeout = 15 * time.Minute
)

// Options configure the schedules.
type Options struct {
	// Retention is how long snapshots are kept; zero means
	// workflows.DefaultSnapshotRetention.
	Retention time.Duration
	// SummaryEvery is the summary's period; zero means DefaultSummaryEvery.
	SummaryEvery time.Duration
	// SummarySlackChannel receives the summary; empty deletes the summary
	// schedule.
	SummarySlackChannel string
	// BrokerScanEvery is the broker fleet scan's period
	// (workflows.DefaultFleetScanEvery is the usual value); zero means no
	// broker is configured and deletes the fleet scan schedule.
	BrokerScanEvery time.Duration
}

// Ensure creates or updates the schedules for taskQueue, and deletes the
// summary schedule when no channel is set. A schedule an operator paused
// stays paused.
func Ensure(ctx context.Context, c client.Client, taskQueue string, o Options) error {
	if o.Retention == 0 {
		o.Retention = workflows.DefaultSnapshotRetention
	}
	if o.Retention < workflows.MinSnapshotRetention {
		return fmt.Errorf("snapshot retention %s is below the minimum %s", o.Retention, workflows.MinSnapshotRetention)
	}
	if o.SummaryEvery == 0 {
		o.SummaryEvery = DefaultSummaryEvery
	}
	if o.SummaryEvery < time.Minute {
		return fmt.Errorf("summary period %s is below a minute", o.SummaryEvery)
	}
	if o.BrokerScanEvery != 0 && o.BrokerScanEvery < time.Minute {
		return fmt.Errorf("broker scan period %s is below a minute", o.BrokerScanEvery)
	}
	if err := ensure(ctx, c, RetentionSchedule(taskQueue, o)); err != nil {
		return err
	}
	if o.BrokerScanEvery == 0 {
		if err := remove(ctx, c, workflows.FleetScanScheduleID); err != nil {
			return err
		}
	} else if err := ensure(ctx, c, FleetScanSchedule(taskQueue, o)); err != nil {
		return err
	}
	if o.SummarySlackChannel == "" {
		return remove(ctx, c, workflows.SummaryScheduleID)
	}
	return ensure(ctx, c, SummarySchedule(taskQueue, o))
}

// RetentionSchedule is the wanted retention schedule: daily at 03:30 London
// time, skipping a run while the previous one still runs.
func RetentionSchedule(taskQueue string, o Options) client.ScheduleOptions {
	retention := o.Retention
	if retention == 0 {
		retention = workflows.DefaultSnapshotRetention
	}
	return scheduleOptions(workflows.RetentionScheduleID, client.ScheduleSpec{
		Calendars: []client.ScheduleCalendarSpec{{
			Hour:    []client.ScheduleRange{{Start: RetentionHour}},
			Minute:  []client.ScheduleRange{{Start: RetentionMinute}},
			Comment: "daily snapshot retention",
		}},
		TimeZoneName: TimeZone,
	}, workflows.SnapshotRetention, &workflows.RetentionInput{Retention: o.Retention}, taskQueue, RetentionTimeout, RetentionCatchup,
		workflows.SnapshotRetentionSummary, workflows.SnapshotRetentionDetails(retention))
}

// SummarySchedule is the wanted summary schedule: every o.SummaryEvery
// (on the hour for the default), skipping while the previous one runs.
func SummarySchedule(taskQueue string, o Options) client.ScheduleOptions {
	every := o.SummaryEvery
	if every == 0 {
		every = DefaultSummaryEvery
	}
	return scheduleOptions(workflows.SummaryScheduleID, client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}},
		workflows.CapacitySummary, &workflows.SummaryInput{SlackChannel: o.SummarySlackChannel}, taskQueue, SummaryTimeout, SummaryCatchup,
		workflows.CapacitySummarySummary, workflows.CapacitySummaryDetails(every, o.SummarySlackChannel))
}

// FleetScanSchedule is the wanted broker fleet scan schedule: every
// o.BrokerScanEvery (DefaultFleetScanEvery when zero), skipping while the
// previous scan still runs.
func FleetScanSchedule(taskQueue string, o Options) client.ScheduleOptions {
	every := o.BrokerScanEvery
	if every == 0 {
		every = workflows.DefaultFleetScanEvery
	}
	return scheduleOptions(workflows.FleetScanScheduleID, client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}},
		workflows.FleetScan, &workflows.FleetScanInput{}, taskQueue, FleetScanTimeout, FleetScanCatchup,
		workflows.FleetScanSummary, workflows.FleetScanDetails(every))
}

// scheduleOptions is a Vigil schedule: it starts workflow (whose ID is the
// schedule's) with arg on taskQueue, bounded by timeout, skipping a run
// while the previous one runs and catching up at most catchup. Its runs show
// summary and details in the Web UI.
func scheduleOptions(id string, spec client.ScheduleSpec, workflow, arg any, taskQueue string, timeout, catchup time.Duration,
	summary, details string) client.ScheduleOptions {
	return client.ScheduleOptions{
		ID:   id,
		Spec: spec,
		Action: &client.ScheduleWorkflowAction{
			ID:                       id,
			Workflow:                 workflow,
			Args:                     []any{arg},
			TaskQueue:                taskQueue,
			WorkflowExecutionTimeout: timeout,
			TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.VigilKindKey.ValueSet(workflows.KindSchedule)),
			StaticSummary:            summary,
			StaticDetails:            details,
		},
		Overlap:       enums.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: catchup,
	}
}

// ensure creates the schedule, or updates an existing one to want (its
// state, paused or not, is kept).
func ensure(ctx context.Context, c client.Client, want client.ScheduleOptions) error {
	_, err := c.ScheduleClient().Create(ctx, want)
	if err == nil {
		return nil
	}
	var exists *serviceerror.AlreadyExists
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) && !errors.As(err, &exists) {
		return fmt.Errorf("create schedule %s: %w", want.ID, err)
	}
	h := c.ScheduleClient().GetHandle(ctx, want.ID)
	err = h.Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			spec := want.Spec
			return &client.ScheduleUpdate{Schedule: &client.Schedule{
				Action: want.Action,
				Spec:   &spec,
				Policy: &client.SchedulePolicies{
					Overlap:        want.Overlap,
					CatchupWindow:  want.CatchupWindow,
					PauseOnFailure: want.PauseOnFailure,
				},
				State: in.Description.Schedule.State,
			}}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("update schedule %s: %w", want.ID, err)
	}
	return nil
}

// remove deletes the schedule id if it exists.
func remove(ctx context.Context, c client.Client, id string) error {
	err := c.ScheduleClient().GetHandle(ctx, id).Delete(ctx)
	var notFound *serviceerror.NotFound
	if err != nil && !errors.As(err, &notFound) {
		return fmt.Errorf("delete schedule %s: %w", id, err)
	}
	return nil
}
