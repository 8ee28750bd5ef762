package reference

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/incident/oncall"
)

// Shifts are the rotation shifts, in the hospital's local time.
var Shifts = []string{oncall.ShiftDay, oncall.ShiftEvening, oncall.ShiftNight}

// Rotation is a standing assignment: a person works a shift for a role on
// some weekdays.
type Rotation struct {
	// ID is the rotation's id.
	ID int64 `json:"id" db:"id"`
	// Role is the role covered.
	Role string `json:"role" db:"role"`
	// StaffID is the person working it.
	StaffID string `json:"staff_id" db:"staff_id"`
	// Shift is DAY, EVENING or NIGHT.
	Shift string `json:"shift" db:"shift"`
	// Weekdays are ISO weekdays, 1 (Monday) to 7 (Sunday), ascending.
	Weekdays pq.Int64Array `json:"weekdays" db:"weekdays"`
}

const rotationColumns = `id, role, staff_id, shift, weekdays`

// RotationFilter narrows ListRotations; empty fields do not filter.
type RotationFilter struct {
	// Role keeps only rotations for this role.
	Role string
	// StaffID keeps only this person's rotations.
	StaffID string
}

// Validate checks the filter's values.
func (f RotationFilter) Validate() error {
	if f.Role != "" && !ValidRoleName(f.Role) {
		return invalid("role", "%q is not a role name", f.Role)
	}
	if f.StaffID != "" && !ValidStaffID(f.StaffID) {
		return invalid("staff_id", "is not a staff id")
	}
	return nil
}

// ListRotations returns a page of rotations, ordered by id.
func (st *Store) ListRotations(ctx context.Context, f RotationFilter, p Page) (List[Rotation], error) {
	if err := f.Validate(); err != nil {
		return List[Rotation]{}, err
	}
	return selectList[Rotation](ctx, st.DB, p, "list rotations", `
		SELECT `+rotationColumns+` FROM rotations
		WHERE ($1 = '' OR role = $1) AND ($2 = '' OR staff_id = $2)
		ORDER BY id LIMIT $3 OFFSET $4`, f.Role, f.StaffID, p.Limit+1, p.Offset)
}

// RotationInput is the body of a rotation creation.
type RotationInput struct {
	// Role is an existing role.
	Role string `json:"role"`
	// StaffID is an existing staff member.
	StaffID string `json:"staff_id"`
	// Shift is DAY, EVENING or NIGHT.
	Shift string `json:"shift"`
	// Weekdays are ISO weekdays 1..7; absent or null means every day.
	Weekdays []int `json:"weekdays"`
}

// Validate checks everything that does not need the database, and
// normalises Weekdays (defaulted, sorted, without repeats).
func (in *RotationInput) Validate() error {
	if err := checkRole("role", in.Role); err != nil {
		return err
	}
	switch {
	case in.StaffID == "":
		return invalid("staff_id", "is required")
	case !ValidStaffID(in.StaffID):
		return invalid("staff_id", "is not a staff id")
	}
	if !slices.Contains(Shifts, in.Shift) {
		return invalid("shift", "must be DAY, EVENING or NIGHT")
	}
	if in.Weekdays == nil {
		in.Weekdays = []int{1, 2, 3, 4, 5, 6, 7}
	}
	if len(in.Weekdays) == 0 {
		return invalid("weekdays", "must list at least one weekday; omit it for every day")
	}
	for i, d := range in.Weekdays {
		if d < 1 || d > 7 {
			return invalid("weekdays", "weekdays[%d] is %d; ISO weekdays run from 1 (Monday) to 7 (Sunday)", i, d)
		}
	}
	in.Weekdays = slices.Compact(slices.Sorted(slices.Values(in.Weekdays)))
	return nil
}

// CreateRotation validates in and inserts it: a *FieldError for an unknown
// role or staff member, a *ConflictError when the person already has that
// shift for that role.
func (st *Store) CreateRotation(ctx context.Context, in RotationInput) (Rotation, error) {
	if err := in.Validate(); err != nil {
		return Rotation{}, err
	}
	days := make(pq.Int64Array, len(in.Weekdays))
	for i, d := range in.Weekdays {
		days[i] = int64(d)
	}
	var r Rotation
	err := st.DB.GetContext(ctx, &r, `
		INSERT INTO rotations (role, staff_id, shift, weekdays)
		VALUES ($1, $2, $3, $4::smallint[])
		RETURNING `+rotationColumns, in.Role, in.StaffID, in.Shift, days)
	if err != nil {
		return Rotation{}, mapDBError("create rotation", err)
	}
	return r, nil
}

// DeleteRotation deletes rotation id, or returns ErrNotFound.
func (st *Store) DeleteRotation(ctx context.Context, id int64) error {
	return st.deleteByID(ctx, "rotations", id)
}

// deleteByID deletes the row of table with id. table is a constant of this
// package, never input.
func (st *Store) deleteByID(ctx context.Context, table string, id int64) error {
	res, err := st.DB.ExecContext(ctx, `DELETE FROM `+table+` WHERE id = $1`, id)
	if err != nil {
		return mapDeleteError("delete from "+table, "id", err)
	}
	return database.ExpectRow(res, fmt.Errorf("%s %d: %w", table, id, ErrNotFound), "delete from "+table)
}

// Override puts a person on call for a role over a time slot, whatever the
// rotations say.
type Override struct {
	// ID is the override's id.
	ID int64 `json:"id" db:"id"`
	// Role is the role covered.
	Role string `json:"role" db:"role"`
	// StaffID is the person covering it.
	StaffID string `json:"staff_id" db:"staff_id"`
	// StartsAt is the first instant covered.
	StartsAt time.Time `json:"starts_at" db:"starts_at"`
	// EndsAt is the first instant no longer covered.
	EndsAt time.Time `json:"ends_at" db:"ends_at"`
	// Reason says why.
	Reason string `json:"reason" db:"reason"`
	// CreatedBy is the staff id of who created it.
	CreatedBy string `json:"created_by" db:"created_by"`
	// CreatedAt is when it was created.
	CreatedAt time.Time `json:"created_at" db:"created_at"`
}

const overrideColumns = `id, role, staff_id, starts_at, ends_at, reason, created_by, created_at`

// ParseTime parses an RFC 3339 time, returning a *FieldError naming field
// otherwise.
func ParseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, invalid(field, "must be an RFC 3339 time such as 2026-11-22T09:00:00Z")
	}
	return t, nil
}

// OverrideFilter narrows ListOverrides; zero fields do not filter.
type OverrideFilter struct {
	// Role keeps only overrides for this role.
	Role string
	// From keeps only overrides still running at or after From.
	From time.Time
	// To keeps only overrides starting before To.
	To time.Time
}

// Validate checks the filter's values.
func (f OverrideFilter) Validate() error {
	if f.Role != "" && !ValidRoleName(f.Role) {
		return invalid("role", "%q is not a role name", f.Role)
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return invalid("to", "must be after from")
	}
	return nil
}

// ListOverrides returns a page of the overrides overlapping [From, To),
// ordered by start then id.
func (st *Store) ListOverrides(ctx context.Context, f OverrideFilter, p Page) (List[Override], error) {
	if err := f.Validate(); err != nil {
		return List[Override]{}, err
	}
	var from, to *time.Time
	if !f.From.IsZero() {
		from = &f.From
	}
	if !f.To.IsZero() {
		to = &f.To
	}
	return selectList[Override](ctx, st.DB, p, "list overrides", `
		SELECT `+overrideColumns+` FROM oncall_overrides
		WHERE ($1 = '' OR role = $1)
		  AND ($2::timestamptz IS NULL OR ends_at > $2::timestamptz)
		  AND ($3::timestamptz IS NULL OR starts_at < $3::timestamptz)
		ORDER BY starts_at, id LIMIT $4 OFFSET $5`, f.Role, from, to, p.Limit+1, p.Offset)
}

// OverrideInput is the body of an override creation.
type OverrideInput struct {
	// Role is an existing role.
	Role string `json:"role"`
	// StaffID is an existing staff member.
	StaffID string `json:"staff_id"`
	// StartsAt is an RFC 3339 time.
	StartsAt string `json:"starts_at"`
	// EndsAt is an RFC 3339 time after StartsAt.
	EndsAt string `json:"ends_at"`
	// Reason is optional.
	Reason string `json:"reason"`
}

// maxOverride bounds an override's length: covering a role for longer is a
// rotation.
const maxOverride = 90 * 24 * time.Hour

// Parse validates in, returning its times.
func (in *OverrideInput) Parse() (startsAt, endsAt time.Time, err error) {
	if err := checkRole("role", in.Role); err != nil {
		return time.Time{}, time.Time{}, err
	}
	switch {
	case in.StaffID == "":
		return time.Time{}, time.Time{}, invalid("staff_id", "is required")
	case !ValidStaffID(in.StaffID):
		return time.Time{}, time.Time{}, invalid("staff_id", "is not a staff id")
	}
	if in.StartsAt == "" {
		return time.Time{}, time.Time{}, invalid("starts_at", "is required")
	}
	if startsAt, err = ParseTime("starts_at", in.StartsAt); err != nil {
		return time.Time{}, time.Time{}, err
	}
	if in.EndsAt == "" {
		return time.Time{}, time.Time{}, invalid("ends_at", "is required")
	}
	if endsAt, err = ParseTime("ends_at", in.EndsAt); err != nil {
		return time.Time{}, time.Time{}, err
	}
	if !endsAt.After(startsAt) {
		return time.Time{}, time.Time{}, invalid("ends_at", "must be after starts_at")
	}
	if endsAt.Sub(startsAt) > maxOverride {
		return time.Time{}, time.Time{}, invalid("ends_at", "an override lasts at most 90 days; use a rotation instead")
	}
	if err := checkText("reason", in.Reason, 500, false, true); err != nil {
		return time.Time{}, time.Time{}, err
	}
	return startsAt, endsAt, nil
}

// CreateOverride validates in and inserts it, recorded as created by
// createdBy: a *FieldError for bad input or an unknown role or staff member.
func (st *Store) CreateOverride(ctx context.Context, in OverrideInput, createdBy string) (Override, error) {
	startsAt, endsAt, err := in.Parse()
	if err != nil {
		return Override{}, err
	}
	var o Override
	err = st.DB.GetContext(ctx, &o, `
		INSERT INTO oncall_overrides (role, staff_id, starts_at, ends_at, reason, created_by)
		VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING `+overrideColumns, in.Role, in.StaffID, startsAt, endsAt, in.Reason, createdBy)
	if err != nil {
		return Override{}, mapDBError("create override", err)
	}
	return o, nil
}

// DeleteOverride deletes override id, or returns ErrNotFound.
func (st *Store) DeleteOverride(ctx context.Context, id int64) error {
	return st.deleteByID(ctx, "oncall_overrides", id)
}

// OnCallPerson is someone on call, with how to reach them, as the on-call
// schedule finds them.
type OnCallPerson = oncall.Person

// OnCallRole is who is on call for one role.
type OnCallRole struct {
	// Role is the role.
	Role string `json:"role"`
	// People are those on call for it, by id; empty when nobody is.
	People []OnCallPerson `json:"people"`
}

// OnCallAnswer says who is on call at an instant.
type OnCallAnswer struct {
	// At is the instant asked about, in UTC.
	At time.Time `json:"at"`
	// LocalTime is At on the hospital's clock.
	LocalTime string `json:"local_time"`
	// TimeZone is the hospital's time zone.
	TimeZone string `json:"time_zone"`
	// Shift is the shift covering At: DAY, EVENING or NIGHT.
	Shift string `json:"shift"`
	// Weekday is At's ISO weekday on the hospital's clock.
	Weekday int `json:"weekday"`
	// Roles are the roles asked about, by name.
	Roles []OnCallRole `json:"roles"`
}

// OnCall answers who is on call at the instant at in the hospital's time
// zone loc: for role, or for every role when role is empty. An unknown role
// is a *FieldError naming "role".
func (st *Store) OnCall(ctx context.Context, loc *time.Location, role string, at time.Time) (OnCallAnswer, error) {
	var roles []string
	if role != "" {
		if !ValidRoleName(role) {
			return OnCallAnswer{}, invalid("role", "%q is not a role name", role)
		}
		ok, err := st.RoleExists(ctx, role)
		if err != nil {
			return OnCallAnswer{}, err
		}
		if !ok {
			return OnCallAnswer{}, invalid("role", "unknown role %s", role)
		}
		roles = []string{role}
	} else {
		var err error
		if roles, err = st.AllRoles(ctx); err != nil {
			return OnCallAnswer{}, err
		}
	}
	sched := &oncall.Schedule{DB: st.DB, Location: loc}
	if err := sched.Validate(); err != nil {
		return OnCallAnswer{}, fmt.Errorf("on call: %w", err)
	}
	shift, weekday := oncall.ShiftAt(at, loc)
	ans := OnCallAnswer{
		At:        at.UTC(),
		LocalTime: at.In(loc).Format(time.RFC3339),
		TimeZone:  loc.String(),
		Shift:     shift,
		Weekday:   weekday,
		Roles:     make([]OnCallRole, 0, len(roles)),
	}
	for _, r := range roles {
		people, err := sched.OnCall(ctx, r, at)
		if err != nil {
			return OnCallAnswer{}, fmt.Errorf("on call: %w", err)
		}
		if people == nil {
			people = []OnCallPerson{}
		}
		ans.Roles = append(ans.Roles, OnCallRole{Role: r, People: people})
	}
	return ans, nil
}
