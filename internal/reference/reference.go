// Package reference reads and writes Vigil's reference data: the clinical
// roles, the alert catalogue, staff, on-call rotations and overrides,
// escalation policies and the API keys of alert sources.
//
// Every write validates its input before touching the database, runs in a
// transaction when it touches more than one row, and reports bad input as a
// *FieldError, a clash with existing data as a *ConflictError, a refused
// change as a *ForbiddenError and a missing record as ErrNotFound, so that
// the API can answer with a 4xx that names the field. Postgres constraint
// violations are translated into the same errors.
package reference

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/vigil-health/vigil/internal/database"
)

// Store reads and writes the reference tables.
type Store struct {
	// DB is the Vigil query-model database.
	DB *sqlx.DB
}

// ErrNotFound is returned (wrapped) when the record asked for does not exist.
var ErrNotFound = errors.New("not found")

// FieldError reports a request field whose value is invalid.
type FieldError struct {
	// Field names the offending field, e.g. "role" or "steps[1].wait_seconds".
	Field string
	// Message says what is wrong with it.
	Message string
}

// Error returns "field: message".
func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// ConflictError reports a write that clashes with existing data, such as a
// duplicate login.
type ConflictError struct {
	// Field names the field whose value clashes.
	Field string
	// Message says what it clashes with.
	Message string
}

// Error returns "field: message".
func (e *ConflictError) Error() string { return e.Field + ": " + e.Message }

// ForbiddenError reports a change the caller's access does not allow.
type ForbiddenError struct {
	// Field names the field the caller may not change.
	Field string
	// Message says why.
	Message string
}

// Error returns "field: message".
func (e *ForbiddenError) Error() string { return e.Field + ": " + e.Message }

func invalid(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

func conflict(field, format string, args ...any) *ConflictError {
	return &ConflictError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Pagination bounds of every list.
const (
	// DefaultLimit is the page size when none is asked for.
	DefaultLimit = 50
	// MaxLimit is the largest page size accepted.
	MaxLimit = 200
)

// Page selects a slice of a stably ordered list.
type Page struct {
	// Limit is the maximum number of items, 1..MaxLimit.
	Limit int
	// Offset is the number of items skipped, ≥ 0.
	Offset int
}

// ParsePage reads the limit and offset query parameters; empty strings take
// the defaults (DefaultLimit, 0). It returns a *FieldError naming "limit" or
// "offset" when one is not a number in range.
func ParsePage(limit, offset string) (Page, error) {
	p := Page{Limit: DefaultLimit}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 1 || n > MaxLimit {
			return Page{}, invalid("limit", "must be an integer from 1 to %d", MaxLimit)
		}
		p.Limit = n
	}
	if offset != "" {
		n, err := strconv.Atoi(offset)
		if err != nil || n < 0 || n > 1_000_000_000 {
			return Page{}, invalid("offset", "must be a non-negative integer")
		}
		p.Offset = n
	}
	return p, nil
}

// List is one page of a list, in the list's stable order.
type List[T any] struct {
	// Items are the page's items; never null.
	Items []T `json:"items"`
	// Limit is the page size used.
	Limit int `json:"limit"`
	// Offset is the number of items skipped.
	Offset int `json:"offset"`
	// NextOffset is the offset of the next page, absent on the last page.
	NextOffset *int `json:"next_offset,omitempty"`
}

// newList builds a page from items queried with LIMIT p.Limit+1: the extra
// item, when present, only says that another page follows.
func newList[T any](items []T, p Page) List[T] {
	l := List[T]{Items: items, Limit: p.Limit, Offset: p.Offset}
	if l.Items == nil {
		l.Items = []T{}
	}
	if len(l.Items) > p.Limit {
		l.Items = l.Items[:p.Limit]
		next := p.Offset + p.Limit
		l.NextOffset = &next
	}
	return l
}

var (
	// codePattern matches role and alert type names, as the schema's CHECKs do.
	codePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]{1,63}$`)
	// staffIDPattern matches staff ids, as the schema's CHECK does.
	staffIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
)

// ValidRoleName reports whether role is a well-formed role name (existence
// is a separate question).
func ValidRoleName(role string) bool { return codePattern.MatchString(role) }

// ValidAlertTypeName reports whether name is a well-formed alert type name.
func ValidAlertTypeName(name string) bool { return codePattern.MatchString(name) }

// ValidStaffID reports whether id is a well-formed staff id.
func ValidStaffID(id string) bool { return staffIDPattern.MatchString(id) }

// ParseID parses a numeric record id (rotations, overrides, API keys),
// returning a *FieldError naming field unless it is a positive integer.
func ParseID(field, s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, invalid(field, "must be a positive integer")
	}
	return n, nil
}

// checkText validates a free-text field: at most max characters, no control
// characters (tabs and newlines are allowed when multiline), and not blank
// when required.
func checkText(field, v string, maxLen int, required, multiline bool) error {
	if required && strings.TrimSpace(v) == "" {
		return invalid(field, "is required")
	}
	if utf8.RuneCountInString(v) > maxLen {
		return invalid(field, "must be at most %d characters", maxLen)
	}
	for _, r := range v {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t' || r == '\r')) {
			return invalid(field, "must not contain control characters")
		}
	}
	return nil
}

// constraintErrors maps the schema's constraints to the request field they
// concern. Unique violations become conflicts, the rest invalid fields.
var constraintErrors = map[string]struct{ field, message string }{
	"staff_pkey":                                       {"id", "a staff member with this id already exists"},
	"staff_login_key":                                  {"login", "this login is already taken"},
	"staff_role_fkey":                                  {"role", "unknown role"},
	"staff_id_check":                                   {"id", "must be 1 to 32 letters, digits, '_' or '-'"},
	"staff_access_check":                               {"access", "must be staff, charge or admin"},
	"rotations_role_fkey":                              {"role", "unknown role"},
	"rotations_staff_id_fkey":                          {"staff_id", "unknown staff member"},
	"rotations_role_staff_id_shift_key":                {"shift", "this staff member already has this shift for this role"},
	"rotations_shift_check":                            {"shift", "must be DAY, EVENING or NIGHT"},
	"rotations_weekdays_check":                         {"weekdays", "must be ISO weekdays 1 (Monday) to 7 (Sunday)"},
	"oncall_overrides_role_fkey":                       {"role", "unknown role"},
	"oncall_overrides_staff_id_fkey":                   {"staff_id", "unknown staff member"},
	"oncall_overrides_check":                           {"ends_at", "must be after starts_at"},
	"alert_types_alert_type_check":                     {"type", "must be upper-case letters, digits and '_', 2 to 64 long"},
	"alert_types_severity_check":                       {"severity", "must be CRITICAL, HIGH, MEDIUM or LOW"},
	"alert_types_roles_check":                          {"roles", "must list at least one role"},
	"escalation_policies_alert_type_fkey":              {"id", "unknown alert type"},
	"escalation_policies_alert_type":                   {"id", "this alert type already has a policy"},
	"escalation_policies_severity":                     {"id", "this severity already has a policy"},
	"escalation_policies_steps_check":                  {"steps", "must list at least one step"},
	"escalation_policies_start_reminder_seconds_check": {"start_reminder_seconds", "must be at least 60"},
	"incidents_assigned_to_fkey":                       {"id", "incidents are assigned to this staff member; mark them unavailable instead"},
}

// mapDBError turns a Postgres integrity violation into a *FieldError or a
// *ConflictError naming the field; other errors are returned wrapped with
// what.
func mapDBError(what string, err error) error {
	if err == nil {
		return nil
	}
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || pqErr.Code.Class() != pqerror.Class("23") {
		return fmt.Errorf("%s: %w", what, err)
	}
	known, ok := constraintErrors[pqErr.Constraint]
	field, message := known.field, known.message
	if !ok {
		field = pqErr.Column
		if field == "" {
			field = pqErr.Constraint
		}
		message = "violates " + pqErr.Constraint
	}
	switch pqErr.Code {
	case pqerror.UniqueViolation, pqerror.ExclusionViolation:
		return &ConflictError{Field: field, Message: message}
	default:
		return &FieldError{Field: field, Message: message}
	}
}

// mapDeleteError is mapDBError for a DELETE of the record named by field:
// a foreign key violation there means other rows still refer to the record,
// a *ConflictError rather than bad input.
func mapDeleteError(what, field string, err error) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == pqerror.ForeignKeyViolation {
		message := "other records still refer to it (" + pqErr.Constraint + ")"
		if known, ok := constraintErrors[pqErr.Constraint]; ok {
			message = known.message
		}
		return &ConflictError{Field: field, Message: message}
	}
	return mapDBError(what, err)
}

// inTx runs fn in a transaction, committing when it returns nil.
func (st *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return database.InTx(ctx, st.DB, fn)
}

// unknownRole returns the first of roles (in order) that is not in
// staff_roles, or "" when all exist.
func unknownRole(ctx context.Context, q sqlx.QueryerContext, roles []string) (string, int, error) {
	var missing []struct {
		Role string `db:"role"`
		Idx  int    `db:"idx"`
	}
	err := sqlx.SelectContext(ctx, q, &missing, `
		SELECT u.role, u.idx::int - 1 AS idx
		FROM unnest($1::text[]) WITH ORDINALITY AS u(role, idx)
		WHERE NOT EXISTS (SELECT 1 FROM staff_roles r WHERE r.role = u.role)
		ORDER BY u.idx LIMIT 1`, pq.StringArray(roles))
	if err != nil {
		return "", 0, fmt.Errorf("check roles: %w", err)
	}
	if len(missing) == 0 {
		return "", 0, nil
	}
	return missing[0].Role, missing[0].Idx, nil
}

// selectList runs query, which reads one page with LIMIT p.Limit+1 OFFSET
// p.Offset (both among args), and returns the page; an error is returned as
// "what: err".
func selectList[T any](ctx context.Context, q sqlx.QueryerContext, p Page, what, query string, args ...any) (List[T], error) {
	items, err := database.Select[T](ctx, q, what, query, args...)
	if err != nil {
		return List[T]{}, err
	}
	return newList(items, p), nil
}
