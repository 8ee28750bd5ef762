// Package operatorsignal owns operator_signals: the record of every operator
// signal a workflow handled (pause, resume, rescan, acknowledge, ...),
// accepted, refused or failed, with the operator who sent it.
package operatorsignal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Outcomes of a signal.
const (
	Accepted = "accepted"
	Refused  = "refused"
	Failed   = "failed"
)

// ErrIncomplete refuses a record without its event key, workflow id,
// signal or outcome.
var ErrIncomplete = errors.New("event key, workflow id, signal and outcome are required")

// Record is one operator signal as a workflow handled it.
type Record struct {
	// EventKey is unique per signal (workflow id, run id and a sequence
	// number): a retried write records it once.
	EventKey   string
	WorkflowID string
	// Kind is the workflow's VigilKind (watch, node); SubjectID its watch or
	// node id.
	Kind      string
	SubjectID string
	Signal    string
	// Actor is operator:<name>; empty when the payload named no valid
	// operator.
	Actor  string
	Reason string
	// Outcome is Accepted, Refused or Failed; Refusal says why it was not
	// accepted.
	Outcome string
	Refusal string
	At      time.Time
}

// Execer runs a statement: the pool, or a transaction of another store
// that records the signal together with the change it made.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Insert stores rec once (by its event key) through db.
func Insert(ctx context.Context, db Execer, rec *Record) error {
	if rec == nil || rec.EventKey == "" || rec.WorkflowID == "" || rec.Signal == "" || rec.Outcome == "" {
		return ErrIncomplete
	}
	at := rec.At
	if at.IsZero() {
		at = time.Now()
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO operator_signals
			(at, workflow_id, kind, subject_id, signal, actor, reason, outcome, refusal, event_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (event_key) DO NOTHING`,
		at.UTC(), rec.WorkflowID, rec.Kind, rec.SubjectID, rec.Signal, rec.Actor, rec.Reason, rec.Outcome, rec.Refusal,
		rec.EventKey); err != nil {
		return fmt.Errorf("record operator signal %s: %w", rec.Signal, err)
	}
	return nil
}

// Store records operator signals on their own.
type Store struct {
	DB *sqlx.DB
}

// Record stores rec once (by its event key).
func (s *Store) Record(ctx context.Context, rec *Record) error { return Insert(ctx, s.DB, rec) }
