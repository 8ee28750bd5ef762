package incident

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// ArmedStep is the escalation step an ASSIGNED incident waits for: the
// workflow writes it with the incident's projection (Record), so the
// worker's dispatcher can page it as soon as it is due, without waiting for
// a workflow task. Input is the step's page as the workflow would run it
// (activities.PageStepInput, JSON).
type ArmedStep struct {
	Step  string
	Due   time.Time
	Input json.RawMessage
}

// DueStep is an armed step a dispatcher has claimed until ClaimedUntil.
type DueStep struct {
	IncidentID   string          `db:"incident_id"`
	Step         string          `db:"step"`
	Due          time.Time       `db:"due_at"`
	Input        json.RawMessage `db:"input"`
	ClaimedUntil time.Time       `db:"claimed_until"`
	Attempts     int             `db:"attempts"`
}

// armStep writes, in the projection's transaction, the step the incident
// now waits for: arm replaces an older projection's step (a step already
// paged stays paged when the same step, due at the same time, is written
// again), and nil cancels it. seq orders the writes as the projection's
// last_seq does, so a late, older write changes nothing.
func armStep(ctx context.Context, tx *sqlx.Tx, incidentID string, seq int, arm *ArmedStep) error {
	if arm == nil {
		if _, err := tx.ExecContext(ctx, `DELETE FROM escalation_schedule WHERE incident_id = $1 AND seq < $2`,
			incidentID, seq); err != nil {
			return fmt.Errorf("cancel the armed step of %s: %w", incidentID, err)
		}
		return nil
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO escalation_schedule AS s (incident_id, step, due_at, seq, input)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (incident_id) DO UPDATE SET
			input = EXCLUDED.input, seq = EXCLUDED.seq,
			claimed_until = CASE WHEN s.step = EXCLUDED.step AND s.due_at = EXCLUDED.due_at THEN s.claimed_until END,
			attempts = CASE WHEN s.step = EXCLUDED.step AND s.due_at = EXCLUDED.due_at THEN s.attempts ELSE 0 END,
			done_at = CASE WHEN s.step = EXCLUDED.step AND s.due_at = EXCLUDED.due_at THEN s.done_at END,
			step = EXCLUDED.step, due_at = EXCLUDED.due_at
		WHERE s.seq < EXCLUDED.seq`, incidentID, arm.Step, arm.Due, seq, []byte(arm.Input)); err != nil {
		return fmt.Errorf("arm step %s of %s: %w", arm.Step, incidentID, err)
	}
	return nil
}

// DueWindow is which armed steps a dispatcher claims, and for how long.
type DueWindow struct {
	// Lead claims steps due up to Lead from now: their pick is made ahead,
	// their page waits for the due time (PageArmedSteps).
	Lead time.Duration
	// MaxLate leaves steps overdue by more than it to the workflow's timer
	// (whose late wake-up sends one consolidated, delayed page).
	MaxLate time.Duration
	// Limit is the most steps one claim takes.
	Limit int
	// Lease is how long a claim holds: a dispatcher killed before it paged
	// leaves its steps to be claimed again when the lease runs out.
	Lease time.Duration
}

// ClaimDueSteps claims the armed steps in the window w around now whose
// incident is still ASSIGNED, each until now + w.Lease; other dispatchers
// skip them until then.
func (s *Store) ClaimDueSteps(ctx context.Context, now time.Time, w DueWindow) ([]DueStep, error) {
	var steps []DueStep
	if err := s.DB.SelectContext(ctx, &steps, `
		UPDATE escalation_schedule s SET claimed_until = $2::timestamptz + $3 * interval '1 microsecond', attempts = s.attempts + 1
		FROM (
			SELECT d.incident_id FROM escalation_schedule d JOIN incidents i ON i.id = d.incident_id
			WHERE d.done_at IS NULL AND d.due_at <= $5 AND d.due_at >= $4 AND (d.claimed_until IS NULL OR d.claimed_until <= $2)
				AND i.status = 'ASSIGNED'
			ORDER BY d.due_at
			LIMIT $1
			FOR UPDATE OF d SKIP LOCKED
		) due
		WHERE s.incident_id = due.incident_id
		RETURNING s.incident_id, s.step, s.due_at, s.input, s.claimed_until, s.attempts`,
		w.Limit, now, w.Lease.Microseconds(), now.Add(-w.MaxLate), now.Add(w.Lead)); err != nil {
		return nil, fmt.Errorf("claim due escalation steps: %w", err)
	}
	return steps, nil
}

// ArmedPage is a claimed step and its page (nil: the step found nobody).
type ArmedPage struct {
	Step DueStep
	Page *InAppPage
}

// ArmedPageResult is what became of an ArmedPage: Armed is false when the
// step was cancelled or replaced since the claim (nothing was sent); Sent is
// its page's sending.
type ArmedPageResult struct {
	Armed bool
	Sent  PageSent
}

// PageArmedSteps sends the pages of claimed steps in one transaction (as
// PageInApps does), those of steps still armed only: it locks their rows
// and checks their incident is still ASSIGNED first, so an
// acknowledgement's projection, which cancels the step, waits for the page
// or makes it go out not at all. The steps are marked done in the same
// transaction. Results are in the order of steps.
func (s *Store) PageArmedSteps(ctx context.Context, steps []ArmedPage) ([]ArmedPageResult, error) {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	ids, names, due := make([]string, len(steps)), make([]string, len(steps)), make([]time.Time, len(steps))
	for i, st := range steps {
		ids[i], names[i], due[i] = st.Step.IncidentID, st.Step.Step, st.Step.Due
	}
	var armed []string
	if err := tx.SelectContext(ctx, &armed, `
		SELECT s.incident_id FROM escalation_schedule s
		JOIN unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS d (incident_id, step, due_at)
			ON s.incident_id = d.incident_id AND s.step = d.step AND s.due_at = d.due_at
		JOIN incidents i ON i.id = s.incident_id
		WHERE s.done_at IS NULL AND i.status = 'ASSIGNED'
		ORDER BY s.incident_id
		FOR UPDATE OF s`, pq.Array(ids), pq.Array(names), pq.Array(due)); err != nil {
		return nil, fmt.Errorf("lock %d armed steps: %w", len(steps), err)
	}
	res := make([]ArmedPageResult, len(steps))
	var (
		pages []InAppPage
		at    []int
		done  []string
	)
	for i, st := range steps {
		if !slices.Contains(armed, st.Step.IncidentID) {
			continue
		}
		res[i].Armed = true
		done = append(done, st.Step.IncidentID)
		if st.Page != nil {
			pages, at = append(pages, *st.Page), append(at, i)
		}
	}
	if len(done) == 0 {
		return res, nil
	}
	sent, err := pageInApps(ctx, tx, pages)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		res[i].Sent = sent[j]
	}
	if _, err := tx.ExecContext(ctx, `UPDATE escalation_schedule SET done_at = now(), claimed_until = NULL WHERE incident_id = ANY($1::uuid[])`,
		pq.Array(done)); err != nil {
		return nil, fmt.Errorf("mark %d escalation steps done: %w", len(done), err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit the pages of %d steps: %w", len(done), err)
	}
	return res, nil
}

// NextStepDue is when the next armed step of an ASSIGNED incident, due
// after since, falls due (or its claim runs out); found is false when no
// step waits.
func (s *Store) NextStepDue(ctx context.Context, since time.Time) (at time.Time, found bool, err error) {
	var next sql.NullTime
	if err := s.DB.GetContext(ctx, &next, `
		SELECT min(greatest(s.due_at, coalesce(s.claimed_until, s.due_at)))
		FROM escalation_schedule s JOIN incidents i ON i.id = s.incident_id
		WHERE s.done_at IS NULL AND s.due_at >= $1 AND i.status = 'ASSIGNED'`, since); err != nil {
		return time.Time{}, false, fmt.Errorf("next escalation step due: %w", err)
	}
	return next.Time, next.Valid, nil
}

// StepPick is whom a page step of an incident picked.
type StepPick struct {
	Recipient string `db:"recipient"`
	Role      string `db:"role"`
	Fallback  bool   `db:"fallback"`
	Reason    string `db:"reason"`
}

// ClaimStepPick records p as the pick of the incident's step unless an
// earlier attempt recorded one, and returns the pick that stands: the first.
func (s *Store) ClaimStepPick(ctx context.Context, incidentID, step string, p StepPick) (StepPick, error) {
	var won StepPick
	if err := s.DB.GetContext(ctx, &won, `
		INSERT INTO incident_step_picks (incident_id, step, recipient, role, fallback, reason)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (incident_id, step) DO UPDATE SET recipient = incident_step_picks.recipient
		RETURNING recipient, role, fallback, reason`,
		incidentID, step, p.Recipient, p.Role, p.Fallback, p.Reason); err != nil {
		return StepPick{}, fmt.Errorf("record the pick of step %s: %w", step, err)
	}
	return won, nil
}

// StepPicked is the pick recorded for the incident's step, if any.
func (s *Store) StepPicked(ctx context.Context, incidentID, step string) (p StepPick, found bool, err error) {
	err = s.DB.GetContext(ctx, &p, `
		SELECT recipient, role, fallback, reason FROM incident_step_picks WHERE incident_id = $1 AND step = $2`,
		incidentID, step)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return StepPick{}, false, nil
	case err != nil:
		return StepPick{}, false, fmt.Errorf("look up the pick of step %s: %w", step, err)
	}
	return p, true, nil
}
