package watch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/watch/directory"
)

// Kinds of watch (watches.kind).
const (
	KindService = "service"
	KindSearch  = "search"
)

// ErrNotFound is returned for a watch that does not exist or was deleted.
var ErrNotFound = errors.New("watch not found")

// Config is what a watch polls, how often, and whom it tells: the watch
// workflow's configuration and the settings its row stores.
type Config struct {
	Kind      string
	ServiceID string
	Search    directory.SearchQuery
	// Description names the watch in notifications.
	Description string
	Interval    time.Duration
	// SlackChannel and SMSNumbers receive change notifications.
	SlackChannel string
	SMSNumbers   []string
	// RecoveryPolls is how many consecutive polls a better status must hold
	// before it is announced (hysteresis); 1 announces at once.
	RecoveryPolls int
}

// Watch is one watch's row: its configuration and its state.
type Watch struct {
	ID string
	Config
	// State is active, paused, degraded or deleted.
	State string
	// StateChangedBy is who last paused or resumed the watch: a staff id
	// (through the API) or operator:<name> (through a Temporal signal), at
	// StateChangedAt, for StateReason (signals only).
	StateChangedBy string
	StateChangedAt *time.Time
	StateReason    string
	// CreatedBy is the staff id that created the watch.
	CreatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// watchRow is a watches row as scanned.
type watchRow struct {
	ID             string         `db:"id"`
	Kind           string         `db:"kind"`
	ServiceID      string         `db:"service_id"`
	Postcode       string         `db:"postcode"`
	DistanceMiles  int            `db:"distance_miles"`
	ServiceTypes   pq.StringArray `db:"service_types"`
	ResultsLimit   int            `db:"results_limit"`
	GP             string         `db:"gp"`
	SearchRole     string         `db:"search_role"`
	Description    string         `db:"description"`
	Interval       int            `db:"interval_seconds"`
	SlackChannel   string         `db:"slack_channel"`
	SMSNumbers     pq.StringArray `db:"sms_numbers"`
	RecoveryPolls  int            `db:"recovery_polls"`
	State          string         `db:"state"`
	StateChangedBy string         `db:"state_changed_by"`
	StateChangedAt *time.Time     `db:"state_changed_at"`
	StateReason    string         `db:"state_reason"`
	CreatedBy      string         `db:"created_by"`
	CreatedAt      time.Time      `db:"created_at"`
	UpdatedAt      time.Time      `db:"updated_at"`
}

const watchColumns = `id, kind, service_id, postcode, distance_miles, service_types, results_limit, gp, search_role,
	description, interval_seconds, slack_channel, sms_numbers, recovery_polls, state, state_changed_by, state_changed_at,
	state_reason, created_by, created_at, updated_at`

func (r watchRow) watch() Watch {
	w := Watch{
		ID: r.ID, Config: Config{Kind: r.Kind, ServiceID: r.ServiceID, Description: r.Description,
			Interval: time.Duration(r.Interval) * time.Second, SlackChannel: r.SlackChannel, SMSNumbers: r.SMSNumbers,
			RecoveryPolls: r.RecoveryPolls}, State: r.State, StateChangedBy: r.StateChangedBy, StateChangedAt: r.StateChangedAt,
		StateReason: r.StateReason, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	if r.Kind == KindSearch {
		w.Search = directory.SearchQuery{Postcode: r.Postcode, DistanceMiles: r.DistanceMiles, ServiceTypes: r.ServiceTypes,
			ResultsLimit: r.ResultsLimit, GP: r.GP, Role: r.SearchRole}
	}
	return w
}

// Create stores a new watch (w.ID, its settings and CreatedBy) and calls
// start (which starts its workflow) inside the same transaction: if start
// fails, nothing is stored and its error is returned as it is. If the
// commit fails after start succeeded, the caller must undo what start did.
func (s *Store) Create(ctx context.Context, w Watch, start func() error) error {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO watches (id, kind, service_id, postcode, distance_miles, service_types, results_limit, gp, search_role,
			description, interval_seconds, slack_channel, sms_numbers, recovery_polls, created_by)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)`,
		w.ID, w.Kind, w.ServiceID, w.Search.Postcode, w.Search.DistanceMiles, pq.Array(nonNil(w.Search.ServiceTypes)),
		w.Search.ResultsLimit, w.Search.GP, w.Search.Role, w.Description, int(w.Interval/time.Second),
		w.SlackChannel, pq.Array(nonNil(w.SMSNumbers)), w.RecoveryPolls, w.CreatedBy); err != nil {
		return fmt.Errorf("store watch: %w", err)
	}
	if err := start(); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit watch: %w", err)
	}
	return nil
}

// Get returns a watch; ErrNotFound when there is none or it was deleted.
func (s *Store) Get(ctx context.Context, id string) (Watch, error) {
	r, err := database.Get[watchRow](ctx, s.DB, fmt.Errorf("%w: %s", ErrNotFound, id), "load watch "+id,
		`SELECT `+watchColumns+` FROM watches WHERE id = $1 AND state <> 'deleted'`, id)
	if err != nil {
		return Watch{}, err
	}
	return r.watch(), nil
}

// List returns a page of the watches not deleted, oldest first.
func (s *Store) List(ctx context.Context, limit, offset int) ([]Watch, error) {
	var rows []watchRow
	if err := s.DB.SelectContext(ctx, &rows,
		`SELECT `+watchColumns+` FROM watches WHERE state <> 'deleted' ORDER BY created_at, id LIMIT $1 OFFSET $2`, limit, offset); err != nil {
		return nil, fmt.Errorf("list watches: %w", err)
	}
	out := make([]Watch, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.watch())
	}
	return out, nil
}

// Update changes a watch's settings in one transaction: it locks the row
// (so two concurrent changes of different fields do not undo each other),
// asks change for the new settings given the current ones, writes them,
// then calls apply (which hands them to the running workflow) and commits
// only when apply succeeds. Errors of change and apply are returned as they
// are. The kind, state and creator do not change.
func (s *Store) Update(ctx context.Context, id string, change func(current Watch) (Watch, error), apply func(Watch) error) error {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var locked watchRow
	if err := tx.GetContext(ctx, &locked, `SELECT `+watchColumns+` FROM watches WHERE id = $1 FOR UPDATE`, id); err != nil {
		return fmt.Errorf("lock watch: %w", err)
	}
	w, err := change(locked.watch())
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `
		UPDATE watches SET service_id = $2, postcode = $3, distance_miles = $4, service_types = $5, results_limit = $6,
			gp = $7, search_role = $8, description = $9, interval_seconds = $10, slack_channel = $11, sms_numbers = $12,
			recovery_polls = $13, updated_at = now()
		WHERE id = $1`,
		id, w.ServiceID, w.Search.Postcode, w.Search.DistanceMiles, pq.Array(nonNil(w.Search.ServiceTypes)),
		w.Search.ResultsLimit, w.Search.GP, w.Search.Role, w.Description, int(w.Interval/time.Second),
		w.SlackChannel, pq.Array(nonNil(w.SMSNumbers)), w.RecoveryPolls); err != nil {
		return fmt.Errorf("update watch: %w", err)
	}
	if err := apply(w); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit watch: %w", err)
	}
	return nil
}

// SetState records a pause or resume made through the API: the watch's
// state, who changed it (a staff id) and when; the reason is cleared.
func (s *Store) SetState(ctx context.Context, id, state, changedBy string) error {
	if _, err := s.DB.ExecContext(ctx, `UPDATE watches SET state = $2, state_changed_by = $3,
			state_changed_at = now(), state_reason = '', updated_at = now() WHERE id = $1`, id, state, changedBy); err != nil {
		return fmt.Errorf("update watch state: %w", err)
	}
	return nil
}

// MarkDeleted marks a watch deleted; its history (snapshots, changes)
// stays.
func (s *Store) MarkDeleted(ctx context.Context, id string) error {
	if _, err := s.DB.ExecContext(ctx, `UPDATE watches SET state = 'deleted', updated_at = now() WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete watch: %w", err)
	}
	return nil
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}
