package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/reference"
)

// escalationRoles are the phase's alert type's roles: FALL_DETECTED's,
// which the other phases rely on.
var escalationRoles = []string{"NURSE", "EMERGENCY_DOCTOR"}

// The escalation phase's own alert type and policy, created in Postgres.
const (
	escalationAlertType = "BENCH_ESCALATION"
	escalationPolicyID  = "alert_type:" + escalationAlertType
	// escalationOpenRate is the rate (incidents/s) the burst is planned
	// for, well below the stack's ceiling on the 2-core machine (23-25/s):
	// incidents opened after the planned end can only get the shortest wait,
	// which widens the due window (the report shows it).
	escalationOpenRate = 10
	// escalationSenders post the burst's alerts concurrently.
	escalationSenders = 16
	// escalationLastWait is the policy's second (failsafe) step: far enough
	// that nothing else is paged while the phase runs.
	escalationLastWait = 3600
	// backgroundLead starts the background alerts before the first step
	// falls due.
	backgroundLead = 3 * time.Second
	// escalationGrace is how long after the last due time the phase waits
	// for the pages.
	escalationGrace = time.Minute
)

// EscalationReport is what the escalation phase measured: N unacknowledged
// incidents whose first escalation step falls due at the same moment, while
// new alerts keep arriving.
type EscalationReport struct {
	// Incidents were opened in the burst (OpenSeconds long).
	Incidents   int     `json:"incidents"`
	OpenSeconds float64 `json:"open_s"`
	// Due counts the escalation pages that fell due (the incidents
	// assigned, whose step timer ran); Sent those delivered.
	Due  int `json:"pages_due"`
	Sent int `json:"pages_sent"`
	// DueSpreadMs is the last due time minus the first.
	DueSpreadMs float64 `json:"due_spread_ms"`
	// BackgroundRate and BackgroundAlerts are the new alerts sent around
	// the due moment.
	BackgroundRate   float64 `json:"background_alerts_per_s"`
	BackgroundAlerts int     `json:"background_alerts"`
	// Lateness is sent_at - due_at of the escalation pages.
	Lateness Latency `json:"lateness"`
	Errors   int     `json:"errors"`
}

// benchAlert is an alert the benchmark raised, to clear at the end.
type benchAlert struct{ alertType, patient string }

// alignedWait is the first escalation step's wait, in whole seconds, for an
// incident whose plan is loaded at now, so that the step falls due at target
// (within the second that rounding up adds); never shorter than minWait.
func alignedWait(target, now time.Time, minWait time.Duration) int {
	w := int(math.Ceil(target.Sub(now).Seconds()))
	return max(w, int(math.Ceil(minWait.Seconds())))
}

// escalationSteps is the bench policy: the next person in the role after
// wait seconds, then the failsafe role much later.
func escalationSteps(wait int) string {
	return fmt.Sprintf(`[{"wait_seconds": %d, "target": "next_in_role"}, {"wait_seconds": %d, "target": "failsafe"}]`,
		wait, escalationLastWait)
}

// escalation runs the escalation phase. Every incident snapshots its policy
// when it starts, and its first step falls due that wait after it is
// assigned; while the burst opens the incidents, the policy's wait is
// lowered every second so that every step falls due at the same moment.
// Nobody acknowledges. The alerts it raised are returned for clearing, even
// on error.
func escalation(ctx context.Context, db *sqlx.DB, c *client, staff, run string, o IncidentsOptions, progress io.Writer) (*EscalationReport, []benchAlert, error) {
	n, minWait := o.EscalationIncidents, o.EscalationWait
	if err := setupEscalationPolicy(ctx, db, alignedWait(time.Now(), time.Now(), minWait)); err != nil {
		return nil, nil, err
	}
	if err := requireOnCall(ctx, c, staff); err != nil {
		return nil, nil, err
	}
	if err := awaitAlertType(ctx, c, escalationAlertType); err != nil {
		return nil, nil, err
	}

	start := time.Now()
	target := start.Add(minWait + time.Duration(float64(n)/escalationOpenRate*float64(time.Second)))
	fmt.Fprintf(progress, "escalation: %d incidents whose first step falls due at %s (in %s), new alerts at %.0f/s around it\n",
		n, target.Format("15:04:05"), target.Sub(start).Round(time.Second), o.Rate)
	rep := &EscalationReport{BackgroundRate: o.Rate}

	// Lower the policy's wait as the burst goes on.
	tuneCtx, stopTuning := context.WithCancel(ctx)
	tuned := make(chan error, 1)
	go func() { tuned <- tuneEscalationWait(tuneCtx, db, target, minWait) }()

	var (
		next   atomic.Int64
		errs   atomic.Int64
		ids    = newIDs()
		alerts = make([]benchAlert, n)
		wg     sync.WaitGroup
	)
	for i := range n {
		alerts[i] = benchAlert{escalationAlertType, fmt.Sprintf("B-%s-E%d", run, i)}
	}
	for range escalationSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				id, err := c.alert(ctx, alerts[i].alertType, alerts[i].patient, "")
				if err != nil {
					errs.Add(1)
					continue
				}
				ids.add(id)
			}
		}()
	}
	wg.Wait()
	rep.OpenSeconds = time.Since(start).Seconds()
	rep.Incidents = len(ids.all())
	rep.Errors = int(errs.Load())
	// Incidents still loading their plan need the current wait: tuning
	// goes on until every one is assigned (its plan loaded long before).
	err := awaitAssigned(ctx, db, ids.all(), target)
	stopTuning()
	if tuneErr := <-tuned; tuneErr != nil {
		return nil, alerts, tuneErr
	}
	if err != nil {
		return nil, alerts, err
	}

	// New alerts at the latency phase's rate from just before the first
	// due time until the pages are out.
	time.Sleep(time.Until(target.Add(-backgroundLead)))
	bgCtx, stopBackground := context.WithCancel(ctx)
	var bgAlerts []benchAlert
	var bgMu sync.Mutex
	bgDone := make(chan phase, 1)
	go func() {
		bgDone <- openLoop(bgCtx, o.Rate, 10*time.Minute, func(i int) (time.Duration, error) {
			a := benchAlert{"FALL_DETECTED", fmt.Sprintf("B-%s-X%d", run, i)}
			bgMu.Lock()
			bgAlerts = append(bgAlerts, a)
			bgMu.Unlock()
			t := time.Now()
			_, err := c.alert(ctx, a.alertType, a.patient, "")
			return time.Since(t), err
		})
	}()
	deadline := target.Add(escalationGrace)
	if last := start.Add(time.Duration(rep.OpenSeconds*float64(time.Second)) + minWait); last.After(target) {
		deadline = last.Add(escalationGrace)
	}
	err = awaitEscalationPages(ctx, db, ids.all(), deadline)
	time.Sleep(time.Second) // background load past the last page
	stopBackground()
	bg := <-bgDone
	bgMu.Lock()
	alerts = append(alerts, bgAlerts...)
	bgMu.Unlock()
	rep.BackgroundAlerts = len(bg.durations)
	rep.Errors += bg.errors
	if err != nil {
		return nil, alerts, err
	}
	if err := readLateness(ctx, db, ids.all(), rep); err != nil {
		return nil, alerts, err
	}
	return rep, alerts, nil
}

// setupEscalationPolicy creates (or resets) the phase's alert type and its
// own escalation policy.
func setupEscalationPolicy(ctx context.Context, db *sqlx.DB, wait int) error {
	immediate := true
	if _, _, err := (&reference.Store{DB: db}).PutAlertType(ctx, escalationAlertType, reference.AlertTypeInput{
		Severity: "HIGH", Category: "BENCHMARK", Description: "vigil bench incidents: escalation lateness",
		RequiresImmediateResponse: &immediate, Roles: escalationRoles,
	}); err != nil {
		return fmt.Errorf("create the bench alert type: %w", err)
	}
	if _, err := db.ExecContext(ctx, `
		INSERT INTO escalation_policies (id, alert_type, steps, start_reminder_seconds) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET steps = EXCLUDED.steps, updated_at = now()`,
		escalationPolicyID, escalationAlertType, escalationSteps(wait), escalationLastWait); err != nil {
		return fmt.Errorf("create the bench escalation policy: %w", err)
	}
	return nil
}

// tuneEscalationWait keeps the policy's first wait at alignedWait(target)
// until ctx is done.
func tuneEscalationWait(ctx context.Context, db *sqlx.DB, target time.Time, minWait time.Duration) error {
	current := -1
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		// A little ahead, so the new wait is in place when the second turns.
		if w := alignedWait(target, time.Now().Add(20*time.Millisecond), minWait); w != current {
			if _, err := db.ExecContext(ctx, `UPDATE escalation_policies SET steps = $2, updated_at = now() WHERE id = $1`,
				escalationPolicyID, escalationSteps(w)); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("set the bench policy's wait: %w", err)
			}
			current = w
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// requireOnCall fails unless someone is on call for the bench alert type's
// roles: otherwise no incident is assigned and no step falls due.
func requireOnCall(ctx context.Context, c *client, staff string) error {
	raw, err := c.get(ctx, "/v1/oncall", staff)
	if err != nil {
		return fmt.Errorf("who is on call: %w", err)
	}
	var ans struct {
		Roles []struct {
			Role   string            `json:"role"`
			People []json.RawMessage `json:"people"`
		} `json:"roles"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return fmt.Errorf("decode who is on call: %w", err)
	}
	for _, r := range ans.Roles {
		if slices.Contains(escalationRoles, r.Role) && len(r.People) > 0 {
			return nil
		}
	}
	return fmt.Errorf("nobody is on call for %s: the escalation phase needs a rota (vigil dev seeds one with VIGIL_DEMO=true)", strings.Join(escalationRoles, ", "))
}

// awaitAlertType waits until the API knows a new alert type (it caches the
// catalogue for a few seconds): an alert without a patient is then refused
// for its patient_id, no longer for its alert_type.
func awaitAlertType(ctx context.Context, c *client, alertType string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, raw, err := c.send(ctx, http.MethodPost, "/v1/alerts", map[string]any{"alert_type": alertType}, c.key)
		if err != nil {
			return fmt.Errorf("probe the alert catalogue: %w", err)
		}
		if resp.StatusCode == http.StatusBadRequest && strings.Contains(string(raw), "patient_id") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the API does not accept alert type %s: %s %s", alertType, resp.Status, raw)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// awaitAssigned waits until every incident is assigned, or the deadline.
func awaitAssigned(ctx context.Context, db *sqlx.DB, ids []string, deadline time.Time) error {
	for time.Now().Before(deadline) {
		var n int
		if err := db.GetContext(ctx, &n, `SELECT count(*) FROM incidents WHERE id = ANY($1) AND assigned_at IS NOT NULL`,
			pq.Array(ids)); err != nil {
			return fmt.Errorf("count assigned bench incidents: %w", err)
		}
		if n == len(ids) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// awaitEscalationPages waits until every assigned incident's first
// escalation page is out, or the deadline.
func awaitEscalationPages(ctx context.Context, db *sqlx.DB, ids []string, deadline time.Time) error {
	for {
		var due, sent int
		if err := db.QueryRowxContext(ctx, `
			SELECT (SELECT count(*) FROM incidents WHERE id = ANY($1) AND assigned_at IS NOT NULL),
			       (SELECT count(*) FROM notification_outbox WHERE incident_id = ANY($1) AND channel = 'inapp'
			            AND step IN ('escalation-1', 'delayed-1') AND status = 'sent')`,
			pq.Array(ids)).Scan(&due, &sent); err != nil {
			return fmt.Errorf("count escalation pages: %w", err)
		}
		if (due == len(ids) && sent >= due) || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// readLateness reads sent_at - due_at of the incidents' first escalation
// pages into rep.
func readLateness(ctx context.Context, db *sqlx.DB, ids []string, rep *EscalationReport) error {
	if err := db.GetContext(ctx, &rep.Due, `SELECT count(*) FROM incidents WHERE id = ANY($1) AND assigned_at IS NOT NULL`,
		pq.Array(ids)); err != nil {
		return fmt.Errorf("count assigned bench incidents: %w", err)
	}
	var rows []struct {
		DueAt  *time.Time `db:"due_at"`
		SentAt time.Time  `db:"sent_at"`
	}
	if err := db.SelectContext(ctx, &rows, `
		SELECT due_at, sent_at FROM notification_outbox
		WHERE incident_id = ANY($1) AND channel = 'inapp' AND step IN ('escalation-1', 'delayed-1') AND status = 'sent'`,
		pq.Array(ids)); err != nil {
		return fmt.Errorf("read escalation pages (is migration 00016 applied?): %w", err)
	}
	var late []time.Duration
	var first, last time.Time
	for _, r := range rows {
		if r.DueAt == nil {
			return fmt.Errorf("an escalation page has no due_at: the Vigil under test predates it")
		}
		late = append(late, r.SentAt.Sub(*r.DueAt))
		if first.IsZero() || r.DueAt.Before(first) {
			first = *r.DueAt
		}
		if r.DueAt.After(last) {
			last = *r.DueAt
		}
	}
	rep.Sent = len(rows)
	rep.Lateness = summarize(late)
	rep.DueSpreadMs = float64(last.Sub(first).Microseconds()) / 1000
	return nil
}
