package watch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/watch/directory"
)

// Store owns the capacity watch tables: watches, watch_polls, snapshots,
// service_statuses and status_changes. The watch workflows' activities
// write polls, snapshots, statuses and changes through it; the API manages
// watches and reads the query model (query.go) through it.
type Store struct {
	// DB is Vigil's Postgres.
	DB *sqlx.DB
}

// Execer runs statements in a store's transaction: another owner's write
// that must commit with the store's (an operator signal's row with the
// watch state it set).
type Execer = sqlx.ExecerContext

// ErrChangeNotRecorded is returned by NotifiedTargets for a change that is
// not in the history (it wraps sql.ErrNoRows too).
var ErrChangeNotRecorded = errors.New("change not recorded")

// StoreSnapshot writes every service a poll saw, at polled, in one
// multi-row insert. A retried poll writes the same poll id: a no-op.
func (s *Store) StoreSnapshot(ctx context.Context, watchID, pollID string, polled time.Time, services []directory.Service) error {
	if len(services) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO snapshots (watch_id, poll_id, service_id, polled_at, name, type, postcode, region,
		easting, northing, capacity, rag, updated_by, updated_at) VALUES `)
	args := make([]any, 0, len(services)*14)
	for i, sv := range services {
		if i > 0 {
			b.WriteString(",")
		}
		n := len(args)
		fmt.Fprintf(&b, "($%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d)",
			n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10, n+11, n+12, n+13, n+14)
		args = append(args, watchID, pollID, sv.ID, polled, sv.Name, sv.Type, sv.Postcode, sv.Region,
			nullInt(sv.Easting), nullInt(sv.Northing), sv.Capacity, sv.RAG, sv.UpdatedBy, nullTime(sv.UpdatedAt))
	}
	b.WriteString(" ON CONFLICT (poll_id, service_id) DO NOTHING")
	if _, err := s.DB.ExecContext(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("store snapshot of %d services: %w", len(services), err)
	}
	return nil
}

// Poll is one poll of one watch, for watch_polls: when it was due and when
// it happened.
type Poll struct {
	PollID      string
	WatchID     string
	ScheduledAt time.Time
	PolledAt    time.Time
	// Services is how many services the poll saw.
	Services int
}

// RecordPoll writes the poll's row once; first is true when this call
// wrote it (false for a retry of a poll already recorded).
func (s *Store) RecordPoll(ctx context.Context, p Poll) (first bool, err error) {
	res, err := s.DB.ExecContext(ctx, `INSERT INTO watch_polls (poll_id, watch_id, scheduled_at, polled_at, services)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (poll_id) DO NOTHING`, p.PollID, p.WatchID, p.ScheduledAt, p.PolledAt, p.Services)
	if err != nil {
		return false, fmt.Errorf("record poll: %w", err)
	}
	n, err := res.RowsAffected()
	return err == nil && n == 1, nil
}

// PollOutcome is what one poll decided: the changes for the history, the
// services' statuses after the poll and the watch's state.
type PollOutcome struct {
	WatchID string
	PollID  string
	At      time.Time
	Changes []Change
	// Current are the services' statuses after the poll.
	Current []Observation
	// State is the watch's state (active, paused, degraded); empty leaves
	// it.
	State string
}

// RecordChanges appends the poll's changes to the history, upserts the
// current statuses (keeping the position the snapshot gave, and never
// going back to an older poll's status) and sets the watch's state, in one
// transaction. Replays of the same poll are no-ops. It returns the kinds of
// the changes new to the history.
func (s *Store) RecordChanges(ctx context.Context, in PollOutcome) (recorded []string, err error) {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, c := range in.Changes {
		res, err := tx.ExecContext(ctx, `
			INSERT INTO status_changes (watch_id, service_id, name, type, region, previous_capacity, previous_rag,
				capacity, rag, kind, changed_by, changed_at, detected_at, poll_id)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)
			ON CONFLICT (poll_id, service_id, kind) DO NOTHING`,
			in.WatchID, c.ServiceID, c.Name, c.Type, c.Region, c.Previous, c.PrevRAG, c.Capacity, c.RAG,
			c.Kind, c.ChangedBy, nullTime(c.ChangedAt), in.At, in.PollID)
		if err != nil {
			return nil, fmt.Errorf("record change of %s: %w", c.ServiceID, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			recorded = append(recorded, c.Kind)
		}
	}
	for _, o := range in.Current {
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO service_statuses (service_id, name, type, region, capacity, rag, updated_by, updated_at, last_seen_at, watch_id,
				postcode, easting, northing)
			SELECT $1,$2,$3,$4,$5,$6,$7,$8,$9,$10, s.postcode, s.easting, s.northing
			FROM (SELECT postcode, easting, northing FROM snapshots WHERE poll_id = $11 AND service_id = $1
			      UNION ALL SELECT '', NULL::integer, NULL::integer LIMIT 1) s
			ON CONFLICT (service_id) DO UPDATE SET name = EXCLUDED.name, type = EXCLUDED.type, region = EXCLUDED.region,
				capacity = EXCLUDED.capacity, rag = EXCLUDED.rag, updated_by = EXCLUDED.updated_by,
				updated_at = EXCLUDED.updated_at, last_seen_at = EXCLUDED.last_seen_at, watch_id = EXCLUDED.watch_id,
				postcode = COALESCE(NULLIF(EXCLUDED.postcode, ''), service_statuses.postcode),
				easting = COALESCE(EXCLUDED.easting, service_statuses.easting),
				northing = COALESCE(EXCLUDED.northing, service_statuses.northing)
			WHERE service_statuses.last_seen_at <= EXCLUDED.last_seen_at`,
			o.ServiceID, o.Name, o.Type, o.Region, o.Capacity, o.RAG, o.UpdatedBy, nullTime(o.UpdatedAt), in.At, in.WatchID, in.PollID); err != nil {
			return nil, fmt.Errorf("update status of %s: %w", o.ServiceID, err)
		}
	}
	if in.State != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE watches SET state = $2, updated_at = now() WHERE id = $1 AND state <> 'deleted'`, in.WatchID, in.State); err != nil {
			return nil, fmt.Errorf("update watch state: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit poll %s: %w", in.PollID, err)
	}
	return recorded, nil
}

// OperatorState is a watch's state after an operator's pause or resume
// signal: who changed it (operator:<name>), when and why.
type OperatorState struct {
	WatchID string
	// State is active, paused or degraded.
	State  string
	Actor  string
	At     time.Time
	Reason string
}

// SetOperatorState writes the watch's state with who changed it, when and
// why, and, in the same transaction, whatever recordSignal writes (the
// signal's operator_signals row). A deleted watch keeps its state.
func (s *Store) SetOperatorState(ctx context.Context, st OperatorState, recordSignal func(context.Context, Execer) error) error {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `UPDATE watches SET state = $2, state_changed_by = $3, state_changed_at = $4,
			state_reason = $5, updated_at = now()
		WHERE id = $1 AND state <> 'deleted'`,
		st.WatchID, st.State, st.Actor, st.At.UTC(), st.Reason); err != nil {
		return fmt.Errorf("update watch state: %w", err)
	}
	if recordSignal != nil {
		if err := recordSignal(ctx, tx); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit watch state: %w", err)
	}
	return nil
}

// ChangeKey names one recorded change: its poll, service and kind.
type ChangeKey struct {
	PollID    string
	ServiceID string
	Kind      string
}

// NotifiedTargets returns the notification targets (slack:<channel>,
// sms:<number>) the change has reached; ErrChangeNotRecorded when the
// change is not in the history.
func (s *Store) NotifiedTargets(ctx context.Context, k ChangeKey) ([]string, error) {
	done, err := database.Get[pq.StringArray](ctx, s.DB, fmt.Errorf("%w: %w", ErrChangeNotRecorded, sql.ErrNoRows), "read change targets",
		`SELECT notified_targets FROM status_changes WHERE poll_id = $1 AND service_id = $2 AND kind = $3`, k.PollID, k.ServiceID, k.Kind)
	if err != nil {
		return nil, err
	}
	return done, nil
}

// MarkTargetNotified records that the change reached target, once.
func (s *Store) MarkTargetNotified(ctx context.Context, k ChangeKey, target string) error {
	_, err := s.DB.ExecContext(ctx, `UPDATE status_changes SET notified_targets = array_append(notified_targets, $4)
		WHERE poll_id = $1 AND service_id = $2 AND kind = $3 AND NOT ($4 = ANY(notified_targets))`,
		k.PollID, k.ServiceID, k.Kind, target)
	if err != nil {
		return fmt.Errorf("record notified target: %w", err)
	}
	return nil
}

// MarkNotified records that the change was announced.
func (s *Store) MarkNotified(ctx context.Context, k ChangeKey) error {
	if _, err := s.DB.ExecContext(ctx, `UPDATE status_changes SET notified = true WHERE poll_id = $1 AND service_id = $2 AND kind = $3`,
		k.PollID, k.ServiceID, k.Kind); err != nil {
		return fmt.Errorf("mark change notified: %w", err)
	}
	return nil
}

// DeleteSnapshotsBefore deletes up to limit snapshots polled before
// before, in one short statement, and returns how many it deleted.
func (s *Store) DeleteSnapshotsBefore(ctx context.Context, before time.Time, limit int) (int64, error) {
	res, err := s.DB.ExecContext(ctx, `
		DELETE FROM snapshots WHERE id IN (
			SELECT id FROM snapshots WHERE polled_at < $1 LIMIT $2)`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("delete snapshots before %s: %w", before.Format(time.RFC3339), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("count deleted snapshots: %w", err)
	}
	return n, nil
}

// LowCapacityService is one service below HIGH, for the periodic summary.
type LowCapacityService struct {
	ServiceID string `db:"service_id"`
	Name      string `db:"name"`
	Capacity  string `db:"capacity"`
}

// LowCapacityServices returns the services currently below HIGH (capacity
// neither HIGH nor the robot's reset ""), worst first, then by name and id.
func (s *Store) LowCapacityServices(ctx context.Context) ([]LowCapacityService, error) {
	var services []LowCapacityService
	if err := s.DB.SelectContext(ctx, &services, `
		SELECT service_id, name, capacity FROM service_statuses
		WHERE capacity NOT IN ('', 'HIGH')
		ORDER BY capacity DESC, name, service_id`); err != nil {
		return nil, fmt.Errorf("read low capacity services: %w", err)
	}
	return services, nil
}

func nullInt(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
