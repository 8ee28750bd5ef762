//go:build integration

package schedules_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/schedules"
	"github.com/vigil-health/vigil/internal/slacknotify"
	"github.com/vigil-health/vigil/internal/slacknotify/slackfake"
	"github.com/vigil-health/vigil/internal/testenv"
	"github.com/vigil-health/vigil/internal/watch"
	"github.com/vigil-health/vigil/workflows"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Run(m, "schedules", &env)) }

const (
	taskQueue = "schedules-test"
	channel   = "C0CAPACITY"
	day       = 24 * time.Hour
)

// reset deletes both schedules, so each test starts from none.
func reset(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, id := range []string{workflows.RetentionScheduleID, workflows.SummaryScheduleID, workflows.FleetScanScheduleID} {
		err := env.Client.ScheduleClient().GetHandle(ctx, id).Delete(ctx)
		var nf *serviceerror.NotFound
		if err != nil && !errors.As(err, &nf) {
			require.NoError(t, err)
		}
	}
}

func describe(t *testing.T, id string) *client.ScheduleDescription {
	t.Helper()
	d, err := env.Client.ScheduleClient().GetHandle(context.Background(), id).Describe(context.Background())
	require.NoError(t, err)
	return d
}

// decodeArg decodes the first argument of a described schedule's action.
func decodeArg(t *testing.T, a *client.ScheduleWorkflowAction, v any) {
	t.Helper()
	require.Len(t, a.Args, 1)
	p, ok := a.Args[0].(*commonpb.Payload)
	require.True(t, ok)
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(p, v))
}

func TestEnsure(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name          string
		opts          schedules.Options
		wantRetention time.Duration
		wantEvery     time.Duration // 0: no summary schedule
	}{
		{"defaults", schedules.Options{SummarySlackChannel: channel}, 30 * day, time.Hour},
		{"custom retention and period", schedules.Options{Retention: 7 * day, SummaryEvery: 30 * time.Minute, SummarySlackChannel: channel}, 7 * day, 30 * time.Minute},
		{"no channel, no summary", schedules.Options{}, 30 * day, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reset(t)
			// Twice: the second call finds both schedules and updates them.
			for range 2 {
				require.NoError(t, schedules.Ensure(ctx, env.Client, taskQueue, tt.opts))
			}

			d := describe(t, workflows.RetentionScheduleID)
			require.Len(t, d.Schedule.Spec.Calendars, 1)
			cal := d.Schedule.Spec.Calendars[0]
			require.Equal(t, 3, cal.Hour[0].Start)
			require.Equal(t, 30, cal.Minute[0].Start)
			require.Equal(t, "Europe/London", d.Schedule.Spec.TimeZoneName)
			require.Equal(t, enums.SCHEDULE_OVERLAP_POLICY_SKIP, d.Schedule.Policy.Overlap)
			require.Equal(t, time.Hour, d.Schedule.Policy.CatchupWindow)
			require.False(t, d.Schedule.State.Paused)
			act, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
			require.True(t, ok)
			require.Equal(t, "SnapshotRetention", act.Workflow)
			require.Equal(t, workflows.RetentionScheduleID, act.ID)
			require.Equal(t, taskQueue, act.TaskQueue)
			kind, ok := act.TypedSearchAttributes.GetKeyword(workflows.VigilKindKey)
			require.True(t, ok)
			require.Equal(t, workflows.KindSchedule, kind)
			var rin workflows.RetentionInput
			decodeArg(t, act, &rin)
			require.Equal(t, tt.wantRetention, rin.Retention)
			// The next run is at 03:30 London time.
			require.NotEmpty(t, d.Info.NextActionTimes)
			london, err := time.LoadLocation("Europe/London")
			require.NoError(t, err)
			require.Equal(t, "03:30", d.Info.NextActionTimes[0].In(london).Format("15:04"))

			_, err = env.Client.ScheduleClient().GetHandle(ctx, workflows.SummaryScheduleID).Describe(ctx)
			if tt.wantEvery == 0 {
				var nf *serviceerror.NotFound
				require.True(t, errors.As(err, &nf), "summary schedule should not exist: %v", err)
				return
			}
			require.NoError(t, err)
			d = describe(t, workflows.SummaryScheduleID)
			require.Len(t, d.Schedule.Spec.Intervals, 1)
			require.Equal(t, tt.wantEvery, d.Schedule.Spec.Intervals[0].Every)
			require.Equal(t, enums.SCHEDULE_OVERLAP_POLICY_SKIP, d.Schedule.Policy.Overlap)
			require.Equal(t, 10*time.Minute, d.Schedule.Policy.CatchupWindow)
			act, ok = d.Schedule.Action.(*client.ScheduleWorkflowAction)
			require.True(t, ok)
			require.Equal(t, "CapacitySummary", act.Workflow)
			require.Equal(t, workflows.SummaryScheduleID, act.ID)
			kind, ok = act.TypedSearchAttributes.GetKeyword(workflows.VigilKindKey)
			require.True(t, ok)
			require.Equal(t, workflows.KindSchedule, kind)
			var sin workflows.SummaryInput
			decodeArg(t, act, &sin)
			require.Equal(t, channel, sin.SlackChannel)
		})
	}
}

func TestEnsure_UpdatesAndRemoves(t *testing.T) {
	ctx := context.Background()
	reset(t)
	require.NoError(t, schedules.Ensure(ctx, env.Client, taskQueue, schedules.Options{SummarySlackChannel: channel}))
	// An operator pauses retention; a later Ensure changes the spec but
	// keeps the pause.
	require.NoError(t, env.Client.ScheduleClient().GetHandle(ctx, workflows.RetentionScheduleID).Pause(ctx, client.SchedulePauseOptions{Note: "maintenance"}))
	require.NoError(t, schedules.Ensure(ctx, env.Client, taskQueue, schedules.Options{Retention: 2 * day, SummarySlackChannel: "C0OTHER"}))
	d := describe(t, workflows.RetentionScheduleID)
	require.True(t, d.Schedule.State.Paused)
	var rin workflows.RetentionInput
	decodeArg(t, d.Schedule.Action.(*client.ScheduleWorkflowAction), &rin)
	require.Equal(t, 2*day, rin.Retention)
	var sin workflows.SummaryInput
	decodeArg(t, describe(t, workflows.SummaryScheduleID).Schedule.Action.(*client.ScheduleWorkflowAction), &sin)
	require.Equal(t, "C0OTHER", sin.SlackChannel)

	// No channel: the summary schedule goes, and going again is fine.
	for range 2 {
		require.NoError(t, schedules.Ensure(ctx, env.Client, taskQueue, schedules.Options{Retention: 2 * day}))
		_, err := env.Client.ScheduleClient().GetHandle(ctx, workflows.SummaryScheduleID).Describe(ctx)
		var nf *serviceerror.NotFound
		require.True(t, errors.As(err, &nf), "summary schedule should be gone: %v", err)
	}

	t.Run("invalid options are refused", func(t *testing.T) {
		require.ErrorContains(t, schedules.Ensure(ctx, env.Client, taskQueue, schedules.Options{Retention: time.Minute}), "below the minimum")
		require.ErrorContains(t, schedules.Ensure(ctx, env.Client, taskQueue, schedules.Options{SummaryEvery: time.Second, SummarySlackChannel: channel}), "below a minute")
	})
}

func TestEnsure_FleetScan(t *testing.T) {
	ctx := context.Background()
	reset(t)
	fleetScan := func() (*client.ScheduleDescription, error) {
		return env.Client.ScheduleClient().GetHandle(ctx, workflows.FleetScanScheduleID).Describe(ctx)
	}
	// No broker: no schedule.
	require.NoError(t, schedules.Ensure(ctx, env.Client, taskQueue, schedules.Options{}))
	_, err := fleetScan()
	var nf *serviceerror.NotFound
	require.True(t, errors.As(err, &nf), "no fleet scan without a broker: %v", err)

	for _, every := range []time.Duration{workflows.DefaultFleetScanEvery, 5 * time.Minute} {
		require.NoError(t, schedules.Ensure(ctx, env.Client, taskQueue, schedules.Options{BrokerScanEvery: every}))
		d, err := fleetScan()
		require.NoError(t, err)
		require.Len(t, d.Schedule.Spec.Intervals, 1)
		require.Equal(t, every, d.Schedule.Spec.Intervals[0].Every)
		require.Equal(t, enums.SCHEDULE_OVERLAP_POLICY_SKIP, d.Schedule.Policy.Overlap)
		act, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
		require.True(t, ok)
		require.Equal(t, "FleetScan", act.Workflow)
		require.Equal(t, workflows.FleetScanScheduleID, act.ID)
		require.Equal(t, taskQueue, act.TaskQueue)
		require.Equal(t, schedules.FleetScanTimeout, act.WorkflowExecutionTimeout)
		kind, ok := act.TypedSearchAttributes.GetKeyword(workflows.VigilKindKey)
		require.True(t, ok)
		require.Equal(t, workflows.KindSchedule, kind)
	}

	// The broker is removed from the configuration: the schedule goes.
	require.NoError(t, schedules.Ensure(ctx, env.Client, taskQueue, schedules.Options{}))
	_, err = fleetScan()
	require.True(t, errors.As(err, &nf), "fleet scan schedule should be gone: %v", err)
	require.ErrorContains(t, schedules.Ensure(ctx, env.Client, taskQueue, schedules.Options{BrokerScanEvery: time.Second}), "below a minute")
}

// startWorker runs the capacity workflows and activities on taskQueue until
// the test ends.
func startWorker(t *testing.T, slackURL string) {
	t.Helper()
	w := sdkworker.New(env.Client, taskQueue, sdkworker.Options{})
	w.RegisterWorkflow(workflows.SnapshotRetention)
	w.RegisterWorkflow(workflows.CapacitySummary)
	london, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	w.RegisterActivity(&activities.CapacityMaintenance{
		Store: &watch.Store{DB: env.DB}, London: london,
		Slack: slacknotify.New(slacknotify.Config{Token: "xoxb-schedules", APIURL: slackURL}),
	})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
}

// triggerAndWait triggers the schedule, waits for its run's result and
// returns the run and the action's nominal time.
func triggerAndWait(t *testing.T, id string, result any) (client.WorkflowRun, time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := env.Client.ScheduleClient().GetHandle(ctx, id)
	require.NoError(t, h.Trigger(ctx, client.ScheduleTriggerOptions{}))
	var wfID string
	var nominal time.Time
	require.Eventually(t, func() bool {
		d, err := h.Describe(ctx)
		if err != nil || len(d.Info.RecentActions) == 0 || d.Info.RecentActions[0].StartWorkflowResult == nil {
			return false
		}
		wfID = d.Info.RecentActions[0].StartWorkflowResult.WorkflowID
		nominal = d.Info.RecentActions[0].ScheduleTime
		return true
	}, 30*time.Second, 100*time.Millisecond)
	// Wait by polling: a history long poll that misses the close event
	// only returns after the server's 20 s long-poll interval.
	require.Eventually(t, func() bool {
		d, err := env.Client.DescribeWorkflowExecution(ctx, wfID, "")
		return err == nil && d.WorkflowExecutionInfo.Status != enums.WORKFLOW_EXECUTION_STATUS_RUNNING
	}, 30*time.Second, 50*time.Millisecond)
	run := env.Client.GetWorkflow(ctx, wfID, "")
	require.NoError(t, run.Get(ctx, result))
	return run, nominal
}

func TestTriggeredSchedulesRun(t *testing.T) {
	ctx := context.Background()
	reset(t)
	srv := slackfake.New(t)
	startWorker(t, srv.APIURL())
	require.NoError(t, schedules.Ensure(ctx, env.Client, taskQueue, schedules.Options{SummarySlackChannel: channel}))

	t.Run("retention", func(t *testing.T) {
		watch := uuid.NewString()
		now := time.Now().UTC()
		for _, at := range []time.Time{now.Add(-40 * day), now.Add(-31 * day), now.Add(-29 * day), now} {
			_, err := env.DB.Exec(`INSERT INTO snapshots (watch_id, poll_id, service_id, polled_at) VALUES ($1, $2, 'S1', $3)`,
				watch, uuid.NewString(), at)
			require.NoError(t, err)
		}
		var res workflows.RetentionResult
		run, nominal := triggerAndWait(t, workflows.RetentionScheduleID, &res)
		require.True(t, nominal.Truncate(time.Second).Add(-30*day).Equal(res.Before), "cut-off %s counts back from the nominal time %s", res.Before, nominal)
		require.Equal(t, int64(2), res.Deleted)
		require.WithinDuration(t, now.Add(-30*day), res.Before, time.Minute)
		var left int
		require.NoError(t, env.DB.Get(&left, `SELECT count(*) FROM snapshots WHERE watch_id = $1`, watch))
		require.Equal(t, 2, left)

		desc, err := env.Client.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
		require.NoError(t, err)
		require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.WorkflowExecutionInfo.Status)
		kind := desc.WorkflowExecutionInfo.SearchAttributes.GetIndexedFields()["VigilKind"]
		require.NotNil(t, kind)
		var k string
		require.NoError(t, converter.GetDefaultDataConverter().FromPayload(kind, &k))
		require.Equal(t, workflows.KindSchedule, k)
		env.ReplayAndRecord(t, run.GetID(), run.GetRunID(), "snapshot_retention.json")
	})

	t.Run("summary", func(t *testing.T) {
		var res workflows.SummaryResult
		run, nominal := triggerAndWait(t, workflows.SummaryScheduleID, &res)
		env.ReplayAndRecord(t, run.GetID(), run.GetRunID(), "capacity_summary.json")
		require.True(t, nominal.Truncate(time.Second).Equal(res.At), "summary at %s, nominal time %s", res.At, nominal)
		require.True(t, res.Posted)
		msgs := srv.Messages(channel)
		require.Len(t, msgs, 1)
		london, err := time.LoadLocation("Europe/London")
		require.NoError(t, err)
		require.Equal(t, "At "+res.At.In(london).Format("15:04")+", there are no services indicating low capacity.", msgs[0].Text)
		var atts []struct {
			Fallback string `json:"fallback"`
		}
		require.NoError(t, json.Unmarshal(msgs[0].Attachments, &atts))
		require.Equal(t, "Capacity Status Summary", atts[0].Fallback)
	})
}
