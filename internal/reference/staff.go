package reference

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/session"
)

// Staff is the public view of a staff member: the Account that signing in
// needs, and how to reach the person. It never carries the password hash.
type Staff struct {
	Account
	// Email is the person's e-mail address, possibly empty.
	Email string `json:"email" db:"email"`
	// Phone is the E.164 number pages are sent to, possibly empty.
	Phone string `json:"phone" db:"phone"`
	// SlackUserID is the person's Slack member id, possibly empty.
	SlackUserID string `json:"slack_user_id" db:"slack_user_id"`
	// Available is false when the person must not be paged even on shift.
	Available bool `json:"available" db:"available"`
	// CreatedAt is when the record was created.
	CreatedAt time.Time `json:"created_at" db:"created_at"`
}

// staffColumns are the public columns of staff; password_hash is never
// selected by this package.
const staffColumns = `id, login, name, role, access, email, phone, slack_user_id, available, active, created_at`

// Access levels, as stored in staff.access.
var accessLevels = []string{auth.AccessStaff, auth.AccessCharge, auth.AccessAdmin}

var (
	loginPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)
	phonePattern = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	emailPattern = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	slackPattern = regexp.MustCompile(`^[UW][A-Z0-9]{2,31}$`)
)

func checkLogin(v string) error {
	if !loginPattern.MatchString(v) {
		return invalid("login", "must be 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
	}
	return nil
}

func checkAccess(v string) error {
	if !slices.Contains(accessLevels, v) {
		return invalid("access", "must be staff, charge or admin")
	}
	return nil
}

func checkRole(field, v string) error {
	if v == "" {
		return invalid(field, "is required")
	}
	if !ValidRoleName(v) {
		return invalid(field, "%q is not a role name", v)
	}
	return nil
}

func checkEmail(v string) error {
	if v != "" && (len(v) > 254 || !emailPattern.MatchString(v)) {
		return invalid("email", "must be an e-mail address")
	}
	return nil
}

func checkPhone(v string) error {
	if v != "" && !phonePattern.MatchString(v) {
		return invalid("phone", "must be an E.164 number such as +447700900123")
	}
	return nil
}

func checkSlack(v string) error {
	if v != "" && !slackPattern.MatchString(v) {
		return invalid("slack_user_id", "must be a Slack member id such as U012AB3CD")
	}
	return nil
}

func checkPassword(v string) error {
	if n := len(v); n < auth.MinPasswordLength || n > auth.MaxPasswordLength {
		return invalid("password", "must be %d to %d bytes long", auth.MinPasswordLength, auth.MaxPasswordLength)
	}
	return nil
}

// StaffFilter narrows ListStaff; empty fields do not filter.
type StaffFilter struct {
	// Role keeps only staff of this role.
	Role string
}

// ListStaff returns a page of staff, ordered by id.
func (st *Store) ListStaff(ctx context.Context, f StaffFilter, p Page) (List[Staff], error) {
	if f.Role != "" && !ValidRoleName(f.Role) {
		return List[Staff]{}, invalid("role", "%q is not a role name", f.Role)
	}
	return selectList[Staff](ctx, st.DB, p, "list staff", `
		SELECT `+staffColumns+` FROM staff
		WHERE ($1 = '' OR role = $1)
		ORDER BY id LIMIT $2 OFFSET $3`, f.Role, p.Limit+1, p.Offset)
}

// GetStaff returns one staff member, or ErrNotFound.
func (st *Store) GetStaff(ctx context.Context, id string) (Staff, error) {
	return database.Get[Staff](ctx, st.DB, fmt.Errorf("staff %s: %w", id, ErrNotFound), "get staff "+id,
		`SELECT `+staffColumns+` FROM staff WHERE id = $1`, id)
}

// NewStaff is the body of a staff creation.
type NewStaff struct {
	// ID is the staff id: 1 to 32 letters, digits, '_' or '-'.
	ID string `json:"id"`
	// Login is what the person logs in with; unique.
	Login string `json:"login"`
	// Name is the display name.
	Name string `json:"name"`
	// Role is an existing clinical role.
	Role string `json:"role"`
	// Access is staff (the default), charge or admin.
	Access string `json:"access"`
	// Email is optional.
	Email string `json:"email"`
	// Phone is optional, E.164.
	Phone string `json:"phone"`
	// SlackUserID is optional.
	SlackUserID string `json:"slack_user_id"`
	// Available defaults to true.
	Available *bool `json:"available"`
	// Password is 8 to 72 bytes; only its bcrypt hash is stored.
	Password string `json:"password"`
}

// Validate checks everything that does not need the database, and fills
// the defaults.
func (in *NewStaff) Validate() error {
	if in.Access == "" {
		in.Access = auth.AccessStaff
	}
	if in.Available == nil {
		t := true
		in.Available = &t
	}
	switch {
	case in.ID == "":
		return invalid("id", "is required")
	case !ValidStaffID(in.ID):
		return invalid("id", "must be 1 to 32 letters, digits, '_' or '-'")
	}
	if in.Login == "" {
		return invalid("login", "is required")
	}
	checks := []func() error{
		func() error { return checkLogin(in.Login) },
		func() error { return checkText("name", in.Name, 200, true, false) },
		func() error { return checkRole("role", in.Role) },
		func() error { return checkAccess(in.Access) },
		func() error { return checkEmail(in.Email) },
		func() error { return checkPhone(in.Phone) },
		func() error { return checkSlack(in.SlackUserID) },
		func() error { return checkPassword(in.Password) },
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// CreateStaff validates in, hashes its password and inserts the staff
// member. A duplicate id or login is a *ConflictError, an unknown role a
// *FieldError naming "role".
func (st *Store) CreateStaff(ctx context.Context, in NewStaff) (Staff, error) {
	if err := in.Validate(); err != nil {
		return Staff{}, err
	}
	hash, err := auth.HashPassword(in.Password)
	if err != nil {
		return Staff{}, invalid("password", "must be %d to %d bytes long", auth.MinPasswordLength, auth.MaxPasswordLength)
	}
	var s Staff
	err = st.DB.GetContext(ctx, &s, `
		INSERT INTO staff (id, login, name, role, access, email, phone, slack_user_id, available, password_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		RETURNING `+staffColumns,
		in.ID, in.Login, strings.TrimSpace(in.Name), in.Role, in.Access, in.Email, in.Phone, in.SlackUserID, *in.Available, hash)
	if err != nil {
		return Staff{}, mapDBError("create staff "+in.ID, err)
	}
	return s, nil
}

// StaffPatch is the body of a partial staff update: absent (nil) fields are
// left as they are.
type StaffPatch struct {
	// Login is a new login (admin only).
	Login *string `json:"login"`
	// Name is a new display name (admin only).
	Name *string `json:"name"`
	// Role is a new clinical role (admin only).
	Role *string `json:"role"`
	// Access is a new access level (admin only).
	Access *string `json:"access"`
	// Email is a new e-mail address (admin only).
	Email *string `json:"email"`
	// Phone is a new phone number (admin or self).
	Phone *string `json:"phone"`
	// SlackUserID is a new Slack member id (admin or self).
	SlackUserID *string `json:"slack_user_id"`
	// Available marks the person (un)available (admin, charge or self).
	Available *bool `json:"available"`
	// Password is a new password (self only, with CurrentPassword; an
	// admin resets another person's password with ResetStaffPassword).
	Password *string `json:"password"`
	// CurrentPassword proves, with Password, that the person changing their
	// password knows the old one (a stolen access token is not enough).
	CurrentPassword *string `json:"current_password"`
	// Active deactivates (false) or reactivates an account (admin only).
	Active *bool `json:"active"`
}

// RevokesSessions returns why applying p ends every session of the person
// (a session.Reason*), or "" when it does not: a password change, a change
// of role, access level or login, and a deactivation all do.
func (p *StaffPatch) RevokesSessions() string {
	switch {
	case p.Password != nil:
		return session.ReasonPasswordChange
	case p.Active != nil && !*p.Active:
		return session.ReasonDeactivated
	case p.Role != nil || p.Access != nil || p.Login != nil:
		return session.ReasonAccessChanged
	}
	return ""
}

// fields lists the JSON names of the fields the patch sets, in a fixed
// order.
func (p *StaffPatch) fields() []string {
	var out []string
	add := func(set bool, name string) {
		if set {
			out = append(out, name)
		}
	}
	add(p.Login != nil, "login")
	add(p.Name != nil, "name")
	add(p.Role != nil, "role")
	add(p.Access != nil, "access")
	add(p.Email != nil, "email")
	add(p.Phone != nil, "phone")
	add(p.SlackUserID != nil, "slack_user_id")
	add(p.Available != nil, "available")
	add(p.Password != nil, "password")
	add(p.Active != nil, "active")
	return out
}

// Caller is the authenticated staff member making a change.
type Caller struct {
	// ID is the caller's staff id.
	ID string
	// Access is the caller's access level: staff, charge or admin.
	Access string
}

// selfFields may be changed by the person themselves; chargeFields by a
// charge nurse on anyone. An admin may change everything.
var (
	selfFields   = []string{"available", "phone", "slack_user_id", "password"}
	chargeFields = []string{"available"}
)

// CheckAccess returns a *ForbiddenError naming the first field of p that
// caller may not change on staff member targetID: an admin may change
// everything, a charge nurse only availability, and anyone their own
// availability, phone, Slack id and password.
func (p *StaffPatch) CheckAccess(caller Caller, targetID string) error {
	self := caller.ID != "" && caller.ID == targetID
	if p.Password != nil && !self {
		return &ForbiddenError{Field: "password", Message: "only the person may change their password (with current_password); " +
			"an admin resets it with POST /v1/staff/{id}/password-reset"}
	}
	if p.CurrentPassword != nil && p.Password == nil {
		return invalid("current_password", "goes only with password")
	}
	if p.Password != nil && p.CurrentPassword == nil {
		return invalid("current_password", "is required to change your password")
	}
	if p.Active != nil && self && !*p.Active {
		return &ForbiddenError{Field: "active", Message: "you may not deactivate your own account"}
	}
	if caller.Access == auth.AccessAdmin {
		return nil
	}
	for _, f := range p.fields() {
		switch {
		case self && slices.Contains(selfFields, f):
		case caller.Access == auth.AccessCharge && slices.Contains(chargeFields, f):
		case self:
			return &ForbiddenError{Field: f, Message: "only an admin may change " + f}
		case caller.Access == auth.AccessCharge:
			return &ForbiddenError{Field: f, Message: "a charge nurse may only change another person's availability"}
		default:
			return &ForbiddenError{Field: f, Message: "you may only change your own availability, phone, Slack id and password"}
		}
	}
	return nil
}

// Validate checks the values of the fields the patch sets.
func (p *StaffPatch) Validate() error {
	var checks []func() error
	if p.Login != nil {
		checks = append(checks, func() error { return checkLogin(*p.Login) })
	}
	if p.Name != nil {
		checks = append(checks, func() error { return checkText("name", *p.Name, 200, true, false) })
	}
	if p.Role != nil {
		checks = append(checks, func() error { return checkRole("role", *p.Role) })
	}
	if p.Access != nil {
		checks = append(checks, func() error { return checkAccess(*p.Access) })
	}
	if p.Email != nil {
		checks = append(checks, func() error { return checkEmail(*p.Email) })
	}
	if p.Phone != nil {
		checks = append(checks, func() error { return checkPhone(*p.Phone) })
	}
	if p.SlackUserID != nil {
		checks = append(checks, func() error { return checkSlack(*p.SlackUserID) })
	}
	if p.Password != nil {
		checks = append(checks, func() error { return checkPassword(*p.Password) })
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// lockAdmins locks every admin row for the transaction, so that concurrent
// demotions and deletions cannot together remove the last admin.
func lockAdmins(ctx context.Context, tx *sqlx.Tx) error {
	var ids []string
	if err := tx.SelectContext(ctx, &ids, `SELECT id FROM staff WHERE access = 'admin' ORDER BY id FOR UPDATE`); err != nil {
		return fmt.Errorf("lock admins: %w", err)
	}
	return nil
}

// requireAnAdmin fails with a *ConflictError naming field when no admin
// would remain.
func requireAnAdmin(ctx context.Context, tx *sqlx.Tx, field string) error {
	return requireAnActiveAdmin(ctx, tx, field)
}

// requireAnActiveAdmin fails with a *ConflictError naming field when no
// active admin would remain.
func requireAnActiveAdmin(ctx context.Context, tx *sqlx.Tx, field string) error {
	var n int
	if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM staff WHERE access = 'admin' AND active`); err != nil {
		return fmt.Errorf("count admins: %w", err)
	}
	if n == 0 {
		return conflict(field, "Vigil must keep at least one active admin")
	}
	return nil
}

// checkCurrentPassword locks staff member id's row and checks password is
// theirs: a *ForbiddenError naming current_password when it is not.
func checkCurrentPassword(ctx context.Context, tx *sqlx.Tx, id, password string) error {
	hash, err := database.Get[string](ctx, tx, fmt.Errorf("staff %s: %w", id, ErrNotFound), "read password hash",
		`SELECT password_hash FROM staff WHERE id = $1 FOR UPDATE`, id)
	if err != nil {
		return err
	}
	if !auth.CheckPassword(hash, password) {
		return &ForbiddenError{Field: "current_password", Message: "is not your current password"}
	}
	return nil
}

// ResetStaffPassword sets a new password for staff member id on an admin's
// authority and ends every session of that person, in one transaction: a
// *FieldError naming new_password for a bad one, ErrNotFound for an unknown
// id.
func (st *Store) ResetStaffPassword(ctx context.Context, id, newPassword string) error {
	if n := len(newPassword); n < auth.MinPasswordLength || n > auth.MaxPasswordLength {
		return invalid("new_password", "must be %d to %d bytes long", auth.MinPasswordLength, auth.MaxPasswordLength)
	}
	hash, err := auth.HashPassword(newPassword)
	if err != nil {
		return invalid("new_password", "must be %d to %d bytes long", auth.MinPasswordLength, auth.MaxPasswordLength)
	}
	return st.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE staff SET password_hash = $2 WHERE id = $1`, id, hash)
		if err != nil {
			return fmt.Errorf("reset password of %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("reset password of %s: %w", id, err)
		} else if n == 0 {
			return fmt.Errorf("staff %s: %w", id, ErrNotFound)
		}
		_, err = session.RevokeSubject(ctx, tx, auth.SubjectStaff, id, session.ReasonPasswordReset)
		return err
	})
}

// PatchStaff applies p to staff member id on behalf of caller, in one
// transaction: a *ForbiddenError when caller may not change a field, a
// *FieldError for a bad value, ErrNotFound for an unknown id, a
// *ConflictError for a taken login or when no admin would remain.
func (st *Store) PatchStaff(ctx context.Context, caller Caller, id string, p StaffPatch) (Staff, error) {
	if err := p.CheckAccess(caller, id); err != nil {
		return Staff{}, err
	}
	if err := p.Validate(); err != nil {
		return Staff{}, err
	}
	var hash *string
	if p.Password != nil {
		h, err := auth.HashPassword(*p.Password)
		if err != nil {
			return Staff{}, invalid("password", "must be %d to %d bytes long", auth.MinPasswordLength, auth.MaxPasswordLength)
		}
		hash = &h
	}
	var name *string
	if p.Name != nil {
		n := strings.TrimSpace(*p.Name)
		name = &n
	}
	var s Staff
	err := st.inTx(ctx, func(tx *sqlx.Tx) error {
		if p.Access != nil || p.Active != nil {
			if err := lockAdmins(ctx, tx); err != nil {
				return err
			}
		}
		if p.Password != nil {
			if err := checkCurrentPassword(ctx, tx, id, *p.CurrentPassword); err != nil {
				return err
			}
		}
		err := tx.GetContext(ctx, &s, `
			UPDATE staff SET
				login = COALESCE($2, login), name = COALESCE($3, name),
				role = COALESCE($4, role), access = COALESCE($5, access),
				email = COALESCE($6, email), phone = COALESCE($7, phone),
				slack_user_id = COALESCE($8, slack_user_id),
				available = COALESCE($9, available),
				password_hash = COALESCE($10, password_hash),
				active = COALESCE($11, active)
			WHERE id = $1
			RETURNING `+staffColumns,
			id, p.Login, name, p.Role, p.Access, p.Email, p.Phone, p.SlackUserID, p.Available, hash, p.Active)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("staff %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return mapDBError("patch staff "+id, err)
		}
		if reason := p.RevokesSessions(); reason != "" {
			if _, err := session.RevokeSubject(ctx, tx, auth.SubjectStaff, id, reason); err != nil {
				return err
			}
		}
		if p.Access != nil || p.Active != nil {
			return requireAnActiveAdmin(ctx, tx, map[bool]string{true: "access", false: "active"}[p.Access != nil])
		}
		return nil
	})
	if err != nil {
		return Staff{}, err
	}
	return s, nil
}

// DeleteStaff deletes staff member id with their rotations and overrides,
// in one transaction: ErrNotFound for an unknown id, a *ConflictError when
// incidents refer to them or they are the last admin.
func (st *Store) DeleteStaff(ctx context.Context, id string) error {
	return st.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := lockAdmins(ctx, tx); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM staff WHERE id = $1`, id)
		if err != nil {
			return mapDeleteError("delete staff "+id, "id", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("delete staff %s: %w", id, err)
		} else if n == 0 {
			return fmt.Errorf("staff %s: %w", id, ErrNotFound)
		}
		if _, err := session.RevokeSubject(ctx, tx, auth.SubjectStaff, id, session.ReasonDeleted); err != nil {
			return err
		}
		return requireAnAdmin(ctx, tx, "id")
	})
}
