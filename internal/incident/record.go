package incident

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigil-health/vigil/internal/database"
)

// Row is an incident's projection as the incident workflow writes it on
// every change (the incidents table).
type Row struct {
	ID           string `db:"id"`
	WorkflowID   string `db:"workflow_id"`
	DedupKeyHash string `db:"dedup_key_hash"`
	AlertType    string `db:"alert_type"`
	Severity     string `db:"severity"`
	PatientID    string `db:"patient_id"`
	Room         string `db:"room"`
	Source       string `db:"source"`
	// Integration is the scope of the integration that owns the incident
	// ("" for incidents opened before integrations were scoped).
	Integration string `db:"integration"`
	// UnscopedKeyHash is the hash of the raw dedup key, whatever the
	// integration (never the key itself, which may hold a patient id).
	UnscopedKeyHash string     `db:"unscoped_key_hash"`
	Status          string     `db:"status"`
	AssignedTo      *string    `db:"assigned_to"`
	AssignedRole    string     `db:"assigned_role"`
	AlertCount      int        `db:"alert_count"`
	EscalationStep  int        `db:"escalation_step"`
	OpenedAt        time.Time  `db:"opened_at"`
	AssignedAt      *time.Time `db:"assigned_at"`
	FirstPagedAt    *time.Time `db:"first_paged_at"`
	AcknowledgedAt  *time.Time `db:"acknowledged_at"`
	InProgressAt    *time.Time `db:"in_progress_at"`
	ResolvedAt      *time.Time `db:"resolved_at"`
	ResolvedBy      string     `db:"resolved_by"`
	ResolutionNotes string     `db:"resolution_notes"`
	LastAlertAt     time.Time  `db:"last_alert_at"`
	LastSeq         int        `db:"last_seq"`
}

// AuditEvent is one entry of an incident's audit trail (incident_events),
// as the workflow records it.
type AuditEvent struct {
	Seq        int
	Action     string
	ActorType  string
	ActorID    string
	FromStatus string
	ToStatus   string
	At         time.Time
	Detail     map[string]string
}

// Record upserts the incident row, unless a newer projection is already
// there, and inserts the audit events, in one transaction; replays of the
// same input are no-ops. In the same transaction it arms the escalation
// step the incident now waits for (arm), or cancels the armed one (nil).
func (s *Store) Record(ctx context.Context, row Row, events []AuditEvent, arm *ArmedStep) error {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	_, err = tx.NamedExecContext(ctx, `
		INSERT INTO incidents (id, workflow_id, dedup_key_hash, alert_type, severity, patient_id, room, source,
			integration, unscoped_key_hash, status, assigned_to, assigned_role, alert_count, escalation_step, opened_at, assigned_at,
			first_paged_at, acknowledged_at, in_progress_at, resolved_at, resolved_by, resolution_notes,
			last_alert_at, last_seq, updated_at)
		VALUES (:id, :workflow_id, :dedup_key_hash, :alert_type, :severity, :patient_id, :room, :source,
			:integration, :unscoped_key_hash, :status, :assigned_to, :assigned_role, :alert_count, :escalation_step, :opened_at, :assigned_at,
			:first_paged_at, :acknowledged_at, :in_progress_at, :resolved_at, :resolved_by, :resolution_notes,
			:last_alert_at, :last_seq, now())
		ON CONFLICT (id) DO UPDATE SET
			status = EXCLUDED.status, assigned_to = EXCLUDED.assigned_to, assigned_role = EXCLUDED.assigned_role,
			alert_count = EXCLUDED.alert_count, escalation_step = EXCLUDED.escalation_step,
			assigned_at = EXCLUDED.assigned_at, first_paged_at = EXCLUDED.first_paged_at,
			acknowledged_at = EXCLUDED.acknowledged_at, in_progress_at = EXCLUDED.in_progress_at,
			resolved_at = EXCLUDED.resolved_at, resolved_by = EXCLUDED.resolved_by,
			resolution_notes = EXCLUDED.resolution_notes, last_alert_at = EXCLUDED.last_alert_at,
			last_seq = EXCLUDED.last_seq, updated_at = now()
		WHERE incidents.last_seq < EXCLUDED.last_seq`, row)
	if err != nil {
		return fmt.Errorf("upsert incident %s: %w", row.ID, err)
	}
	if err := armStep(ctx, tx, row.ID, row.LastSeq, arm); err != nil {
		return err
	}
	for _, ev := range events {
		detail, err := json.Marshal(ev.Detail)
		if err != nil {
			return fmt.Errorf("encode event detail: %w", err)
		}
		if ev.Detail == nil {
			detail = []byte("{}")
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO incident_events (incident_id, seq, action, actor_type, actor_id, from_status, to_status, at, detail)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (incident_id, seq) DO NOTHING`,
			row.ID, ev.Seq, ev.Action, ev.ActorType, ev.ActorID, ev.FromStatus, ev.ToStatus, ev.At, detail); err != nil {
			return fmt.Errorf("insert incident event %d: %w", ev.Seq, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit incident %s: %w", row.ID, err)
	}
	return nil
}

// StepRecipient is the person an earlier attempt of the incident's step
// paged in-app (the first such outbox row); found is false when the step
// paged nobody yet.
func (s *Store) StepRecipient(ctx context.Context, incidentID, step string) (recipient string, found bool, err error) {
	return database.Find[string](ctx, s.DB, "look up earlier page of step "+step, `
		SELECT recipient FROM notification_outbox
		WHERE incident_id = $1 AND step = $2 AND channel = 'inapp'
		ORDER BY id LIMIT 1`, incidentID, step)
}
