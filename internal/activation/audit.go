package activation

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/database"
)

// AuthAuditEvent is one auth_audit row to write. The activation workflow
// passes it to its activity, so its fields (and their JSON names) are part
// of recorded histories: do not rename them. An empty SubjectID in
// RecordActivation is the activation row's subject (a patient activation's
// workflow does not hold the patient id).
type AuthAuditEvent struct {
	Event       string
	SubjectType string
	SubjectID   string
	Actor       string
	Reason      string
	RequestID   string
	ClientIP    string
}

// Audit writes one auth_audit row. It must never be given a secret.
func (st *Store) Audit(ctx context.Context, e AuthAuditEvent) error {
	return insertAuthAudit(ctx, st.DB, "", &e)
}

// insertAuthAudit writes e with db (the database or a transaction). A
// non-empty key makes the write idempotent: a retried write records the
// event once.
func insertAuthAudit(ctx context.Context, db sqlx.ExecerContext, key string, e *AuthAuditEvent) error {
	var eventKey any
	if key != "" {
		eventKey = key
	}
	_, err := db.ExecContext(ctx, `
		INSERT INTO auth_audit (event, subject_type, subject_id, actor, reason, request_id, client_ip, event_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_key) DO NOTHING`,
		e.Event, e.SubjectType, e.SubjectID, e.Actor, e.Reason, e.RequestID, e.ClientIP, eventKey)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Event, err)
	}
	return nil
}

// AuditEntry is one auth_audit row as the API lists it.
type AuditEntry struct {
	ID          int64     `json:"id" db:"id"`
	At          time.Time `json:"at" db:"at"`
	Event       string    `json:"event" db:"event"`
	SubjectType string    `json:"subject_type" db:"subject_type"`
	SubjectID   string    `json:"subject_id" db:"subject_id"`
	Actor       string    `json:"actor" db:"actor"`
	Reason      string    `json:"reason" db:"reason"`
	RequestID   string    `json:"request_id" db:"request_id"`
	ClientIP    string    `json:"client_ip" db:"client_ip"`
}

// AuditFilter selects a page of the auth audit, newest first.
type AuditFilter struct {
	// Before is the id cursor from the previous page; 0 starts at the
	// newest entry.
	Before int64
	// Events, when not empty, keeps only these events.
	Events []string
	// SubjectType and SubjectID, when not empty, keep only that subject.
	SubjectType string
	SubjectID   string
	Limit       int
}

// ListAuthAudit pages through the auth audit, newest first.
func (st *Store) ListAuthAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	// before is an auth_audit id (bigint); the query casts it so that
	// Postgres does not infer integer from "= 0".
	return database.Select[AuditEntry](ctx, st.DB, "list auth audit", `
		SELECT id, at, event, subject_type, subject_id, actor, reason, request_id, client_ip FROM auth_audit
		WHERE ($1::bigint = 0 OR id < $1::bigint) AND (cardinality($2::text[]) = 0 OR event = ANY($2))
			AND ($3 = '' OR subject_type = $3) AND ($4 = '' OR subject_id = $4)
		ORDER BY id DESC LIMIT $5`, f.Before, pq.Array(nonNil(f.Events)), f.SubjectType, f.SubjectID, f.Limit)
}
