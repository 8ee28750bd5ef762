package activities

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-health/vigil/internal/incident"
)

// EscalationDispatcher pages escalation steps when they fall due, from the
// steps the incident workflows arm in Postgres (incident.ArmedStep), so a
// page never waits for a workflow task. It runs each step as PageStep does,
// in two halves: the pick, made up to Lead ahead (PageStep's pick, recorded
// as the step's), then, at the due time, the page, sent with the other
// steps due then in one transaction that first checks the steps are still
// armed (PageArmedSteps). The workflow's own timer runs the step later,
// finds its pick recorded and its page sent, and pages nobody again. The
// dispatcher is only an accelerator: when it is down or behind, the
// workflow's timer pages as before.
type EscalationDispatcher struct {
	Incidents *Incidents
	// Concurrency is how many picks run at once; zero means 8.
	Concurrency int
	// Poll is the longest it sleeps before looking for newly armed steps;
	// zero means 250 ms.
	Poll time.Duration
	// Lead is how far ahead of its due time a step is claimed and its
	// person picked (on call at the due time, least busy at the pick), so
	// that at the due time only the page is left; zero means 10 s.
	Lead time.Duration
	// Lease is how long past the claim a claimed step is left to this
	// dispatcher before another may claim it (a dispatcher killed before
	// the page); zero means Lead + 15 s.
	Lease time.Duration
	// MaxLate is how overdue a step may be for the dispatcher to page it:
	// one later than that (the worker was down) is left to the workflow,
	// whose late timer sends one consolidated, delayed page. Zero means 30 s.
	MaxLate time.Duration

	once     sync.Once
	picking  chan struct{}
	wake     chan struct{}
	mu       sync.Mutex
	pending  []incident.ArmedPage // picked, not yet paged, by due time
	inFlight atomic.Int64         // claimed, not yet paged
}

// dispatchBatch is the most steps one claim takes; dispatchInFlight is the
// most steps claimed and not yet paged; pageBatch is the most pages one
// transaction sends.
const (
	dispatchBatch    = 64
	dispatchInFlight = 2048
	pageBatch        = 256
)

func (d *EscalationDispatcher) init() {
	d.once.Do(func() {
		d.picking = make(chan struct{}, cmp.Or(max(d.Concurrency, 0), 8))
		d.wake = make(chan struct{}, 1)
	})
}

// Run pages due steps until ctx ends: it claims the steps due within Lead,
// picks for them at once, and hands them to the pager, which sends every
// step due at once in one transaction.
func (d *EscalationDispatcher) Run(ctx context.Context) {
	d.init()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() { defer wg.Done(); d.pager(ctx) }()
	for ctx.Err() == nil {
		var (
			steps []incident.DueStep
			err   error
		)
		if d.inFlight.Load() < dispatchInFlight {
			steps, err = d.claim(ctx)
		}
		for _, st := range steps {
			d.inFlight.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.picking <- struct{}{}
				ap, err := d.pick(ctx, st)
				<-d.picking
				if err != nil {
					d.inFlight.Add(-1)
					if ctx.Err() == nil {
						slog.WarnContext(ctx, "escalation dispatcher: the step is left to its workflow's timer", "err", err)
					}
					return
				}
				d.push(ap)
			}()
		}
		if len(steps) > 0 {
			continue // there may be more due
		}
		if err != nil && ctx.Err() == nil {
			slog.WarnContext(ctx, "escalation dispatcher", "err", err)
		}
		wait := cmp.Or(d.Poll, 250*time.Millisecond)
		if err == nil && d.inFlight.Load() < dispatchInFlight {
			if next, found, err := d.Incidents.store().NextStepDue(ctx, time.Now().Add(-d.maxLate())); err == nil && found {
				wait = min(max(time.Until(next.Add(-d.lead())), 5*time.Millisecond), wait)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// push hands a picked step to the pager.
func (d *EscalationDispatcher) push(ap incident.ArmedPage) {
	d.mu.Lock()
	i, _ := slices.BinarySearchFunc(d.pending, ap.Step.Due, dueCmp)
	d.pending = slices.Insert(d.pending, i, ap)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// dueCmp orders a page after every step due at or before t.
func dueCmp(p incident.ArmedPage, t time.Time) int {
	if p.Step.Due.After(t) {
		return 1
	}
	return -1
}

// pager sends the picked steps' pages as they fall due, all those due at
// once in one transaction.
func (d *EscalationDispatcher) pager(ctx context.Context) {
	for ctx.Err() == nil {
		d.mu.Lock()
		wait := time.Hour
		if len(d.pending) > 0 {
			wait = time.Until(d.pending[0].Step.Due)
		}
		if wait <= 0 {
			n, _ := slices.BinarySearchFunc(d.pending, time.Now(), dueCmp)
			n = min(max(n, 1), pageBatch)
			due := slices.Clone(d.pending[:n])
			d.pending = slices.Delete(d.pending, 0, n)
			d.mu.Unlock()
			if err := d.page(ctx, due); err != nil && ctx.Err() == nil {
				slog.WarnContext(ctx, "escalation dispatcher: the steps are left to their workflows' timers", "err", err)
			}
			d.inFlight.Add(-int64(n))
			continue
		}
		d.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-d.wake:
		case <-time.After(wait):
		}
	}
}

// DispatchDue claims the steps due within Lead and pages them when due; it
// returns how many it claimed.
func (d *EscalationDispatcher) DispatchDue(ctx context.Context) (int, error) {
	steps, err := d.claim(ctx)
	if err != nil || len(steps) == 0 {
		return 0, err
	}
	return len(steps), d.dispatch(ctx, steps)
}

func (d *EscalationDispatcher) claim(ctx context.Context) ([]incident.DueStep, error) {
	return d.Incidents.store().ClaimDueSteps(ctx, time.Now(), incident.DueWindow{
		Lead: d.lead(), MaxLate: d.maxLate(), Limit: dispatchBatch, Lease: cmp.Or(d.Lease, d.lead()+15*time.Second)})
}

// dispatch picks for the claimed steps, then pages them as they fall due.
// A step whose pick or page failed keeps its claim until the lease runs
// out, then is tried again (or its workflow's timer pages it first).
func (d *EscalationDispatcher) dispatch(ctx context.Context, due []incident.DueStep) error {
	d.init()
	var (
		wg    sync.WaitGroup
		pages = make([]incident.ArmedPage, len(due))
		errs  = make([]error, len(due))
	)
	for i, st := range due {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.picking <- struct{}{}
			defer func() { <-d.picking }()
			pages[i], errs[i] = d.pick(ctx, st)
		}()
	}
	wg.Wait()
	var ready []incident.ArmedPage
	for i := range due {
		if errs[i] == nil {
			ready = append(ready, pages[i])
		}
	}
	slices.SortFunc(ready, func(a, b incident.ArmedPage) int { return a.Step.Due.Compare(b.Step.Due) })
	for len(ready) > 0 {
		if wait := time.Until(ready[0].Step.Due); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		now := time.Now()
		n, _ := slices.BinarySearchFunc(ready, now, dueCmp)
		if err := d.page(ctx, ready[:n]); err != nil {
			errs = append(errs, err)
		}
		ready = ready[n:]
	}
	return errors.Join(errs...)
}

// pick is the first half of PageStep for a claimed step.
func (d *EscalationDispatcher) pick(ctx context.Context, st incident.DueStep) (incident.ArmedPage, error) {
	var in PageStepInput
	if err := json.Unmarshal(st.Input, &in); err != nil {
		return incident.ArmedPage{}, fmt.Errorf("decode armed step %s of %s: %w", st.Step, st.IncidentID, err)
	}
	picked, err := d.Incidents.pickStep(ctx, &in)
	if err != nil {
		return incident.ArmedPage{}, fmt.Errorf("pick for step %s of %s: %w", st.Step, st.IncidentID, err)
	}
	return incident.ArmedPage{Step: st, Page: picked.page}, nil
}

// page is the second half of PageStep for steps now due: their pages in
// one transaction, those of steps still armed only.
func (d *EscalationDispatcher) page(ctx context.Context, steps []incident.ArmedPage) error {
	res, err := d.Incidents.store().PageArmedSteps(ctx, steps)
	if err != nil {
		return fmt.Errorf("page %d due steps: %w", len(steps), err)
	}
	for i, r := range res {
		if r.Armed && steps[i].Page != nil {
			d.Incidents.observePage(*steps[i].Page, r.Sent)
		}
	}
	return nil
}

func (d *EscalationDispatcher) lead() time.Duration    { return cmp.Or(d.Lead, 10*time.Second) }
func (d *EscalationDispatcher) maxLate() time.Duration { return cmp.Or(d.MaxLate, 30*time.Second) }
