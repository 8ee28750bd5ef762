// Package systemcheck owns the system_checks table: the row a system check
// writes to prove the whole path API → Temporal workflow → activity →
// Postgres. The activity records it; the API reads it back.
package systemcheck

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigil-health/vigil/internal/database"
)

// Store reads and writes system checks.
type Store struct {
	// DB is the Vigil query-model database.
	DB *sqlx.DB
}

// ErrNotFound is returned (wrapped) when a check has no row.
var ErrNotFound = errors.New("not found")

// RecordInput is the row a system check writes. The system check workflow
// passes it to its activity, so its fields (and their JSON names) are part
// of recorded histories: do not rename them.
type RecordInput struct {
	CheckID     string
	WorkflowID  string
	RunID       string
	Note        string
	RequestedAt time.Time
}

// Recorded is the stored row's server-side facts.
type Recorded struct {
	RecordedAt     time.Time
	WorkerIdentity string
}

// Record writes the check's row, naming the worker that wrote it. A retry
// after a lost reply finds the row already there and returns it unchanged.
func (st *Store) Record(ctx context.Context, in *RecordInput, workerIdentity string) (*Recorded, error) {
	var out Recorded
	err := st.DB.QueryRowxContext(ctx, `
		WITH inserted AS (
			INSERT INTO system_checks (id, workflow_id, run_id, note, requested_at, worker_identity)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (id) DO NOTHING
			RETURNING recorded_at, worker_identity
		)
		SELECT recorded_at, worker_identity FROM inserted
		UNION ALL
		SELECT recorded_at, worker_identity FROM system_checks WHERE id = $1
		LIMIT 1`,
		in.CheckID, in.WorkflowID, in.RunID, in.Note, in.RequestedAt, workerIdentity,
	).Scan(&out.RecordedAt, &out.WorkerIdentity)
	if err != nil {
		return nil, fmt.Errorf("record system check %s: %w", in.CheckID, err)
	}
	return &out, nil
}

// Check is a system check's stored row.
type Check struct {
	RunID          string    `db:"run_id"`
	Note           string    `db:"note"`
	RequestedAt    time.Time `db:"requested_at"`
	RecordedAt     time.Time `db:"recorded_at"`
	WorkerIdentity string    `db:"worker_identity"`
}

// Check returns check id's row, or ErrNotFound when it has none (yet).
func (st *Store) Check(ctx context.Context, id string) (Check, error) {
	return database.Get[Check](ctx, st.DB, fmt.Errorf("system check %s: %w", id, ErrNotFound), "load system check "+id, `
		SELECT run_id, note, requested_at, recorded_at, worker_identity
		FROM system_checks WHERE id = $1`, id)
}
