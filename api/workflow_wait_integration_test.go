//go:build integration

package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/vigil-health/vigil/api"
)

// Workflows that close the ways a waiter must tell apart.
func sleepsThenCompletes(ctx workflow.Context, d time.Duration) error { return workflow.Sleep(ctx, d) }

func failsAtOnce(workflow.Context) error {
	return temporal.NewNonRetryableApplicationError("refused on purpose", "test", nil)
}

func waitsForASignal(ctx workflow.Context) error {
	workflow.GetSignalChannel(ctx, "never-sent").Receive(ctx, nil)
	return nil
}

// TestAwaitClose: the close event of a run that outlives one poll slice
// (so the wait re-polls), of a failed run, ctx's own error for a run still
// open when ctx ends (returned when ctx ends, through the last second that
// is too short to long-poll), and Temporal's not-found for an unknown id.
func TestAwaitClose(t *testing.T) {
	taskQueue := "await-close-" + uuid.NewString()
	w := worker.New(env.Client, taskQueue, worker.Options{})
	w.RegisterWorkflow(sleepsThenCompletes)
	w.RegisterWorkflow(failsAtOnce)
	w.RegisterWorkflow(waitsForASignal)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	tests := []struct {
		name      string
		workflow  any
		args      []any
		wait      time.Duration
		wantEvent enumspb.EventType
		wantErr   error
		atLeast   time.Duration
	}{
		{"completed after more than one slice", sleepsThenCompletes, []any{2500 * time.Millisecond}, 20 * time.Second,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, nil, 2500 * time.Millisecond},
		{"failed", failsAtOnce, nil, 20 * time.Second, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, nil, 0},
		{"still open when the wait ends", waitsForASignal, nil, 2500 * time.Millisecond,
			enumspb.EVENT_TYPE_UNSPECIFIED, context.DeadlineExceeded, 2500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			// Timed from before the start: the run's timer cannot fire
			// earlier than its duration after this.
			started := time.Now()
			run, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: "await-close-" + uuid.NewString(), TaskQueue: taskQueue, WorkflowExecutionTimeout: time.Minute,
			}, tt.workflow, tt.args...)
			require.NoError(t, err)
			t.Cleanup(func() { _ = env.Client.TerminateWorkflow(context.Background(), run.GetID(), "", "test over") })

			waitCtx, cancel := context.WithTimeout(ctx, tt.wait)
			defer cancel()
			event, err := api.AwaitClose(waitCtx, env.Client, env.Temporal.Namespace(), run.GetID(), run.GetRunID())
			took := time.Since(started)
			require.GreaterOrEqual(t, took, tt.atLeast)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Nil(t, event)
				require.Less(t, took, tt.wait+2*time.Second, "the wait ends with its context")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantEvent, event.GetEventType())
			// The event is the one the run's history ends with.
			var last enumspb.EventType
			it := env.Client.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
			for it.HasNext() {
				e, err := it.Next()
				require.NoError(t, err)
				last = e.GetEventType()
			}
			require.Equal(t, last, event.GetEventType())
		})
	}

	t.Run("unknown workflow", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := api.AwaitClose(ctx, env.Client, env.Temporal.Namespace(), "await-close-none-"+uuid.NewString(), "")
		var notFound *serviceerror.NotFound
		require.ErrorAs(t, err, &notFound)
	})
}
