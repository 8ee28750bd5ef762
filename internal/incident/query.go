package incident

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/keyset"
)

// Incident statuses, as stored in incidents.status.
const (
	StatusOpen         = "OPEN"
	StatusAssigned     = "ASSIGNED"
	StatusAcknowledged = "ACKNOWLEDGED"
	StatusInProgress   = "IN_PROGRESS"
	StatusResolved     = "RESOLVED"
)

// Statuses are every incident status, in lifecycle order.
var Statuses = []string{StatusOpen, StatusAssigned, StatusAcknowledged, StatusInProgress, StatusResolved}

// Severities are every alert severity, most severe first.
var Severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW"}

// Page sizes of List.
const (
	// DefaultLimit is the page size when Filter.Limit is zero.
	DefaultLimit = 50
	// MaxLimit is the largest page size List accepts.
	MaxLimit = 200
)

// ErrNotFound is returned by Get when no incident has the id.
var ErrNotFound = errors.New("incident not found")

// ErrInvalidCursor is returned by DecodeCursor for a cursor it did not
// make. It is keyset.ErrInvalid, which every list's cursors share.
var ErrInvalidCursor = keyset.ErrInvalid

// ErrInvalidFilter is returned by List and Metrics for a filter they cannot
// run (a limit out of range, an inverted time window); the API validates
// its input first, so this is a programming error.
var ErrInvalidFilter = errors.New("invalid incident filter")

// Incident is one incident as listed: the projection's columns and the
// assignee's name. Timestamps the incident has not reached are nil.
type Incident struct {
	ID         string `json:"id" db:"id"`
	WorkflowID string `json:"workflow_id" db:"workflow_id"`
	Status     string `json:"status" db:"status"`
	Severity   string `json:"severity" db:"severity"`
	AlertType  string `json:"alert_type" db:"alert_type"`
	// PatientID and Room are personal data: served to clinical staff, never
	// logged.
	PatientID      string     `json:"patient_id" db:"patient_id"`
	Room           string     `json:"room" db:"room"`
	Source         string     `json:"source" db:"source"`
	AssignedTo     *string    `json:"assigned_to" db:"assigned_to"`
	AssigneeName   *string    `json:"assignee_name" db:"assignee_name"`
	AssignedRole   string     `json:"assigned_role" db:"assigned_role"`
	AlertCount     int        `json:"alert_count" db:"alert_count"`
	EscalationStep int        `json:"escalation_step" db:"escalation_step"`
	OpenedAt       time.Time  `json:"opened_at" db:"opened_at"`
	AssignedAt     *time.Time `json:"assigned_at" db:"assigned_at"`
	FirstPagedAt   *time.Time `json:"first_paged_at" db:"first_paged_at"`
	AcknowledgedAt *time.Time `json:"acknowledged_at" db:"acknowledged_at"`
	InProgressAt   *time.Time `json:"in_progress_at" db:"in_progress_at"`
	ResolvedAt     *time.Time `json:"resolved_at" db:"resolved_at"`
}

// IncidentDetail is one incident with its resolution and full audit
// timeline.
type IncidentDetail struct {
	Incident
	LastAlertAt time.Time `json:"last_alert_at" db:"last_alert_at"`
	// ResolvedBy is the staff id that resolved the incident, "source" when
	// the source's all-clear resolved it, nil while unresolved.
	ResolvedBy      *string `json:"resolved_by" db:"resolved_by"`
	ResolvedByName  *string `json:"resolved_by_name" db:"resolved_by_name"`
	ResolutionNotes string  `json:"resolution_notes" db:"resolution_notes"`
	// Timeline is every audit event, in sequence order.
	Timeline []Event `json:"timeline"`
}

// Event is one entry of an incident's audit trail.
type Event struct {
	Seq       int    `json:"seq" db:"seq"`
	Action    string `json:"action" db:"action"`
	ActorType string `json:"actor_type" db:"actor_type"`
	ActorID   string `json:"actor_id" db:"actor_id"`
	// ActorName is the staff member's name when the actor is staff.
	ActorName  *string         `json:"actor_name" db:"actor_name"`
	FromStatus string          `json:"from_status" db:"from_status"`
	ToStatus   string          `json:"to_status" db:"to_status"`
	At         time.Time       `json:"at" db:"at"`
	Detail     json.RawMessage `json:"detail" db:"detail"`
}

// Cursor is a position in the newest-first order of List: the last
// incident of a page.
type Cursor struct {
	OpenedAt time.Time
	ID       string
}

// cursorTag marks incident-list cursors (see package keyset).
const cursorTag = "v1"

// Encode returns the cursor as an opaque, URL-safe string.
func (c Cursor) Encode() string { return keyset.Encode(cursorTag, c.OpenedAt, c.ID) }

// DecodeCursor parses a string made by Cursor.Encode; anything else is
// ErrInvalidCursor.
func DecodeCursor(s string) (Cursor, error) {
	at, raw, err := keyset.Decode(cursorTag, s)
	if err != nil {
		return Cursor{}, err
	}
	id, err := uuid.Parse(raw)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: id: %w", ErrInvalidCursor, err)
	}
	return Cursor{OpenedAt: at, ID: id.String()}, nil
}

// Filter selects the incidents List returns. Zero fields do not filter.
type Filter struct {
	// Statuses and Severities keep incidents with any of the values.
	Statuses   []string
	Severities []string
	// AssignedTo keeps incidents currently assigned to this staff id.
	AssignedTo string
	// AlertType keeps incidents of this alert type.
	AlertType string
	// From (inclusive) and To (exclusive) bound opened_at.
	From, To time.Time
	// Limit is the page size: 1 to MaxLimit, zero meaning DefaultLimit.
	Limit int
	// After continues after this cursor (the previous page's Next).
	After *Cursor
}

// Page is one page of List.
type Page = keyset.Page[Incident, Cursor]

// incidentColumns are the columns of Incident, from incidents i and the
// assignee a.
const incidentColumns = `
	i.id, i.workflow_id, i.status, i.severity, i.alert_type, i.patient_id, i.room, i.source,
	i.assigned_to, a.name AS assignee_name, i.assigned_role, i.alert_count, i.escalation_step,
	i.opened_at, i.assigned_at, i.first_paged_at, i.acknowledged_at, i.in_progress_at, i.resolved_at`

// List returns the incidents matching f, newest first (by opened_at, then
// id), one page at a time.
func (s *Store) List(ctx context.Context, f Filter) (*Page, error) {
	limit, err := keyset.PageSize(f.Limit, DefaultLimit, MaxLimit, ErrInvalidFilter)
	if err != nil {
		return nil, err
	}
	var (
		where []string
		args  database.Args
	)
	if len(f.Statuses) > 0 {
		where = append(where, "i.status = ANY("+args.Add(pq.StringArray(f.Statuses))+")")
	}
	if len(f.Severities) > 0 {
		where = append(where, "i.severity = ANY("+args.Add(pq.StringArray(f.Severities))+")")
	}
	if f.AssignedTo != "" {
		where = append(where, "i.assigned_to = "+args.Add(f.AssignedTo))
	}
	if f.AlertType != "" {
		where = append(where, "i.alert_type = "+args.Add(f.AlertType))
	}
	if !f.From.IsZero() {
		where = append(where, "i.opened_at >= "+args.Add(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "i.opened_at < "+args.Add(f.To))
	}
	if f.After != nil {
		where = append(where, "(i.opened_at, i.id) < ("+args.Add(f.After.OpenedAt)+", "+args.Add(f.After.ID)+"::uuid)")
	}
	q := `SELECT ` + incidentColumns + `
		FROM incidents i LEFT JOIN staff a ON a.id = i.assigned_to`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	// One row more than the page tells whether another page follows.
	q += ` ORDER BY i.opened_at DESC, i.id DESC LIMIT ` + args.Add(limit+1)

	items, err := database.SelectEach(ctx, s.DB, (*Incident).normalize, "list incidents", q, args...)
	if err != nil {
		return nil, err
	}
	return keyset.NewPage(items, limit, func(last *Incident) Cursor { return Cursor{OpenedAt: last.OpenedAt, ID: last.ID} }), nil
}

// Get returns one incident with its timeline, read in one snapshot; an
// unknown id is ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*IncidentDetail, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, fmt.Errorf("incident id %q: %w", id, ErrNotFound)
	}
	tx, err := s.DB.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin incident read: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	var d IncidentDetail
	err = tx.GetContext(ctx, &d, `SELECT `+incidentColumns+`, i.last_alert_at,
			NULLIF(i.resolved_by, '') AS resolved_by, r.name AS resolved_by_name, i.resolution_notes
		FROM incidents i
		LEFT JOIN staff a ON a.id = i.assigned_to
		LEFT JOIN staff r ON r.id = i.resolved_by
		WHERE i.id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("incident %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load incident %s: %w", id, err)
	}
	d.Timeline = []Event{}
	if err := tx.SelectContext(ctx, &d.Timeline, `
		SELECT e.seq, e.action, e.actor_type, e.actor_id, s.name AS actor_name,
			e.from_status, e.to_status, e.at, e.detail
		FROM incident_events e
		LEFT JOIN staff s ON e.actor_type = 'staff' AND s.id = e.actor_id
		WHERE e.incident_id = $1
		ORDER BY e.seq`, id); err != nil {
		return nil, fmt.Errorf("load timeline of incident %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("end incident read: %w", err)
	}
	d.normalize()
	d.LastAlertAt = d.LastAlertAt.UTC()
	for i := range d.Timeline {
		d.Timeline[i].At = d.Timeline[i].At.UTC()
	}
	return &d, nil
}

// normalize puts the incident's timestamps in UTC.
func (in *Incident) normalize() {
	in.OpenedAt = in.OpenedAt.UTC()
	for _, t := range []**time.Time{&in.AssignedAt, &in.FirstPagedAt, &in.AcknowledgedAt, &in.InProgressAt, &in.ResolvedAt} {
		if *t != nil {
			u := (*t).UTC()
			*t = &u
		}
	}
}
