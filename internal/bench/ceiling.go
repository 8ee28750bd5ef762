package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	temporalsdk "go.temporal.io/sdk/client"
)

// CeilingReport compares the stack's incident throughput with the bare
// engine's on the same stack and in the same run: the one-activity
// SystemCheck workflow, driven at its own maximum, is the reference.
type CeilingReport struct {
	// Concurrency is how many requests each phase keeps in flight.
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	// SystemChecksPerSecond is the bare reference: completed one-activity
	// workflows per second (each answered after its row is written).
	SystemChecksPerSecond float64 `json:"system_checks_per_s"`
	SystemCheckErrors     int     `json:"system_check_errors"`
	// IncidentsPerSecond counts incidents fully assigned and paged, over the
	// span they needed (from the phase's start to the last first page).
	IncidentsCreated   int     `json:"incidents_created"`
	IncidentsPaged     int     `json:"incidents_paged"`
	IncidentsPerSecond float64 `json:"incidents_per_s"`
	IncidentErrors     int     `json:"incident_errors"`
	// Ratio is IncidentsPerSecond / SystemChecksPerSecond.
	Ratio float64 `json:"ratio"`
}

// closedLoop runs fn from concurrency workers back to back for d, and
// returns how many calls succeeded and failed.
func closedLoop(ctx context.Context, concurrency int, d time.Duration, fn func(i int) error) (ok, failed int) {
	var n, okN, failN atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := fn(int(n.Add(1))); err != nil {
					failN.Add(1)
					continue
				}
				okN.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(okN.Load()), int(failN.Load())
}

// ceiling drives the bare reference, then new incidents, each at its own
// maximum (closed loop), for o.CeilingDuration each.
func ceiling(ctx context.Context, c *client, staff, run string, o IncidentsOptions, progress io.Writer, incidentTimesOf func([]string) (assignedSummary, error)) (*CeilingReport, []benchAlert, error) {
	rep := &CeilingReport{Concurrency: o.CeilingConcurrency, Seconds: o.CeilingDuration.Seconds()}
	fmt.Fprintf(progress, "ceiling: SystemCheck workflows, %d in flight, for %s\n", o.CeilingConcurrency, o.CeilingDuration)
	start := time.Now()
	done, failed := closedLoop(ctx, o.CeilingConcurrency, o.CeilingDuration, func(int) error {
		_, err := c.post(ctx, "/v1/system/check?wait=true", nil, staff)
		return err
	})
	rep.SystemChecksPerSecond = float64(done) / time.Since(start).Seconds()
	rep.SystemCheckErrors = failed

	time.Sleep(o.Settle)
	fmt.Fprintf(progress, "ceiling: new incidents, %d in flight, for %s\n", o.CeilingConcurrency, o.CeilingDuration)
	ids := newIDs()
	var alerts []benchAlert
	var mu sync.Mutex
	start = time.Now()
	_, rep.IncidentErrors = closedLoop(ctx, o.CeilingConcurrency, o.CeilingDuration, func(i int) error {
		key := fmt.Sprintf("B-%s-C%d", run, i)
		mu.Lock()
		alerts = append(alerts, benchAlert{"FALL_DETECTED", key})
		mu.Unlock()
		id, err := c.alert(ctx, "FALL_DETECTED", key, "")
		if err == nil {
			ids.add(id)
		}
		return err
	})
	rep.IncidentsCreated = len(ids.all())
	time.Sleep(o.Settle)
	paged, err := incidentTimesOf(ids.all())
	if err != nil {
		return nil, alerts, err
	}
	rep.IncidentsPaged = paged.n
	if paged.n > 0 {
		span := max(paged.last.Sub(start), o.CeilingDuration)
		rep.IncidentsPerSecond = float64(paged.n) / span.Seconds()
	}
	if rep.SystemChecksPerSecond > 0 {
		rep.Ratio = rep.IncidentsPerSecond / rep.SystemChecksPerSecond
	}
	return rep, alerts, nil
}

// workflowTaskTimeouts counts the workflow-task time-outs in the histories
// of every workflow started since since (a benchmark run's window): none
// is the goal, as each costs the workflow its timeout.
func workflowTaskTimeouts(ctx context.Context, tc temporalsdk.Client, namespace string, since time.Time) (workflows, timeouts int, err error) {
	// The workflows the run started (a visibility query on one indexed
	// column: an OR over several is slow on the embedded server's SQLite).
	query := fmt.Sprintf(`StartTime >= %q`, since.UTC().Format(time.RFC3339))
	var token []byte
	for {
		listCtx, cancel := context.WithTimeout(ctx, time.Minute)
		resp, err := tc.ListWorkflow(listCtx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace, Query: query, PageSize: 200, NextPageToken: token,
		})
		cancel()
		if err != nil {
			return workflows, timeouts, fmt.Errorf("list workflows: %w", err)
		}
		for _, e := range resp.Executions {
			workflows++
			it := tc.GetWorkflowHistory(ctx, e.Execution.WorkflowId, e.Execution.RunId, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					return workflows, timeouts, fmt.Errorf("read history of %s: %w", e.Execution.WorkflowId, err)
				}
				if ev.EventType == enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT && ev.EventTime.AsTime().After(since) {
					timeouts++
				}
			}
		}
		token = resp.NextPageToken
		if len(token) == 0 {
			return workflows, timeouts, nil
		}
	}
}
