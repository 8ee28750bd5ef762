package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// stagedRun is a workflow run in two stages: setup registers its handlers
// and loads its state, run does its work until it ends or continues as new.
type stagedRun interface {
	setup(ctx workflow.Context) error
	run(ctx workflow.Context) error
}

// setUpAndRun sets r up, then runs it.
func setUpAndRun(ctx workflow.Context, r stagedRun) error {
	if err := r.setup(ctx); err != nil {
		return err
	}
	return r.run(ctx)
}

// doublingRetry retries an activity from initial, doubling the wait up to
// maxInterval; an error of a nonRetryable type fails it at once.
func doublingRetry(initial, maxInterval time.Duration, nonRetryable ...string) *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:        initial,
		BackoffCoefficient:     2,
		MaximumInterval:        maxInterval,
		NonRetryableErrorTypes: nonRetryable,
	}
}
