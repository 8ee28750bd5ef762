package activation

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-health/vigil/internal/database"
)

// Activation is an activations row as the API checks codes against it: its
// hashes and salts, never a secret.
type Activation struct {
	ID           string    `db:"id"`
	SubjectID    string    `db:"subject_id"`
	State        string    `db:"state"`
	CodeHash     string    `db:"code_hash"`
	CodeSalt     string    `db:"code_salt"`
	PinSalt      string    `db:"pin_salt"`
	AuthCodeHash string    `db:"auth_code_hash"`
	AuthCodeSalt string    `db:"auth_code_salt"`
	ExpiresAt    time.Time `db:"expires_at"`
	// WorkflowID is the activation's workflow, as it was started.
	WorkflowID string `db:"workflow_id"`
}

const activationColumns = `id, subject_id, state, code_hash, code_salt, pin_salt, auth_code_hash, auth_code_salt, expires_at,
	workflow_id`

// LiveActivation is a subject's pending or activated activation.
type LiveActivation struct {
	ID         string `db:"id"`
	State      string `db:"state"`
	WorkflowID string `db:"workflow_id"`
}

// LiveActivation returns the subject's pending or activated activation
// (there is at most one), or ErrNotFound.
func (st *Store) LiveActivation(ctx context.Context, kind, subjectID string) (LiveActivation, error) {
	return database.Get[LiveActivation](ctx, st.DB, notFound("live %s activation", kind), "look up live activation",
		`SELECT id, state, workflow_id FROM activations
		WHERE kind = $1 AND subject_id = $2 AND state IN ('pending', 'activated')`, kind, subjectID)
}

// PatientRedeemed reports whether one of the patient's activations has
// been completed and its authorisation code redeemed.
func (st *Store) PatientRedeemed(ctx context.Context, patientID string) (bool, error) {
	var redeemed bool
	if err := st.DB.GetContext(ctx, &redeemed, `SELECT EXISTS (SELECT 1 FROM activations
		WHERE kind = 'patient' AND subject_id = $1 AND state = 'redeemed')`, patientID); err != nil {
		return false, fmt.Errorf("look up redeemed activations: %w", err)
	}
	return redeemed, nil
}

// ActivationByCode returns the newest activation of kind whose code has the
// lookup digest, or ErrNotFound.
func (st *Store) ActivationByCode(ctx context.Context, kind, codeDigest string) (Activation, error) {
	return database.Get[Activation](ctx, st.DB, notFound("%s activation code", kind), "look up activation code",
		`SELECT `+activationColumns+` FROM activations
		WHERE code_digest = $1 AND kind = $2 ORDER BY created_at DESC LIMIT 1`, codeDigest, kind)
}

// LatestAuthorised returns the subject's newest activation that was given
// an authorisation code, or ErrNotFound.
func (st *Store) LatestAuthorised(ctx context.Context, kind, subjectID string) (Activation, error) {
	return database.Get[Activation](ctx, st.DB, notFound("authorised %s activation", kind), "look up authorisation code",
		`SELECT `+activationColumns+` FROM activations
		WHERE kind = $1 AND subject_id = $2 AND auth_code_salt <> '' ORDER BY created_at DESC LIMIT 1`, kind, subjectID)
}

// ActivationState returns an activation's state, or ErrNotFound.
func (st *Store) ActivationState(ctx context.Context, id string) (string, error) {
	return database.Get[string](ctx, st.DB, notFound("activation %s", id), "read activation state",
		`SELECT state FROM activations WHERE id = $1`, id)
}

// NewActivation is a new activation's row, before its workflow starts.
type NewActivation struct {
	ID         string
	Kind       string
	SubjectID  string
	WorkflowID string
	CodeDigest string
	CodeHash   string
	CodeSalt   string
	PinSalt    string
	ExpiresAt  time.Time
	CreatedBy  string
}

// InsertActivation stores a new pending activation. ErrActivationClash
// means the subject already has a live activation or the code's digest is
// live for another one.
func (st *Store) InsertActivation(ctx context.Context, a NewActivation) error {
	_, err := st.DB.ExecContext(ctx, `
		INSERT INTO activations (id, kind, subject_id, workflow_id, code_digest, code_hash, code_salt, pin_salt, expires_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		a.ID, a.Kind, a.SubjectID, a.WorkflowID, a.CodeDigest, a.CodeHash, a.CodeSalt, a.PinSalt, a.ExpiresAt, a.CreatedBy)
	if _, ok := isUniqueViolation(err); ok {
		return fmt.Errorf("store activation: %w: %w", ErrActivationClash, err)
	}
	if err != nil {
		return fmt.Errorf("store activation: %w", err)
	}
	return nil
}

// DeleteActivation removes an activation whose workflow never started.
func (st *Store) DeleteActivation(ctx context.Context, id string) error {
	if _, err := st.DB.ExecContext(ctx, `DELETE FROM activations WHERE id = $1`, id); err != nil {
		return fmt.Errorf("remove activation %s: %w", id, err)
	}
	return nil
}

// RetireOrphanActivation expires a live activation that has no workflow
// behind it (a crash between its insert and its workflow's start).
func (st *Store) RetireOrphanActivation(ctx context.Context, id string) error {
	if _, err := st.DB.ExecContext(ctx, `UPDATE activations SET state = 'expired', finished_at = now(), updated_at = now()
		WHERE id = $1 AND state IN ('pending', 'activated')`, id); err != nil {
		return fmt.Errorf("retire orphan activation %s: %w", id, err)
	}
	return nil
}

// Summary is an activation without its secrets.
type Summary struct {
	ID          string     `json:"id" db:"id"`
	State       string     `json:"state" db:"state"`
	Attempts    int        `json:"attempts" db:"attempts"`
	ExpiresAt   time.Time  `json:"expires_at" db:"expires_at"`
	ActivatedAt *time.Time `json:"activated_at,omitempty" db:"activated_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty" db:"finished_at"`
	CreatedBy   string     `json:"created_by" db:"created_by"`
	CreatedAt   time.Time  `json:"created_at" db:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at" db:"updated_at"`
	WorkflowID  string     `json:"workflow_id" db:"workflow_id"`
}

// PatientActivations lists a patient's activations, newest first.
func (st *Store) PatientActivations(ctx context.Context, patientID string, limit int) ([]Summary, error) {
	return database.Select[Summary](ctx, st.DB, "list activations", `
		SELECT id, state, attempts, expires_at, activated_at, finished_at, created_by, created_at, updated_at, workflow_id
		FROM activations WHERE kind = 'patient' AND subject_id = $1 ORDER BY created_at DESC LIMIT $2`, patientID, limit)
}

// Material is a re-created activation's new code and PIN material:
// digests, hashes and salts, never the secrets.
type Material struct {
	CodeDigest string
	CodeHash   string
	CodeSalt   string
	PinSalt    string
	ExpiresAt  time.Time
}

// RecordActivationInput is one change of an activation, as the activation
// workflow records it. Its fields (and their JSON names) are part of
// recorded histories: do not rename them.
type RecordActivationInput struct {
	ActivationID string
	// EventKey is unique per change (workflow id, run and sequence): a
	// retried write records its audit event once.
	EventKey string
	State    string
	Attempts int
	// Material is set when the activation was re-created.
	Material *Material
	// AuthCodeHash and AuthCodeSalt are set when the activation completed.
	AuthCodeHash string
	AuthCodeSalt string
	ActivatedAt  time.Time
	FinishedAt   time.Time
	Audit        *AuthAuditEvent
}

// RecordActivation writes the activation's state and its audit event in one
// transaction. It is idempotent: every column is set to an absolute value
// and the audit event is keyed. ErrCodeCollision means the re-created
// activation's new code is live for another activation.
func (st *Store) RecordActivation(ctx context.Context, in *RecordActivationInput) error {
	tx, err := st.beginTx(ctx, "record activation")
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if m := in.Material; m != nil {
		_, err = tx.ExecContext(ctx, `
			UPDATE activations SET code_digest = $2, code_hash = $3, code_salt = $4, pin_salt = $5, expires_at = $6,
				updated_at = now()
			WHERE id = $1`, in.ActivationID, m.CodeDigest, m.CodeHash, m.CodeSalt, m.PinSalt, m.ExpiresAt)
		if _, ok := isUniqueViolation(err); ok {
			return fmt.Errorf("record activation %s: %w: %w", in.ActivationID, ErrCodeCollision, err)
		}
		if err != nil {
			return fmt.Errorf("record activation %s: material: %w", in.ActivationID, err)
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
		return fmt.Errorf("record activation %s: %w", in.ActivationID, err)
	}
	if in.Audit != nil {
		ev := *in.Audit
		if ev.SubjectID == "" {
			// A patient activation's workflow never knows the patient id:
			// the row does.
			err := tx.GetContext(ctx, &ev.SubjectID, `SELECT subject_id FROM activations WHERE id = $1`, in.ActivationID)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("record activation %s: subject: %w", in.ActivationID, err)
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
