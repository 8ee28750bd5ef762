package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/operatorsignal"
)

// Outcomes of an operator signal (operator_signals.outcome).
const (
	OperatorSignalAccepted = operatorsignal.Accepted
	OperatorSignalRefused  = operatorsignal.Refused
	// OperatorSignalFailed is an accepted signal whose work could not be
	// done (a rescan the broker did not answer).
	OperatorSignalFailed = operatorsignal.Failed
)

// Operators records the operator signals workflows receive
// (operator_signals). Signals that change something are recorded by the
// activity that makes the change, in its transaction (Watches.
// RecordWatchOperatorState, Nodes.RescanNode); this one records the rest:
// refused signals and failed rescans.
type Operators struct {
	Store *operatorsignal.Store
}

// OperatorSignalRecord is one operator signal as a workflow handled it.
type OperatorSignalRecord = operatorsignal.Record

// RecordOperatorSignal stores one operator signal.
func (a *Operators) RecordOperatorSignal(ctx context.Context, in *OperatorSignalRecord) error {
	return recordOperatorSignal(ctx, a.Store.DB, in)
}

// recordOperatorSignal stores rec once (by its event key) through db (the
// pool, or the transaction of the change the signal made).
func recordOperatorSignal(ctx context.Context, db operatorsignal.Execer, rec *OperatorSignalRecord) error {
	err := operatorsignal.Insert(ctx, db, rec)
	if errors.Is(err, operatorsignal.ErrIncomplete) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, nil)
	}
	return classifySQL(err)
}
