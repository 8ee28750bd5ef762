package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/activation"
)

// ErrTypeCodeCollision marks a re-created activation whose new code is
// already live for another activation: the API draws a new code and tries
// again.
const ErrTypeCodeCollision = activation.ErrTypeCodeCollision

// Activations records activation workflows' state in Postgres through the
// activation store: the activations row (whose code lookup digest the API
// finds it by) and the auth_audit trail. Only hashes, salts and digests
// pass through here.
type Activations struct {
	Store *activation.Store
}

// RecordActivation writes the activation's state and its audit event in one
// transaction. It is idempotent: every column is set to an absolute value
// and the audit event is keyed.
func (a *Activations) RecordActivation(ctx context.Context, in *activation.RecordActivationInput) error {
	err := a.Store.RecordActivation(ctx, in)
	if errors.Is(err, activation.ErrCodeCollision) {
		return temporal.NewNonRetryableApplicationError("the new code is live for another activation", ErrTypeCodeCollision, err)
	}
	return err
}
