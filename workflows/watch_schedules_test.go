package workflows_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/workflows"
)

var (
	capacityStart = time.Date(2026, 7, 1, 2, 30, 0, 0, time.UTC)
	scheduledAt   = time.Date(2026, 7, 1, 2, 30, 0, 0, time.UTC).Add(-5 * time.Second)
	scheduledKey  = temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime")
)

func capacityEnv(t *testing.T, scheduled bool) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(capacityStart)
	if scheduled {
		require.NoError(t, env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(scheduledKey.ValueSet(scheduledAt))))
	}
	var a *activities.CapacityMaintenance
	env.RegisterActivity(a)
	return env
}

func TestSnapshotRetention(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name       string
		input      *workflows.RetentionInput
		scheduled  bool
		failFirst  int // attempts that fail before one succeeds
		wantBefore time.Time
		wantErr    string
		wantCalls  int
	}{
		{"default retention is 30 days", &workflows.RetentionInput{}, false, 0, capacityStart.Add(-30 * day), "", 1},
		{"nil input uses the default", nil, false, 0, capacityStart.Add(-30 * day), "", 1},
		{"explicit retention", &workflows.RetentionInput{Retention: 7 * day}, false, 0, capacityStart.Add(-7 * day), "", 1},
		{"counts back from the scheduled time", &workflows.RetentionInput{Retention: day}, true, 0, scheduledAt.Add(-day), "", 1},
		{"a failed attempt is retried", &workflows.RetentionInput{Retention: day}, false, 2, capacityStart.Add(-day), "", 3},
		{"a retention below the minimum is refused", &workflows.RetentionInput{Retention: time.Minute}, false, 0, time.Time{}, "below the minimum", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := capacityEnv(t, tt.scheduled)
			var a *activities.CapacityMaintenance
			calls := 0
			env.OnActivity(a.DeleteOldSnapshots, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in *activities.DeleteSnapshotsInput) (*activities.DeleteSnapshotsResult, error) {
					calls++
					require.True(t, tt.wantBefore.Equal(in.Before), "before %s, want %s", in.Before, tt.wantBefore)
					require.Equal(t, workflows.SnapshotDeleteBatch, in.BatchSize)
					if calls <= tt.failFirst {
						return nil, errors.New("postgres went away")
					}
					return &activities.DeleteSnapshotsResult{Deleted: 42}, nil
				}).Maybe()
			env.ExecuteWorkflow(workflows.SnapshotRetention, tt.input)
			require.True(t, env.IsWorkflowCompleted())
			require.Equal(t, tt.wantCalls, calls)
			if tt.wantErr != "" {
				require.ErrorContains(t, env.GetWorkflowError(), tt.wantErr)
				return
			}
			require.NoError(t, env.GetWorkflowError())
			var res workflows.RetentionResult
			require.NoError(t, env.GetWorkflowResult(&res))
			require.Equal(t, int64(42), res.Deleted)
			require.True(t, tt.wantBefore.Equal(res.Before))
		})
	}
}

func TestCapacitySummary(t *testing.T) {
	tests := []struct {
		name       string
		input      *workflows.SummaryInput
		scheduled  bool
		activity   func(calls int) (*activities.PostSummaryResult, error)
		wantAt     time.Time
		wantPosted bool
		wantErr    string
		wantCalls  int
	}{
		{
			name:   "no channel posts nothing",
			input:  &workflows.SummaryInput{},
			wantAt: capacityStart, wantCalls: 0,
		},
		{
			name:  "posts the summary at the start time",
			input: &workflows.SummaryInput{SlackChannel: "C0CAPACITY"},
			activity: func(int) (*activities.PostSummaryResult, error) {
				return &activities.PostSummaryResult{Posted: true, Services: 3, TS: "1.2"}, nil
			},
			wantAt: capacityStart, wantPosted: true, wantCalls: 1,
		},
		{
			name:      "speaks of the scheduled time",
			input:     &workflows.SummaryInput{SlackChannel: "C0CAPACITY"},
			scheduled: true,
			activity: func(int) (*activities.PostSummaryResult, error) {
				return &activities.PostSummaryResult{Posted: true, Services: 3}, nil
			},
			wantAt: scheduledAt, wantPosted: true, wantCalls: 1,
		},
		{
			name:  "a rate limit is retried",
			input: &workflows.SummaryInput{SlackChannel: "C0CAPACITY"},
			activity: func(calls int) (*activities.PostSummaryResult, error) {
				if calls == 1 {
					return nil, temporal.NewApplicationError("rate limited", activities.ErrTypeSlackRetryable)
				}
				return &activities.PostSummaryResult{Posted: true, Services: 3}, nil
			},
			wantAt: capacityStart, wantPosted: true, wantCalls: 2,
		},
		{
			name:  "a permanent Slack error is not retried",
			input: &workflows.SummaryInput{SlackChannel: "C0GONE"},
			activity: func(int) (*activities.PostSummaryResult, error) {
				return nil, temporal.NewApplicationError("channel_not_found", activities.ErrTypeSlackPermanent)
			},
			wantErr: "channel_not_found", wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := capacityEnv(t, tt.scheduled)
			var a *activities.CapacityMaintenance
			calls := 0
			env.OnActivity(a.PostCapacitySummary, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in *activities.PostSummaryInput) (*activities.PostSummaryResult, error) {
					calls++
					require.Equal(t, tt.input.SlackChannel, in.Channel)
					require.True(t, tt.wantAt.Equal(in.At) || tt.wantErr != "", "at %s, want %s", in.At, tt.wantAt)
					return tt.activity(calls)
				}).Maybe()
			env.ExecuteWorkflow(workflows.CapacitySummary, tt.input)
			require.True(t, env.IsWorkflowCompleted())
			require.Equal(t, tt.wantCalls, calls)
			if tt.wantErr != "" {
				require.ErrorContains(t, env.GetWorkflowError(), tt.wantErr)
				return
			}
			require.NoError(t, env.GetWorkflowError())
			var res workflows.SummaryResult
			require.NoError(t, env.GetWorkflowResult(&res))
			require.True(t, tt.wantAt.Equal(res.At), "at %s, want %s", res.At, tt.wantAt)
			require.Equal(t, tt.wantPosted, res.Posted)
		})
	}
}
