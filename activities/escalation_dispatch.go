package activities

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-health/vigil/internal/incident"
)

// EscalationDispatcher pages escalation steps when they fall due, from the
// steps the incident workflows arm in Postgres (incident.ArmedStep), so a
// page never waits for a workflow task. It runs the step through PageStep,
// as the workflow's timer does later: the step's pick is recorded once and
// the outbox's key is (incident, step, recipient, channel), so the later run
// finds the step done and pages nobody again. It is only an accelerator:
// when it is down or behind, the workflow's timer pages as before.
type EscalationDispatcher struct {
	Incidents *Incidents
	// Concurrency is how many steps are paged at once; zero means 8.
	Concurrency int
	// Poll is the longest it sleeps before looking for newly armed steps;
	// zero means 250 ms.
	Poll time.Duration
	// Lease is how long a claimed step is left to this dispatcher before
	// another may claim it (a dispatcher killed mid-page); zero means 15 s.
	Lease time.Duration
	// MaxLate is how overdue a step may be for the dispatcher to page it:
	// one later than that (the worker was down) is left to the workflow,
	// whose late timer sends one consolidated, delayed page. Zero means 30 s.
	MaxLate time.Duration
}

// dispatchBatch is the most steps one claim takes.
const dispatchBatch = 64

// Run pages due steps until ctx ends.
func (d *EscalationDispatcher) Run(ctx context.Context) {
	poll := cmp.Or(d.Poll, 250*time.Millisecond)
	for ctx.Err() == nil {
		n, err := d.DispatchDue(ctx)
		if err != nil && ctx.Err() == nil {
			slog.WarnContext(ctx, "escalation dispatcher", "err", err)
		}
		if n > 0 && err == nil {
			continue // there may be more due
		}
		wait := poll
		if err == nil {
			if next, found, err := d.Incidents.store().NextStepDue(ctx, time.Now().Add(-d.maxLate())); err == nil && found {
				wait = min(max(time.Until(next), 0), poll)
			}
		}
		if wait <= 0 {
			wait = 5 * time.Millisecond // claimed by another, not yet expired
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// DispatchDue claims the steps due now and pages them; it returns how many
// it claimed.
func (d *EscalationDispatcher) DispatchDue(ctx context.Context) (int, error) {
	store := d.Incidents.store()
	steps, err := store.ClaimDueSteps(ctx, time.Now(), d.maxLate(), dispatchBatch, cmp.Or(d.Lease, 15*time.Second))
	if err != nil {
		return 0, err
	}
	var (
		wg    sync.WaitGroup
		sem   = make(chan struct{}, cmp.Or(max(d.Concurrency, 0), 8))
		errMu sync.Mutex
		first error
	)
	for _, st := range steps {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := d.page(ctx, st); err != nil {
				errMu.Lock()
				if first == nil {
					first = err
				}
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	return len(steps), first
}

// page runs one claimed step; a failure leaves the claim to expire, and the
// step to the next claim or the workflow's timer.
func (d *EscalationDispatcher) page(ctx context.Context, st incident.DueStep) error {
	var in PageStepInput
	if err := json.Unmarshal(st.Input, &in); err != nil {
		return fmt.Errorf("decode armed step %s of %s: %w", st.Step, st.IncidentID, err)
	}
	res, err := d.Incidents.PageStep(ctx, &in)
	if err != nil {
		return fmt.Errorf("page step %s of %s: %w", st.Step, st.IncidentID, err)
	}
	if !res.Pick.Found {
		slog.InfoContext(ctx, "escalation step found nobody to page; the workflow records it",
			"incident_id", st.IncidentID, "step", st.Step)
	}
	return d.Incidents.store().DoneStep(ctx, st)
}

func (d *EscalationDispatcher) maxLate() time.Duration { return cmp.Or(d.MaxLate, 30*time.Second) }
