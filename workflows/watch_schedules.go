package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vigil-health/vigil/activities"
)

// Ids of the Temporal Schedules that run the capacity housekeeping, and the
// workflow ids of their actions (Temporal appends the scheduled time).
const (
	// RetentionScheduleID runs SnapshotRetention daily.
	RetentionScheduleID = "capacity-snapshot-retention"
	// SummaryScheduleID runs CapacitySummary periodically.
	SummaryScheduleID = "capacity-summary"
)

// KindSchedule is the VigilKind of workflows started by a Schedule.
const KindSchedule = "schedule"

// Limits of the capacity housekeeping.
const (
	// DefaultSnapshotRetention is how long snapshots are kept by default.
	DefaultSnapshotRetention = 30 * 24 * time.Hour
	// MinSnapshotRetention guards against a misconfiguration that would
	// delete the snapshots still in use.
	MinSnapshotRetention = time.Hour
	// SnapshotDeleteBatch is how many snapshot rows one DELETE removes.
	SnapshotDeleteBatch = 10000
)

// scheduledStartTimeKey is the search attribute Temporal sets on every
// workflow a Schedule starts: the action's nominal time.
var scheduledStartTimeKey = temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime")

var capacityActivities *activities.CapacityMaintenance

// RetentionInput starts a SnapshotRetention run.
type RetentionInput struct {
	// Retention is how long snapshots are kept; zero means
	// DefaultSnapshotRetention.
	Retention time.Duration
}

// RetentionResult is what a SnapshotRetention run deleted.
type RetentionResult struct {
	// Before is the cut-off: snapshots polled before it were deleted.
	Before  time.Time
	Deleted int64
}

// SnapshotRetention deletes the snapshots older than the retention, counted
// back from the run's nominal (scheduled) time. The deletion runs in
// batches inside one heartbeating activity, so the history stays a few
// events long however many rows go.
func SnapshotRetention(ctx workflow.Context, in *RetentionInput) (*RetentionResult, error) {
	retention := DefaultSnapshotRetention
	if in != nil && in.Retention != 0 {
		retention = in.Retention
	}
	if retention < MinSnapshotRetention {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("retention %s is below the minimum %s", retention, MinSnapshotRetention), "InvalidInput", nil)
	}
	before := nominalTime(ctx).Add(-retention)
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// A first run on a large table can take a while; the heartbeat, not
		// this bound, detects a lost worker.
		StartToCloseTimeout: 2 * time.Hour,
		// Each batch heartbeats; one batch taking a minute means Postgres
		// is in trouble, and a retry resumes where the last attempt stopped.
		HeartbeatTimeout: time.Minute,
		// Give up before the next daily run is due; that run catches up.
		ScheduleToCloseTimeout: 12 * time.Hour,
		RetryPolicy:            doublingRetry(5*time.Second, 5*time.Minute),
	})
	var res activities.DeleteSnapshotsResult
	workflow.SetCurrentDetails(ctx, "Deleting snapshots polled before "+clock(before))
	ctx = withSummary(ctx, "delete snapshots before "+clock(before))
	if err := workflow.ExecuteActivity(ctx, capacityActivities.DeleteOldSnapshots, &activities.DeleteSnapshotsInput{
		Before: before, BatchSize: SnapshotDeleteBatch,
	}).Get(ctx, &res); err != nil {
		return nil, err
	}
	workflow.GetLogger(ctx).Info("old snapshots deleted", "before", before, "deleted", res.Deleted)
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("Deleted %d snapshot(s) polled before %s", res.Deleted, clock(before)))
	return &RetentionResult{Before: before, Deleted: res.Deleted}, nil
}

// SummaryInput starts a CapacitySummary run.
type SummaryInput struct {
	// SlackChannel receives the summary; empty posts nothing.
	SlackChannel string
}

// SummaryResult is what a CapacitySummary run posted.
type SummaryResult struct {
	// At is the time the summary speaks of (the run's nominal time).
	At time.Time
	// Posted is false when Slack is not configured or no channel is set.
	Posted bool
	// Services is how many services were below HIGH.
	Services int
}

// CapacitySummary posts the seed's periodic summary to Slack: the services
// currently below HIGH, worst first. It is at least once: an attempt that
// posted but lost its answer is retried and posts again (a duplicate
// summary is harmless).
func CapacitySummary(ctx workflow.Context, in *SummaryInput) (*SummaryResult, error) {
	at := nominalTime(ctx)
	if in == nil || in.SlackChannel == "" {
		return &SummaryResult{At: at}, nil
	}
	// One query and one Slack post, under the Slack policy (permanent
	// errors such as a bad channel are not retried; rate limits honour
	// Retry-After; a summary more than ten minutes late is stale).
	ctx = withSummary(sideCtx(ctx), "post the capacity summary to Slack "+in.SlackChannel)
	var res activities.PostSummaryResult
	if err := workflow.ExecuteActivity(ctx, capacityActivities.PostCapacitySummary, &activities.PostSummaryInput{
		Channel: in.SlackChannel, At: at,
	}).Get(ctx, &res); err != nil {
		return nil, err
	}
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("Summary of %s: %d service(s) below HIGH; posted: %t", clock(at), res.Services, res.Posted))
	return &SummaryResult{At: at, Posted: res.Posted, Services: res.Services}, nil
}

// Summaries and details of the capacity schedules' runs in the Web UI.
const (
	SnapshotRetentionSummary = "Snapshot retention"
	CapacitySummarySummary   = "Capacity summary"
)

// SnapshotRetentionDetails are a retention run's fixed details.
func SnapshotRetentionDetails(retention time.Duration) string {
	return "Deletes capacity snapshots older than " + HumanDuration(retention) + " in batches of " +
		fmt.Sprint(SnapshotDeleteBatch) + ", daily. Schedule: " + RetentionScheduleID + "."
}

// CapacitySummaryDetails are a capacity summary run's fixed details.
func CapacitySummaryDetails(every time.Duration, channel string) string {
	return "Posts the services not at HIGH to Slack " + channel + ", every " + HumanDuration(every) + ". Schedule: " + SummaryScheduleID + "."
}

// nominalTime is the time a Schedule meant the run for, or the workflow's
// start when it was not started by a Schedule. Both are in history, so the
// value is the same on replay.
func nominalTime(ctx workflow.Context) time.Time {
	if t, ok := workflow.GetTypedSearchAttributes(ctx).GetTime(scheduledStartTimeKey); ok && !t.IsZero() {
		return t.UTC()
	}
	return workflow.Now(ctx).UTC()
}
