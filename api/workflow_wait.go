package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// Waiting for a run to close.
//
// The SDK's WorkflowRun.Get long-polls Temporal's history for the close
// event in one call that lasts until the caller's deadline. Against
// `vigil dev`, 4 of 600 `?wait=true` checks waited 14.0 s that way,
// though each run had closed within 35 ms of its start: the poll slept
// until one second before its deadline. The server wakes such a poll
// through a one-slot channel per waiter and drops a wake-up while the
// slot is still full (go.temporal.io/server
// service/history/events/notifier.go), and a run's last events land
// milliseconds apart. awaitClose polls in slices instead; each new call
// reads the run's state before it waits, so a lost wake-up costs at most
// one slice.
const (
	// closeWaitSlice bounds one long-poll call.
	closeWaitSlice = 2 * time.Second
	// serverPollBuffer is the part of a call's deadline the server keeps
	// for itself: a long poll answers that long before its deadline, and a
	// call with less time left than this is not held at all.
	serverPollBuffer = time.Second
	// closeRecheckEvery paces the checks of the last second before ctx
	// ends, which is too short to long-poll, and is the shortest time
	// between two calls.
	closeRecheckEvery = 100 * time.Millisecond
)

// awaitClose waits until the run closes and returns its close event, or
// until ctx ends (ctx's error). It needs no payload, so it reads history
// through the raw service and never decodes a result.
func awaitClose(ctx context.Context, tc client.Client, namespace, workflowID, runID string) (*historypb.HistoryEvent, error) {
	for {
		left := closeWaitSlice
		if deadline, ok := ctx.Deadline(); ok {
			left = min(time.Until(deadline), closeWaitSlice)
		}
		poll := left > serverPollBuffer+closeRecheckEvery
		called := time.Now()
		callCtx, cancel := context.WithTimeout(ctx, left)
		resp, err := tc.WorkflowService().GetWorkflowExecutionHistory(callCtx, &workflowservice.GetWorkflowExecutionHistoryRequest{
			Namespace:              namespace,
			Execution:              &commonpb.WorkflowExecution{WorkflowId: workflowID, RunId: runID},
			WaitNewEvent:           poll,
			HistoryEventFilterType: enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT,
			SkipArchival:           true,
		})
		cancel()
		var late *serviceerror.DeadlineExceeded
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &late):
			continue // a busy server answered after the slice: poll again
		case err != nil:
			return nil, fmt.Errorf("wait for %s to close: %w", workflowID, err)
		}
		if events := resp.GetHistory().GetEvents(); len(events) > 0 {
			return events[len(events)-1], nil
		}
		// A call answered at once (the last second, or a server that does
		// not hold history polls) waits out the rest of closeRecheckEvery,
		// so the calls never come faster than that.
		if pause := closeRecheckEvery - time.Since(called); pause > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(pause):
			}
		}
	}
}
