package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Database holds the activities that read and write Vigil's Postgres query
// model.
type Database struct {
	DB *sqlx.DB
	// Identity names this worker process (pid@host) in the rows it writes.
	Identity string
}

// RecordSystemCheckInput is the row a system check writes.
type RecordSystemCheckInput struct {
	CheckID     string
	WorkflowID  string
	RunID       string
	Note        string
	RequestedAt time.Time
}

// RecordSystemCheckResult is the stored row's server-side facts.
type RecordSystemCheckResult struct {
	RecordedAt     time.Time
	WorkerIdentity string
}

// RecordSystemCheck writes the check's row. A retry after a lost reply finds
// the row already there and returns it unchanged.
func (d *Database) RecordSystemCheck(ctx context.Context, in *RecordSystemCheckInput) (*RecordSystemCheckResult, error) {
	var out RecordSystemCheckResult
	err := d.DB.QueryRowxContext(ctx, `
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
		in.CheckID, in.WorkflowID, in.RunID, in.Note, in.RequestedAt, d.Identity,
	).Scan(&out.RecordedAt, &out.WorkerIdentity)
	if err != nil {
		return nil, classifySQL(fmt.Errorf("record system check %s: %w", in.CheckID, err))
	}
	return &out, nil
}
