package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/temporal"
)

// Outcomes of an operator signal (operator_signals.outcome).
const (
	OperatorSignalAccepted = "accepted"
	OperatorSignalRefused  = "refused"
	// OperatorSignalFailed is an accepted signal whose work could not be
	// done (a rescan the broker did not answer).
	OperatorSignalFailed = "failed"
)

// Operators records the operator signals workflows receive
// (operator_signals). Signals that change something are recorded by the
// activity that makes the change, in its transaction (Watches.
// RecordWatchOperatorState, Nodes.RescanNode); this one records the rest:
// refused signals and failed rescans.
type Operators struct {
	DB *sqlx.DB
}

// OperatorSignalRecord is one operator signal as a workflow handled it.
type OperatorSignalRecord struct {
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
	// Outcome is OperatorSignalAccepted, OperatorSignalRefused or
	// OperatorSignalFailed; Refusal says why it was not accepted.
	Outcome string
	Refusal string
	At      time.Time
}

// RecordOperatorSignal stores one operator signal.
func (a *Operators) RecordOperatorSignal(ctx context.Context, in *OperatorSignalRecord) error {
	return insertOperatorSignal(ctx, a.DB, in)
}

// insertOperatorSignal stores rec once (by its event key).
func insertOperatorSignal(ctx context.Context, db sqlx.ExecerContext, rec *OperatorSignalRecord) error {
	if rec == nil || rec.EventKey == "" || rec.WorkflowID == "" || rec.Signal == "" || rec.Outcome == "" {
		return temporal.NewNonRetryableApplicationError("event key, workflow id, signal and outcome are required", ErrTypeInvalidInput, nil)
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
		return classifySQL(fmt.Errorf("record operator signal %s: %w", rec.Signal, err))
	}
	return nil
}
