package activities

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
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

// DispatchDue claims the steps due now and pages them: each step's pick as
// PageStep makes it (several at once), then their pages in one transaction,
// so pages due together to one person share a commit. It returns how many
// steps it claimed.
func (d *EscalationDispatcher) DispatchDue(ctx context.Context) (int, error) {
	store := d.Incidents.store()
	due, err := store.ClaimDueSteps(ctx, time.Now(), d.maxLate(), dispatchBatch, cmp.Or(d.Lease, 15*time.Second))
	if err != nil || len(due) == 0 {
		return 0, err
	}
	var (
		wg     sync.WaitGroup
		sem    = make(chan struct{}, cmp.Or(max(d.Concurrency, 0), 8))
		picked = make([]*pickedStep, len(due))
		errs   = make([]error, len(due))
	)
	for i, st := range due {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var in PageStepInput
			if err := json.Unmarshal(st.Input, &in); err != nil {
				errs[i] = fmt.Errorf("decode armed step %s of %s: %w", st.Step, st.IncidentID, err)
				return
			}
			if picked[i], errs[i] = d.Incidents.pickStep(ctx, &in); errs[i] != nil {
				errs[i] = fmt.Errorf("pick for step %s of %s: %w", st.Step, st.IncidentID, errs[i])
			}
		}()
	}
	wg.Wait()
	// A step that failed keeps its claim until the lease runs out, then is
	// tried again (or its workflow's timer pages it first).
	var (
		send []*pickedStep
		done []incident.DueStep
	)
	for i, st := range due {
		if errs[i] == nil {
			send, done = append(send, picked[i]), append(done, st)
		}
	}
	if err := d.Incidents.sendSteps(ctx, send); err != nil {
		return len(due), fmt.Errorf("page %d due steps: %w", len(send), err)
	}
	if err := store.DoneSteps(ctx, done); err != nil {
		return len(due), err
	}
	return len(due), errors.Join(errs...)
}

func (d *EscalationDispatcher) maxLate() time.Duration { return cmp.Or(d.MaxLate, 30*time.Second) }
