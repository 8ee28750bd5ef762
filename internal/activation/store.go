// Package activation owns the activation capability's tables: patient and
// device activations, ward devices, external clinicians and the auth audit
// trail (auth_audit). Every SQL statement about them lives here; the API's
// handlers and the activation workflow's activity call the Store.
//
// No PIN, code or token passes through this package in clear: activations
// hold lookup digests, argon2id hashes and salts (see package credential),
// and the audit never receives a secret.
package activation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Store reads and writes activations, devices, clinicians and the auth
// audit.
type Store struct {
	// DB is the Vigil query-model database.
	DB *sqlx.DB
}

// ErrNotFound is returned (wrapped) when the row asked for does not exist.
var ErrNotFound = errors.New("not found")

// ErrActivationClash is returned (wrapped) when a new activation cannot be
// stored because the subject already has a live one, or its code's digest
// is live for another activation (a concurrent creation, or a device code
// collision): look again.
var ErrActivationClash = errors.New("a live activation of the subject or with the code exists")

// ErrCodeCollision is returned (wrapped) by RecordActivation when a
// re-created activation's new code is already live for another activation.
var ErrCodeCollision = errors.New("the new code is live for another activation")

// ErrTypeCodeCollision is the Temporal application error type of
// ErrCodeCollision, as the activation activity reports it: the API draws a
// new code and tries again.
const ErrTypeCodeCollision = "ActivationCodeCollision"

// ConflictError reports a write that clashes with an existing row's unique
// value, e.g. a clinician id or send entry identifier already in use.
type ConflictError struct {
	// Field names the request field whose value clashes.
	Field string
	// Err is the database's error.
	Err error
}

// Error returns "field is already in use".
func (e *ConflictError) Error() string { return e.Field + " is already in use" }

// Unwrap returns the database's error.
func (e *ConflictError) Unwrap() error { return e.Err }

// isUniqueViolation reports whether err is Postgres's unique_violation.
func isUniqueViolation(err error) (*pq.Error, bool) {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23505" {
		return pqErr, true
	}
	return nil, false
}

// notFound wraps ErrNotFound with what was looked for.
func notFound(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrNotFound)
}

// nullTime is NULL for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// emptyToNil is NULL for a nil or empty string.
func emptyToNil(p *string) any {
	if p == nil || *p == "" {
		return nil
	}
	return *p
}

// nonNil turns a nil slice into an empty one (a text[] is never NULL).
func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// beginTx starts a transaction; the caller defers its rollback.
func (st *Store) beginTx(ctx context.Context, what string) (*sqlx.Tx, error) {
	tx, err := st.DB.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: begin: %w", what, err)
	}
	return tx, nil
}
