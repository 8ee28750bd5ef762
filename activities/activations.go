package activities

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"go.temporal.io/sdk/temporal"
)

// ErrTypeCodeCollision marks a re-created activation whose new code is
// already live for another activation: the API draws a new code and tries
// again.
const ErrTypeCodeCollision = "ActivationCodeCollision"

// Activations records activation workflows' state in Postgres: the
// activations row (whose code lookup digest the API finds it by) and the
// auth_audit trail. Only hashes, salts and digests pass through here.
type Activations struct {
	DB *sqlx.DB
}

// ActivationMaterial is a re-created activation's new code and PIN
// material: digests, hashes and salts, never the secrets.
type ActivationMaterial struct {
	CodeDigest string
	CodeHash   string
	CodeSalt   string
	PinSalt    string
	ExpiresAt  time.Time
}

// AuthAuditEvent is one auth_audit row. An empty SubjectID is the
// activation row's subject (a patient activation's workflow does not hold
// the patient id).
type AuthAuditEvent struct {
	Event       string
	SubjectType string
	SubjectID   string
	Actor       string
	Reason      string
	RequestID   string
	ClientIP    string
}

// RecordActivationInput is one change of an activation.
type RecordActivationInput struct {
	ActivationID string
	// EventKey is unique per change (workflow id, run and sequence): a
	// retried write records its audit event once.
	EventKey string
	State    string
	Attempts int
	// Material is set when the activation was re-created.
	Material *ActivationMaterial
	// AuthCodeHash and AuthCodeSalt are set when the activation completed.
	AuthCodeHash string
	AuthCodeSalt string
	ActivatedAt  time.Time
	FinishedAt   time.Time
	Audit        *AuthAuditEvent
}

// RecordActivation writes the activation's state and its audit event in one
// transaction. It is idempotent: every column is set to an absolute value
// and the audit event is keyed.
func (a *Activations) RecordActivation(ctx context.Context, in *RecordActivationInput) error {
	tx, err := a.DB.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record activation: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if m := in.Material; m != nil {
		_, err = tx.ExecContext(ctx, `
			UPDATE activations SET code_digest = $2, code_hash = $3, code_salt = $4, pin_salt = $5, expires_at = $6,
				updated_at = now()
			WHERE id = $1`, in.ActivationID, m.CodeDigest, m.CodeHash, m.CodeSalt, m.PinSalt, m.ExpiresAt)
		var pqErr *pq.Error
		if errors.As(err, &pqErr) && pqErr.Code == "23505" {
			return temporal.NewNonRetryableApplicationError("the new code is live for another activation", ErrTypeCodeCollision, err)
		}
		if err != nil {
			return fmt.Errorf("record activation %s: material: %w", in.ActivationID, classifySQL(err))
		}
	}
	if _, err := tx.ExecContext(ctx, `
		UPDATE activations SET state = $2, attempts = $3,
			auth_code_hash = CASE WHEN $4 = '' THEN auth_code_hash ELSE $4 END,
			auth_code_salt = CASE WHEN $5 = '' THEN auth_code_salt ELSE $5 END,
			activated_at = COALESCE($6, activated_at), finished_at = COALESCE($7, finished_at), updated_at = now()
		WHERE id = $1`,
		in.ActivationID, in.State, in.Attempts, in.AuthCodeHash, in.AuthCodeSalt,
		nullTime(in.ActivatedAt), nullTime(in.FinishedAt)); err != nil {
		return fmt.Errorf("record activation %s: %w", in.ActivationID, classifySQL(err))
	}
	if in.Audit != nil {
		ev := *in.Audit
		if ev.SubjectID == "" {
			// A patient activation's workflow never knows the patient id:
			// the row does.
			err := tx.GetContext(ctx, &ev.SubjectID, `SELECT subject_id FROM activations WHERE id = $1`, in.ActivationID)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("record activation %s: subject: %w", in.ActivationID, classifySQL(err))
			}
		}
		if err := insertAuthAudit(ctx, tx, in.EventKey, &ev); err != nil {
			return fmt.Errorf("record activation %s: %w", in.ActivationID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record activation %s: commit: %w", in.ActivationID, err)
	}
	return nil
}

func insertAuthAudit(ctx context.Context, tx *sqlx.Tx, key string, e *AuthAuditEvent) error {
	var eventKey any
	if key != "" {
		eventKey = key
	}
	_, err := tx.ExecContext(ctx, `
		INSERT INTO auth_audit (event, subject_type, subject_id, actor, reason, request_id, client_ip, event_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_key) DO NOTHING`,
		e.Event, e.SubjectType, e.SubjectID, e.Actor, e.Reason, e.RequestID, e.ClientIP, eventKey)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Event, classifySQL(err))
	}
	return nil
}
