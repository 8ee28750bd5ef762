// Package bench holds Vigil's load commands. They drive a running Vigil (for
// example `vigil dev`) through its HTTP API at a fixed arrival rate, like
// real sources would, and read the resulting timestamps from Postgres.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	temporalsdk "go.temporal.io/sdk/client"

	"github.com/vigil-health/vigil/internal/reference"
)

// IncidentsOptions configures `vigil bench incidents`.
type IncidentsOptions struct {
	// BaseURL is the API under test.
	BaseURL string
	// DB is its Postgres (for an API key and the timestamps).
	DB *sqlx.DB
	// Rate is the alert arrival rate (per second) of the latency phase.
	Rate float64
	// SustainRate is the arrival rate of the throughput phase.
	SustainRate float64
	// Duration is the length of the latency and throughput phases.
	Duration time.Duration
	// DupWorkers send duplicate alerts for DupKeys keys, back to back, for
	// DupDuration.
	DupWorkers  int
	DupKeys     int
	DupDuration time.Duration
	// Settle is how long to wait for workflows to catch up after a phase.
	Settle time.Duration
	// Login and Password are a staff member's: the reference phase starts
	// its system checks with their token (anonymous checks are rate-limited).
	Login, Password string
	// EscalationIncidents unacknowledged incidents have their first
	// escalation step fall due at the same moment, at least EscalationWait
	// after they open, while new alerts arrive at Rate (0 skips the phase).
	EscalationIncidents int
	EscalationWait      time.Duration
	// CeilingDuration is the length of each ceiling phase: the bare
	// SystemCheck workflow, then new incidents, each driven at its maximum
	// by CeilingConcurrency requests in flight (0 skips them).
	CeilingDuration    time.Duration
	CeilingConcurrency int
	// Temporal, when set, is the stack's Temporal: the run's workflow-task
	// time-outs are counted from the histories of the workflows it ran.
	Temporal  temporalsdk.Client
	Namespace string
}

// Latency is a distribution summary in milliseconds.
type Latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// IncidentsReport is what `vigil bench incidents` measured.
type IncidentsReport struct {
	Rate               float64 `json:"rate_per_s"`
	Accepted           Latency `json:"alert_accepted_http"`
	AlertToAssigned    Latency `json:"alert_to_assigned"`
	AlertToFirstNotify Latency `json:"alert_to_first_notification"`
	Errors             int     `json:"errors"`

	SustainRate      float64 `json:"sustain_offered_per_s"`
	SustainCreated   int     `json:"sustain_created"`
	SustainAssigned  int     `json:"sustain_assigned"`
	SustainPerSecond float64 `json:"sustained_incidents_per_s"`

	Merged          int     `json:"merged"`
	MergedPerSecond float64 `json:"merged_per_s"`
	MergeLatency    Latency `json:"merge_http"`

	Reference Latency `json:"reference_system_check_http"`

	// Escalation is the escalation phase's outcome (nil when skipped).
	Escalation *EscalationReport `json:"escalation_lateness,omitempty"`
	// Ceiling compares incident and bare-workflow throughput (nil when
	// skipped).
	Ceiling *CeilingReport `json:"ceiling,omitempty"`
	// WorkflowTaskTimeouts counts workflow-task time-outs in the run's
	// workflows (Workflows of them); -1 when Temporal was not reachable.
	Workflows            int `json:"workflows"`
	WorkflowTaskTimeouts int `json:"workflow_task_timeouts"`
}

// Incidents runs the incident benchmark: a reference phase (the one-activity
// SystemCheck workflow started through HTTP at Rate), a latency phase (new
// incidents at Rate), a throughput phase (new incidents at SustainRate), a
// duplicate phase (merges into a few open incidents) and an escalation phase
// (many escalation steps due at once while alerts arrive at Rate).
func Incidents(ctx context.Context, o IncidentsOptions, progress io.Writer) (*IncidentsReport, error) {
	key, err := benchKey(ctx, o.DB)
	if err != nil {
		return nil, err
	}
	c := newClient(o.BaseURL, key, 512)
	staff, err := c.login(ctx, o.Login, o.Password)
	if err != nil {
		return nil, err
	}
	rep := &IncidentsReport{Rate: o.Rate, SustainRate: o.SustainRate, WorkflowTaskTimeouts: -1}
	run := uuid.NewString()[:8]
	began := time.Now()

	fmt.Fprintf(progress, "reference: SystemCheck workflows at %.0f/s for %s\n", o.Rate, o.Duration/2)
	ref := openLoop(ctx, o.Rate, o.Duration/2, func(int) (time.Duration, error) {
		start := time.Now()
		_, err := c.post(ctx, "/v1/system/check?wait=true", nil, staff)
		return time.Since(start), err
	})
	rep.Reference = summarize(ref.durations)

	// newIncidents raises a new incident (patient B-<run>-<tag><i>) per
	// arrival at rate for o.Duration and returns the IDs of those opened.
	newIncidents := func(tag string, rate float64) (phase, []string) {
		ids := newIDs()
		p := openLoop(ctx, rate, o.Duration, func(i int) (time.Duration, error) {
			start := time.Now()
			id, err := c.alert(ctx, "FALL_DETECTED", fmt.Sprintf("B-%s-%s%d", run, tag, i), "")
			if err == nil {
				ids.add(id)
			}
			return time.Since(start), err
		})
		return p, ids.all()
	}

	fmt.Fprintf(progress, "latency: new incidents at %.0f/s for %s\n", o.Rate, o.Duration)
	lat, latIDs := newIncidents("L", o.Rate)
	rep.Accepted, rep.Errors = summarize(lat.durations), lat.errors
	time.Sleep(o.Settle)
	if rep.AlertToAssigned, rep.AlertToFirstNotify, _, err = incidentTimes(ctx, o.DB, latIDs); err != nil {
		return nil, err
	}

	fmt.Fprintf(progress, "throughput: new incidents at %.0f/s for %s\n", o.SustainRate, o.Duration)
	phaseStart := time.Now()
	sus, susIDs := newIncidents("S", o.SustainRate)
	rep.Errors += sus.errors
	rep.SustainCreated = len(susIDs)
	time.Sleep(o.Settle)
	_, _, lastAssigned, err := incidentTimes(ctx, o.DB, susIDs)
	if err != nil {
		return nil, err
	}
	rep.SustainAssigned = lastAssigned.n
	if lastAssigned.n > 0 {
		// Throughput counts an incident done when it is assigned: the rate is
		// what the system completed over the span it needed to complete it.
		span := max(lastAssigned.last.Sub(phaseStart), o.Duration)
		rep.SustainPerSecond = float64(lastAssigned.n) / span.Seconds()
	}

	fmt.Fprintf(progress, "duplicates: %d workers on %d incidents for %s\n", o.DupWorkers, o.DupKeys, o.DupDuration)
	for k := range o.DupKeys { // open them first
		if _, err := c.alert(ctx, "FALL_DETECTED", fmt.Sprintf("B-%s-D%d", run, k), ""); err != nil {
			return nil, err
		}
	}
	var merged atomic.Int64
	var mu sync.Mutex
	var mergeLat []time.Duration
	deadline := time.Now().Add(o.DupDuration)
	var wg sync.WaitGroup
	for w := range o.DupWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				start := time.Now()
				if _, err := c.alert(ctx, "FALL_DETECTED", fmt.Sprintf("B-%s-D%d", run, (w+i)%o.DupKeys), ""); err == nil {
					merged.Add(1)
					local = append(local, time.Since(start))
				}
			}
			mu.Lock()
			mergeLat = append(mergeLat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	rep.Merged = int(merged.Load())
	rep.MergedPerSecond = float64(rep.Merged) / o.DupDuration.Seconds()
	rep.MergeLatency = summarize(mergeLat)

	var alerts []benchAlert
	fall := func(format string, n int) {
		for i := range n {
			alerts = append(alerts, benchAlert{"FALL_DETECTED", fmt.Sprintf(format, run, i)})
		}
	}
	fall("B-%s-L%d", len(lat.durations)+lat.errors)
	fall("B-%s-S%d", len(sus.durations)+sus.errors)
	fall("B-%s-D%d", o.DupKeys)

	var escErr error
	if o.EscalationIncidents > 0 {
		var raised []benchAlert
		rep.Escalation, raised, escErr = escalation(ctx, o.DB, c, staff, run, o, progress)
		alerts = append(alerts, raised...)
	}

	if escErr == nil && o.CeilingDuration > 0 {
		var raised []benchAlert
		rep.Ceiling, raised, escErr = ceiling(ctx, c, staff, run, o, progress, func(ids []string) (assignedSummary, error) {
			return pagedTimes(ctx, o.DB, ids)
		})
		alerts = append(alerts, raised...)
	}
	if o.Temporal != nil {
		fmt.Fprintf(progress, "workflow tasks: reading the run's histories for time-outs\n")
		if n, timeouts, err := workflowTaskTimeouts(ctx, o.Temporal, o.Namespace, began); err == nil {
			rep.Workflows, rep.WorkflowTaskTimeouts = n, timeouts
		} else {
			fmt.Fprintf(progress, "workflow tasks: %v\n", err)
		}
	}

	// Leave no open incident behind: the source clears every benchmark
	// alert, and the incidents auto-resolve after the stable-OK wait.
	fmt.Fprintf(progress, "cleanup: clearing %d benchmark alerts at the source\n", len(alerts))
	if err := c.clear(ctx, alerts); err != nil {
		return nil, err
	}
	if escErr != nil {
		return nil, escErr
	}
	if err := (&reference.Store{DB: o.DB}).RevokeAPIKeysNamed(ctx, benchKeyName); err != nil {
		return nil, fmt.Errorf("revoke bench key: %w", err)
	}
	return rep, nil
}

// phase is one open-loop phase's outcome.
type phase struct {
	durations []time.Duration
	errors    int
}

// openLoop starts fn at a fixed arrival rate for d, each call in its own
// goroutine, so a slow answer never delays the next arrival (no coordinated
// omission), and waits for every call.
func openLoop(ctx context.Context, rate float64, d time.Duration, fn func(i int) (time.Duration, error)) phase {
	var (
		mu  sync.Mutex
		out phase
		wg  sync.WaitGroup
	)
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * interval)
		if at.Sub(start) >= d || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Until(at))
		wg.Add(1)
		go func() {
			defer wg.Done()
			dur, err := fn(i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out.errors++
				return
			}
			out.durations = append(out.durations, dur)
		}()
	}
	wg.Wait()
	return out
}

func (c *client) alert(ctx context.Context, alertType, patient, dedup string) (string, error) {
	body := map[string]any{
		"alert_type": alertType, "patient_id": patient, "room": "BENCH-1", "value": "bench",
		"source": "vigil-bench", "observed_at": time.Now().UTC().Format(time.RFC3339Nano),
	}
	if dedup != "" {
		body["dedup_key"] = dedup
	}
	var res struct {
		IncidentID string `json:"incident_id"`
	}
	raw, err := c.post(ctx, "/v1/alerts", body, c.key)
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return "", fmt.Errorf("decode alert answer: %w", err)
	}
	return res.IncidentID, nil
}

// clear reports the benchmark alerts cleared, 100 to an Alertmanager batch.
func (c *client) clear(ctx context.Context, raised []benchAlert) error {
	for len(raised) > 0 {
		n := min(100, len(raised))
		alerts := make([]map[string]any, 0, n)
		for _, a := range raised[:n] {
			alerts = append(alerts, map[string]any{
				"status": "resolved", "labels": map[string]string{"alertname": a.alertType, "patient_id": a.patient},
			})
		}
		if _, err := c.post(ctx, "/v1/alerts/alertmanager", map[string]any{"version": "4", "status": "resolved", "alerts": alerts}, c.key); err != nil {
			return fmt.Errorf("clear benchmark alerts: %w", err)
		}
		raised = raised[n:]
	}
	return nil
}

// benchKeyName names the run's alert-source key.
const benchKeyName = "bench"

// benchKey makes an API key named "bench" for the run (revoking any an
// interrupted run left valid).
func benchKey(ctx context.Context, db *sqlx.DB) (string, error) {
	k, err := (&reference.Store{DB: db}).ReplaceAPIKey(ctx, benchKeyName)
	if err != nil {
		return "", fmt.Errorf("bench key: %w", err)
	}
	return k.Reveal(), nil
}

type assignedSummary struct {
	n    int
	last time.Time
}

// incidentTimes reads alert → assigned and alert → first delivered page from
// the incidents' own timestamps (opened_at is when the API accepted the
// first alert).
func incidentTimes(ctx context.Context, db *sqlx.DB, ids []string) (assigned, paged Latency, done assignedSummary, err error) {
	if len(ids) == 0 {
		return
	}
	var rows []struct {
		OpenedAt     time.Time  `db:"opened_at"`
		AssignedAt   *time.Time `db:"assigned_at"`
		FirstPagedAt *time.Time `db:"first_paged_at"`
	}
	if err = db.SelectContext(ctx, &rows, `SELECT opened_at, assigned_at, first_paged_at FROM incidents WHERE id = ANY($1)`, pq.Array(ids)); err != nil {
		return assigned, paged, done, fmt.Errorf("read incident times: %w", err)
	}
	var a, p []time.Duration
	for _, r := range rows {
		if r.AssignedAt != nil {
			a = append(a, r.AssignedAt.Sub(r.OpenedAt))
			done.n++
			if r.AssignedAt.After(done.last) {
				done.last = *r.AssignedAt
			}
		}
		if r.FirstPagedAt != nil {
			p = append(p, r.FirstPagedAt.Sub(r.OpenedAt))
		}
	}
	return summarize(a), summarize(p), done, nil
}

// pagedTimes counts the incidents of ids that are assigned and paged, and
// when the last of them was first paged.
func pagedTimes(ctx context.Context, db *sqlx.DB, ids []string) (assignedSummary, error) {
	var out struct {
		N    int        `db:"n"`
		Last *time.Time `db:"last"`
	}
	if len(ids) == 0 {
		return assignedSummary{}, nil
	}
	if err := db.GetContext(ctx, &out, `SELECT count(*) AS n, max(first_paged_at) AS last FROM incidents
		WHERE id = ANY($1) AND assigned_at IS NOT NULL AND first_paged_at IS NOT NULL`, pq.Array(ids)); err != nil {
		return assignedSummary{}, fmt.Errorf("read paged incidents: %w", err)
	}
	s := assignedSummary{n: out.N}
	if out.Last != nil {
		s.last = *out.Last
	}
	return s, nil
}

func summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return Latency{N: len(s), P50: ms(q(0.50)), P99: ms(q(0.99)), Max: ms(s[len(s)-1])}
}

type idSet struct {
	mu  sync.Mutex
	ids []string
}

func newIDs() *idSet { return &idSet{} }

func (s *idSet) add(id string) {
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.mu.Unlock()
}

func (s *idSet) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ids)
}
