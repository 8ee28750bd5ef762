// Package oncall answers who is on call for a clinical role at a given time,
// and picks the least-busy of them.
//
// Who is on call comes from two tables: rotations (a person works a shift on
// some weekdays for a role, in the hospital's local time) and
// oncall_overrides (a person covers a role for a time slot). An override
// covering an instant replaces the rotation of its role for that instant.
// Staff marked unavailable are never on call. Being logged in to Vigil plays
// no part.
package oncall

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigil-health/vigil/internal/database"
)

// ErrInvalidSchedule is returned by every Schedule method when the Schedule
// lacks its database or its time zone.
var ErrInvalidSchedule = errors.New("invalid on-call schedule")

// ErrNobodyOnCall is returned by PickAssignee and PickFailsafe when nobody
// eligible is on call.
var ErrNobodyOnCall = errors.New("nobody is on call")

// ErrNoFailsafeRole is returned by FailsafeRole and PickFailsafe when no role
// is marked as the failsafe.
var ErrNoFailsafeRole = errors.New("no failsafe role is configured")

// Schedule answers on-call questions from the staff, rotations and
// oncall_overrides tables.
type Schedule struct {
	// DB is the Vigil query-model database.
	DB *sqlx.DB
	// Location is the hospital's time zone, in which shifts are defined
	// (for example Europe/London).
	Location *time.Location
}

// Person is a member of staff who is on call, with how to reach them.
type Person struct {
	// ID is the staff id, e.g. "N01".
	ID string `json:"id" db:"id"`
	// Name is the person's display name.
	Name string `json:"name" db:"name"`
	// Role is the person's own clinical role (staff.role), which need not be
	// the role they are on call for when covering through an override.
	Role string `json:"role" db:"role"`
	// Access is what the person may do in Vigil: staff, charge or admin.
	Access string `json:"access" db:"access"`
	// Phone is the number pages are sent to by SMS.
	Phone string `json:"phone" db:"phone"`
	// SlackUserID is the person's Slack member id, possibly empty.
	SlackUserID string `json:"slack_user_id" db:"slack_user_id"`
	// Email is the person's e-mail address, possibly empty.
	Email string `json:"email" db:"email"`
}

// Validate reports whether s can answer queries: it needs a database and a
// time zone.
func (s *Schedule) Validate() error {
	switch {
	case s == nil:
		return fmt.Errorf("%w: schedule is nil", ErrInvalidSchedule)
	case s.DB == nil:
		return fmt.Errorf("%w: no database", ErrInvalidSchedule)
	case s.Location == nil:
		return fmt.Errorf("%w: no time zone", ErrInvalidSchedule)
	}
	return nil
}

// dutyCTE defines duty(role, staff_id): who is on call for which role at $1
// (an instant), where $2 and $3 are the local shift and ISO weekday of $1 and
// $4 restricts to one role (the empty string for every role). An override covering $1
// replaces the rotation of its role; availability is not applied here.
const dutyCTE = `
WITH ov AS (
    SELECT o.role, o.staff_id
    FROM oncall_overrides o
    WHERE o.starts_at <= $1 AND $1 < o.ends_at
      AND ($4::text = '' OR o.role = $4::text)
), duty AS (
    SELECT ov.role, ov.staff_id FROM ov
    UNION
    SELECT r.role, r.staff_id
    FROM rotations r
    WHERE r.shift = $2 AND $3::smallint = ANY (r.weekdays)
      AND ($4::text = '' OR r.role = $4::text)
      AND NOT EXISTS (SELECT 1 FROM ov WHERE ov.role = r.role)
)`

// onCallQuery lists the available people in duty, by id.
const onCallQuery = dutyCTE + `
SELECT s.id, s.name, s.role, s.access, s.phone, s.slack_user_id, s.email
FROM staff s
WHERE s.available
  AND s.id IN (SELECT d.staff_id FROM duty d)
ORDER BY s.id`

// OnCall returns the people on call for role at the instant at, ordered by
// id. If any override for role covers at (starts_at <= at < ends_at), only
// the override people are on call; otherwise the people whose rotation for
// role has the shift and weekday of at in the schedule's time zone. Staff
// marked unavailable are left out either way, so the result may be empty.
func (s *Schedule) OnCall(ctx context.Context, role string, at time.Time) ([]Person, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if role == "" {
		return nil, fmt.Errorf("%w: empty role", ErrInvalidSchedule)
	}
	people, err := s.onCall(ctx, role, at)
	if err != nil {
		return nil, fmt.Errorf("list on-call staff for %s: %w", role, err)
	}
	return people, nil
}

// OnCallAnyRole returns everyone on call for any role at the instant at,
// each person once, ordered by id. Each role follows the rules of OnCall.
func (s *Schedule) OnCallAnyRole(ctx context.Context, at time.Time) ([]Person, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	people, err := s.onCall(ctx, "", at)
	if err != nil {
		return nil, fmt.Errorf("list on-call staff: %w", err)
	}
	return people, nil
}

func (s *Schedule) onCall(ctx context.Context, role string, at time.Time) ([]Person, error) {
	shift, weekday := ShiftAt(at, s.Location)
	people := []Person{}
	if err := s.DB.SelectContext(ctx, &people, onCallQuery, at, shift, weekday, role); err != nil {
		return nil, err
	}
	return people, nil
}

// FailsafeRole returns the role marked is_failsafe: the last destination of
// every escalation. It returns ErrNoFailsafeRole when none is marked.
func (s *Schedule) FailsafeRole(ctx context.Context) (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	return database.Get[string](ctx, s.DB, ErrNoFailsafeRole, "look up failsafe role", `SELECT role FROM staff_roles WHERE is_failsafe`)
}
