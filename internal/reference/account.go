package reference

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/database"
)

// Account is what signing in and token checks need of a staff member.
type Account struct {
	// ID is the staff id, e.g. "N01".
	ID string `json:"id" db:"id"`
	// Login is what the person logs in with.
	Login string `json:"login" db:"login"`
	// Name is the display name.
	Name string `json:"name" db:"name"`
	// Role is the person's clinical role.
	Role string `json:"role" db:"role"`
	// Access is staff, charge or admin.
	Access string `json:"access" db:"access"`
	// Active is false for a deactivated account: it cannot sign in and its
	// sessions have ended.
	Active bool `json:"active" db:"active"`
}

const accountColumns = `id, login, name, role, access, active`

// errNoAccount is the error of a missing account: it matches ErrNotFound,
// and sql.ErrNoRows too for callers written before this store.
func errNoAccount(id string) error {
	return fmt.Errorf("staff %s: %w: %w", id, ErrNotFound, sql.ErrNoRows)
}

// Account returns staff member id's account, or ErrNotFound when it no
// longer exists.
func (st *Store) Account(ctx context.Context, id string) (Account, error) {
	return database.Get[Account](ctx, st.DB, errNoAccount(id), "look up staff "+id,
		`SELECT `+accountColumns+` FROM staff WHERE id = $1`, id)
}

// CheckPassword returns the account with login when password is theirs,
// and false otherwise. An unknown login costs as much as a wrong password
// (auth.CheckPassword("") runs a full check), so timing does not reveal
// which logins exist.
func (st *Store) CheckPassword(ctx context.Context, login, password string) (Account, bool, error) {
	type credentials struct {
		Account
		PasswordHash string `db:"password_hash"`
	}
	cred, found, err := database.Find[credentials](ctx, st.DB, "look up staff login",
		`SELECT `+accountColumns+`, password_hash FROM staff WHERE login = $1`, login)
	if err != nil {
		return Account{}, false, err
	}
	if !auth.CheckPassword(cred.PasswordHash, password) || !found {
		return Account{}, false, nil
	}
	return cred.Account, true, nil
}

// AccountBySlackUser returns the account linked to a Slack member id, or
// ErrNotFound.
func (st *Store) AccountBySlackUser(ctx context.Context, slackUserID string) (Account, error) {
	return database.Get[Account](ctx, st.DB, fmt.Errorf("staff of slack user %s: %w", slackUserID, ErrNotFound), "look up slack user",
		`SELECT `+accountColumns+` FROM staff WHERE slack_user_id = $1 AND slack_user_id <> ''`, slackUserID)
}

// StaffExists reports whether staff member id exists.
func (st *Store) StaffExists(ctx context.Context, id string) (bool, error) {
	var exists bool
	if err := st.DB.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM staff WHERE id = $1)`, id); err != nil {
		return false, fmt.Errorf("look up staff %s: %w", id, err)
	}
	return exists, nil
}
