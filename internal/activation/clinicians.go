package activation

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/database"
)

// Clinician is an external clinician who logs in through ward devices.
type Clinician struct {
	ClinicianID string
	// SendEntryIdentifier is what a device's user logs in with; nil when
	// the clinician has none.
	SendEntryIdentifier *string
	LoginActive         bool
	// Groups are lower-case.
	Groups      []string
	LocationIDs []string
	// ContractExpiry is the calendar date (midnight UTC) at whose end, in
	// the hospital's zone, the contract ends; nil when it does not.
	ContractExpiry *time.Time
	CreatedBy      string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// clinicianRow is a clinicians row as scanned.
type clinicianRow struct {
	ClinicianID         string         `db:"clinician_id"`
	SendEntryIdentifier sql.NullString `db:"send_entry_identifier"`
	LoginActive         bool           `db:"login_active"`
	Groups              pq.StringArray `db:"groups"`
	LocationIDs         pq.StringArray `db:"location_ids"`
	ContractExpiry      sql.NullTime   `db:"contract_expiry_eod_date"`
	CreatedBy           string         `db:"created_by"`
	CreatedAt           time.Time      `db:"created_at"`
	UpdatedAt           time.Time      `db:"updated_at"`
}

const clinicianColumns = `clinician_id, send_entry_identifier, login_active, groups, location_ids, contract_expiry_eod_date,
	created_by, created_at, updated_at`

func (r clinicianRow) clinician() Clinician {
	c := Clinician{ClinicianID: r.ClinicianID, LoginActive: r.LoginActive, Groups: r.Groups, LocationIDs: r.LocationIDs,
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if r.SendEntryIdentifier.Valid {
		c.SendEntryIdentifier = &r.SendEntryIdentifier.String
	}
	if r.ContractExpiry.Valid {
		c.ContractExpiry = &r.ContractExpiry.Time
	}
	return c
}

// conflictOf turns a unique violation on clinicians into a *ConflictError
// naming the field.
func conflictOf(err error) error {
	pqErr, ok := isUniqueViolation(err)
	if !ok {
		return err
	}
	field := "clinician_id"
	if strings.Contains(pqErr.Constraint, "send_entry") {
		field = "send_entry_identifier"
	}
	return &ConflictError{Field: field, Err: err}
}

// NewClinician is a clinician to register. Empty SendEntryIdentifier and
// ContractExpiryEODDate (a date such as 2027-03-31) mean none.
type NewClinician struct {
	ClinicianID           string
	SendEntryIdentifier   string
	LoginActive           bool
	Groups                []string
	LocationIDs           []string
	ContractExpiryEODDate string
	CreatedBy             string
}

// CreateClinician registers a clinician; a clinician id or send entry
// identifier already in use is a *ConflictError.
func (st *Store) CreateClinician(ctx context.Context, in NewClinician) (Clinician, error) {
	var row clinicianRow
	err := st.DB.GetContext(ctx, &row, `
		INSERT INTO clinicians (clinician_id, send_entry_identifier, login_active, groups, location_ids, contract_expiry_eod_date, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+clinicianColumns,
		in.ClinicianID, emptyToNil(&in.SendEntryIdentifier), in.LoginActive, pq.Array(nonNil(in.Groups)), pq.Array(nonNil(in.LocationIDs)),
		emptyToNil(&in.ContractExpiryEODDate), in.CreatedBy)
	if err != nil {
		return Clinician{}, fmt.Errorf("store clinician: %w", conflictOf(err))
	}
	return row.clinician(), nil
}

// Clinician returns a clinician, or ErrNotFound.
func (st *Store) Clinician(ctx context.Context, id string) (Clinician, error) {
	return st.clinicianWhere(ctx, "clinician_id", id, notFound("clinician %s", id))
}

// ClinicianBySendEntryIdentifier returns the clinician with that send entry
// identifier, or ErrNotFound.
func (st *Store) ClinicianBySendEntryIdentifier(ctx context.Context, identifier string) (Clinician, error) {
	return st.clinicianWhere(ctx, "send_entry_identifier", identifier, notFound("clinician with send entry identifier %s", identifier))
}

// clinicianWhere returns the clinician whose column (a unique one) is value,
// or notFound.
func (st *Store) clinicianWhere(ctx context.Context, column, value string, notFound error) (Clinician, error) {
	row, err := database.Get[clinicianRow](ctx, st.DB, notFound, "load clinician",
		`SELECT `+clinicianColumns+` FROM clinicians WHERE `+column+` = $1`, value)
	if err != nil {
		return Clinician{}, err
	}
	return row.clinician(), nil
}

// ListClinicians lists clinicians by id.
func (st *Store) ListClinicians(ctx context.Context, limit, offset int) ([]Clinician, error) {
	var rows []clinicianRow
	if err := st.DB.SelectContext(ctx, &rows, `SELECT `+clinicianColumns+` FROM clinicians
		ORDER BY clinician_id LIMIT $1 OFFSET $2`, limit, offset); err != nil {
		return nil, fmt.Errorf("list clinicians: %w", err)
	}
	out := make([]Clinician, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.clinician())
	}
	return out, nil
}

// ClinicianPatch is a change of a clinician; nil fields stay as they are.
// An empty SendEntryIdentifier or ContractExpiryEODDate clears it.
type ClinicianPatch struct {
	SendEntryIdentifier   *string
	LoginActive           *bool
	Groups                []string
	LocationIDs           []string
	ContractExpiryEODDate *string
}

// PatchClinician applies p: ErrNotFound when there is no such clinician, a
// *ConflictError when the send entry identifier is in use.
func (st *Store) PatchClinician(ctx context.Context, id string, p ClinicianPatch) (Clinician, error) {
	var row clinicianRow
	err := st.DB.GetContext(ctx, &row, `
		UPDATE clinicians SET
			send_entry_identifier = CASE WHEN $2 THEN $3 ELSE send_entry_identifier END,
			login_active = COALESCE($4, login_active),
			groups = CASE WHEN $5 THEN $6::text[] ELSE groups END,
			location_ids = CASE WHEN $7 THEN $8::text[] ELSE location_ids END,
			contract_expiry_eod_date = CASE WHEN $9 THEN $10::date ELSE contract_expiry_eod_date END,
			updated_at = now()
		WHERE clinician_id = $1 RETURNING `+clinicianColumns,
		id, p.SendEntryIdentifier != nil, emptyToNil(p.SendEntryIdentifier), p.LoginActive,
		p.Groups != nil, pq.Array(nonNil(p.Groups)), p.LocationIDs != nil, pq.Array(nonNil(p.LocationIDs)),
		p.ContractExpiryEODDate != nil, emptyToNil(p.ContractExpiryEODDate))
	if errors.Is(err, sql.ErrNoRows) {
		return Clinician{}, notFound("clinician %s", id)
	}
	if err != nil {
		return Clinician{}, fmt.Errorf("store clinician: %w", conflictOf(err))
	}
	return row.clinician(), nil
}

// EndClinicianLogin turns a clinician's login off (their contract ended).
func (st *Store) EndClinicianLogin(ctx context.Context, id string) error {
	if _, err := st.DB.ExecContext(ctx, `UPDATE clinicians SET login_active = false, updated_at = now()
		WHERE clinician_id = $1`, id); err != nil {
		return fmt.Errorf("deactivate clinician: %w", err)
	}
	return nil
}
