package workflows_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/systemcheck"
	"github.com/vigil-health/vigil/workflows"
)

func TestSystemCheck(t *testing.T) {
	recorded := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		input    *workflows.SystemCheckInput
		activity func(context.Context, *systemcheck.RecordInput) (*systemcheck.Recorded, error)
		wantErr  string
		calls    int
	}{
		{
			name:  "records the check and returns the row's facts",
			input: &workflows.SystemCheckInput{CheckID: "c1", Note: "hello"},
			activity: func(_ context.Context, in *systemcheck.RecordInput) (*systemcheck.Recorded, error) {
				if in.CheckID != "c1" || in.Note != "hello" || in.WorkflowID == "" || in.RunID == "" {
					return nil, temporal.NewNonRetryableApplicationError("bad input", "Test", nil)
				}
				return &systemcheck.Recorded{RecordedAt: recorded, WorkerIdentity: "w1"}, nil
			},
			calls: 1,
		},
		{
			name:  "retries a failing database until it answers",
			input: &workflows.SystemCheckInput{CheckID: "c2"},
			activity: func() func(context.Context, *systemcheck.RecordInput) (*systemcheck.Recorded, error) {
				n := 0
				return func(context.Context, *systemcheck.RecordInput) (*systemcheck.Recorded, error) {
					n++
					if n < 3 {
						return nil, errors.New("connection refused")
					}
					return &systemcheck.Recorded{RecordedAt: recorded, WorkerIdentity: "w1"}, nil
				}
			}(),
			calls: 3,
		},
		{
			name:  "fails after the one-minute schedule-to-close budget",
			input: &workflows.SystemCheckInput{CheckID: "c3"},
			activity: func(context.Context, *systemcheck.RecordInput) (*systemcheck.Recorded, error) {
				return nil, errors.New("connection refused")
			},
			wantErr: "activity error",
			calls:   -1,
		},
		{
			name:    "rejects an empty check id without calling the database",
			input:   &workflows.SystemCheckInput{},
			wantErr: "check id is required",
			calls:   0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
			env := s.NewTestWorkflowEnvironment()
			calls := 0
			var db *activities.Database
			env.RegisterActivity(db)
			if tt.activity != nil {
				env.OnActivity(db.RecordSystemCheck, anyCtx, anyInput).Return(
					func(ctx context.Context, in *systemcheck.RecordInput) (*systemcheck.Recorded, error) {
						calls++
						return tt.activity(ctx, in)
					})
			}
			env.ExecuteWorkflow(workflows.SystemCheck, tt.input)
			require.True(t, env.IsWorkflowCompleted())
			if tt.wantErr != "" {
				require.ErrorContains(t, env.GetWorkflowError(), tt.wantErr)
			} else {
				require.NoError(t, env.GetWorkflowError())
				var res workflows.SystemCheckResult
				require.NoError(t, env.GetWorkflowResult(&res))
				require.Equal(t, tt.input.CheckID, res.CheckID)
				require.Equal(t, recorded, res.RecordedAt)
				require.Equal(t, "w1", res.WorkerIdentity)
			}
			if tt.calls >= 0 {
				require.Equal(t, tt.calls, calls)
			} else {
				require.Greater(t, calls, 3, "the activity is retried until its budget runs out")
			}
		})
	}
}

func TestSystemCheckWorkflowID(t *testing.T) {
	require.Equal(t, "system-check:abc", workflows.SystemCheckWorkflowID("abc"))
}
