package reference

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/database"
)

// Severities of alert types, highest first.
var Severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW"}

// ValidSeverity reports whether s is one of Severities.
func ValidSeverity(s string) bool { return slices.Contains(Severities, s) }

// Role is a clinical role staff hold and alerts are routed to.
type Role struct {
	// Role is the role's name, e.g. "NURSE".
	Role string `json:"role" db:"role"`
	// Description says what the role is.
	Description string `json:"description" db:"description"`
	// IsFailsafe marks the one role that ends every escalation.
	IsFailsafe bool `json:"is_failsafe" db:"is_failsafe"`
}

// ListRoles returns a page of roles, ordered by name.
func (st *Store) ListRoles(ctx context.Context, p Page) (List[Role], error) {
	return selectList[Role](ctx, st.DB, p, "list roles", `
		SELECT role, description, is_failsafe FROM staff_roles
		ORDER BY role LIMIT $1 OFFSET $2`, p.Limit+1, p.Offset)
}

// RoleExists reports whether role is in staff_roles.
func (st *Store) RoleExists(ctx context.Context, role string) (bool, error) {
	var ok bool
	if err := st.DB.GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM staff_roles WHERE role = $1)`, role); err != nil {
		return false, fmt.Errorf("look up role %s: %w", role, err)
	}
	return ok, nil
}

// AllRoles returns every role name, ordered.
func (st *Store) AllRoles(ctx context.Context) ([]string, error) {
	var roles []string
	if err := st.DB.SelectContext(ctx, &roles, `SELECT role FROM staff_roles ORDER BY role`); err != nil {
		return nil, fmt.Errorf("list roles: %w", err)
	}
	return roles, nil
}

// AlertType is one entry of the alert catalogue.
type AlertType struct {
	// AlertType is the type's name, e.g. "CARDIAC_ARREST".
	AlertType string `json:"alert_type" db:"alert_type"`
	// Severity is CRITICAL, HIGH, MEDIUM or LOW.
	Severity string `json:"severity" db:"severity"`
	// Category groups related types, e.g. "CARDIAC".
	Category string `json:"category" db:"category"`
	// Description says what the alert means.
	Description string `json:"description" db:"description"`
	// RequiresImmediateResponse marks alerts that need someone at once.
	RequiresImmediateResponse bool `json:"requires_immediate_response" db:"requires_immediate_response"`
	// Roles are the roles to try, in order.
	Roles pq.StringArray `json:"roles" db:"roles"`
	// UpdatedAt is when the entry was last written.
	UpdatedAt time.Time `json:"updated_at" db:"updated_at"`
}

const alertTypeColumns = `alert_type, severity, category, description, requires_immediate_response, roles, updated_at`

// AlertTypeSeverities returns every alert type's severity, by type name.
func (st *Store) AlertTypeSeverities(ctx context.Context) (map[string]string, error) {
	var rows []struct {
		AlertType string `db:"alert_type"`
		Severity  string `db:"severity"`
	}
	if err := st.DB.SelectContext(ctx, &rows, `SELECT alert_type, severity FROM alert_types`); err != nil {
		return nil, fmt.Errorf("load alert catalogue: %w", err)
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.AlertType] = r.Severity
	}
	return out, nil
}

// AlertTypeFilter narrows ListAlertTypes; empty fields do not filter.
type AlertTypeFilter struct {
	// Severity keeps only types of this severity.
	Severity string
	// Category keeps only types of this category.
	Category string
}

// Validate checks the filter's values.
func (f AlertTypeFilter) Validate() error {
	if f.Severity != "" && !ValidSeverity(f.Severity) {
		return invalid("severity", "must be CRITICAL, HIGH, MEDIUM or LOW")
	}
	return checkText("category", f.Category, 64, false, false)
}

// ListAlertTypes returns a page of the catalogue, ordered by name.
func (st *Store) ListAlertTypes(ctx context.Context, f AlertTypeFilter, p Page) (List[AlertType], error) {
	if err := f.Validate(); err != nil {
		return List[AlertType]{}, err
	}
	return selectList[AlertType](ctx, st.DB, p, "list alert types", `
		SELECT `+alertTypeColumns+` FROM alert_types
		WHERE ($1 = '' OR severity = $1) AND ($2 = '' OR category = $2)
		ORDER BY alert_type LIMIT $3 OFFSET $4`, f.Severity, f.Category, p.Limit+1, p.Offset)
}

// GetAlertType returns one alert type, or ErrNotFound.
func (st *Store) GetAlertType(ctx context.Context, name string) (AlertType, error) {
	return database.Get[AlertType](ctx, st.DB, fmt.Errorf("alert type %s: %w", name, ErrNotFound), "get alert type "+name,
		`SELECT `+alertTypeColumns+` FROM alert_types WHERE alert_type = $1`, name)
}

// AlertTypeInput is the body of a create-or-replace of an alert type.
type AlertTypeInput struct {
	// Severity is CRITICAL, HIGH, MEDIUM or LOW.
	Severity string `json:"severity"`
	// Category groups related types.
	Category string `json:"category"`
	// Description says what the alert means; optional.
	Description string `json:"description"`
	// RequiresImmediateResponse is required.
	RequiresImmediateResponse *bool `json:"requires_immediate_response"`
	// Roles are the roles to try, in order: at least one, no repeats, each
	// an existing role.
	Roles []string `json:"roles"`
}

// Validate checks everything that does not need the database.
func (in *AlertTypeInput) Validate() error {
	if !ValidSeverity(in.Severity) {
		return invalid("severity", "must be CRITICAL, HIGH, MEDIUM or LOW")
	}
	if err := checkText("category", in.Category, 64, true, false); err != nil {
		return err
	}
	if err := checkText("description", in.Description, 500, false, true); err != nil {
		return err
	}
	if in.RequiresImmediateResponse == nil {
		return invalid("requires_immediate_response", "is required")
	}
	if len(in.Roles) == 0 {
		return invalid("roles", "must list at least one role")
	}
	if len(in.Roles) > 20 {
		return invalid("roles", "must list at most 20 roles")
	}
	for i, r := range in.Roles {
		if !ValidRoleName(r) {
			return invalid("roles", "roles[%d] %q is not a role name", i, r)
		}
		if slices.Contains(in.Roles[:i], r) {
			return invalid("roles", "roles[%d] %s is listed twice", i, r)
		}
	}
	return nil
}

// PutAlertType creates or replaces the alert type name and reports whether
// it was created. Every role must exist (*FieldError "roles" otherwise).
func (st *Store) PutAlertType(ctx context.Context, name string, in AlertTypeInput) (AlertType, bool, error) {
	if !ValidAlertTypeName(name) {
		return AlertType{}, false, invalid("type", "must be upper-case letters, digits and '_', 2 to 64 long, starting with a letter")
	}
	if err := in.Validate(); err != nil {
		return AlertType{}, false, err
	}
	var out struct {
		AlertType
		Created bool `db:"created"`
	}
	err := st.inTx(ctx, func(tx *sqlx.Tx) error {
		missing, idx, err := unknownRole(ctx, tx, in.Roles)
		if err != nil {
			return err
		}
		if missing != "" {
			return invalid("roles", "roles[%d] %s is not a known role", idx, missing)
		}
		err = tx.GetContext(ctx, &out, `
			INSERT INTO alert_types (alert_type, severity, category, description, requires_immediate_response, roles, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, now())
			ON CONFLICT (alert_type) DO UPDATE SET
				severity = EXCLUDED.severity, category = EXCLUDED.category,
				description = EXCLUDED.description,
				requires_immediate_response = EXCLUDED.requires_immediate_response,
				roles = EXCLUDED.roles, updated_at = now()
			RETURNING `+alertTypeColumns+`, (xmax = 0) AS created`,
			name, in.Severity, in.Category, in.Description, *in.RequiresImmediateResponse, pq.StringArray(in.Roles))
		return mapDBError("put alert type "+name, err)
	})
	if err != nil {
		return AlertType{}, false, err
	}
	return out.AlertType, out.Created, nil
}
