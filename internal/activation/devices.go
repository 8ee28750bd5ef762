package activation

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/auth"
	"github.com/vigil-health/vigil/internal/database"
)

// Device is a ward device (a bedside tablet and the like) that clinicians
// log in through.
type Device struct {
	ID          string    `json:"id" db:"id"`
	LocationID  string    `json:"location_id" db:"location_id"`
	Description string    `json:"description" db:"description"`
	Active      bool      `json:"active" db:"active"`
	CreatedBy   string    `json:"created_by" db:"created_by"`
	CreatedAt   time.Time `json:"created_at" db:"created_at"`
	UpdatedAt   time.Time `json:"updated_at" db:"updated_at"`
}

const deviceColumns = `id, location_id, description, active, created_by, created_at, updated_at`

// AuditDeviceUpdated is the auth_audit event of a device change.
const AuditDeviceUpdated = "device_updated"

// CreateDevice registers a new, active device with a new id.
func (st *Store) CreateDevice(ctx context.Context, locationID, description, createdBy string) (Device, error) {
	var d Device
	if err := st.DB.GetContext(ctx, &d, `
		INSERT INTO devices (id, location_id, description, created_by) VALUES ($1, $2, $3, $4) RETURNING `+deviceColumns,
		uuid.NewString(), locationID, description, createdBy); err != nil {
		return d, fmt.Errorf("store device: %w", err)
	}
	return d, nil
}

// DeviceFilter selects a page of devices.
type DeviceFilter struct {
	// Active, when set, keeps only active (or inactive) devices.
	Active *bool
	// LocationIDs, when not empty, keeps only devices of these locations.
	LocationIDs []string
	Limit       int
	Offset      int
}

// ListDevices lists devices in creation order.
func (st *Store) ListDevices(ctx context.Context, f DeviceFilter) ([]Device, error) {
	return database.Select[Device](ctx, st.DB, "list devices", `SELECT `+deviceColumns+` FROM devices
		WHERE ($1::boolean IS NULL OR active = $1) AND (cardinality($2::text[]) = 0 OR location_id = ANY($2))
		ORDER BY created_at, id LIMIT $3 OFFSET $4`, f.Active, pq.Array(nonNil(f.LocationIDs)), f.Limit, f.Offset)
}

// Device returns a device, or ErrNotFound.
func (st *Store) Device(ctx context.Context, id string) (Device, error) {
	return getDevice(ctx, st.DB, id, false)
}

func getDevice(ctx context.Context, q sqlx.QueryerContext, id string, forUpdate bool) (Device, error) {
	query := `SELECT ` + deviceColumns + ` FROM devices WHERE id = $1`
	if forUpdate {
		query += ` FOR UPDATE`
	}
	return database.Get[Device](ctx, q, notFound("device %s", id), "load device", query, id)
}

// DevicePatch is a change of a device; nil fields stay as they are.
type DevicePatch struct {
	LocationID  *string
	Description *string
	Active      *bool
}

// Requester says who asked for a change, for its audit event.
type Requester struct {
	Actor     string
	RequestID string
	ClientIP  string
}

// PatchDevice applies p to the device in one transaction, with a
// device_updated audit event naming what changed. Deactivating a device or
// moving it to another location revokes every token it holds. It returns
// the device and whether anything changed (when nothing did, nothing is
// written); ErrNotFound when there is no such device.
func (st *Store) PatchDevice(ctx context.Context, id string, p DevicePatch, by Requester) (Device, bool, error) {
	tx, err := st.beginTx(ctx, "patch device")
	if err != nil {
		return Device{}, false, err
	}
	defer func() { _ = tx.Rollback() }()
	d, err := getDevice(ctx, tx, id, true)
	if err != nil {
		return d, false, err
	}
	next := d
	var changes []string
	revoke := false
	if p.LocationID != nil && *p.LocationID != d.LocationID {
		next.LocationID = *p.LocationID
		changes = append(changes, "location "+d.LocationID+" -> "+next.LocationID)
		revoke = true
	}
	if p.Description != nil && *p.Description != d.Description {
		next.Description = *p.Description
		changes = append(changes, "description")
	}
	if p.Active != nil && *p.Active != d.Active {
		next.Active = *p.Active
		if next.Active {
			changes = append(changes, "activated")
		} else {
			changes = append(changes, "deactivated")
			revoke = true
		}
	}
	if len(changes) == 0 {
		return d, false, nil
	}
	if err := tx.GetContext(ctx, &next, `
		UPDATE devices SET location_id = $2, description = $3, active = $4, updated_at = now(),
			tokens_revoked_at = CASE WHEN $5 THEN now() ELSE tokens_revoked_at END
		WHERE id = $1 RETURNING `+deviceColumns, d.ID, next.LocationID, next.Description, next.Active, revoke); err != nil {
		return d, false, fmt.Errorf("update device: %w", err)
	}
	reason := strings.Join(changes, "; ")
	if revoke {
		reason += "; tokens revoked"
	}
	if err := insertAuthAudit(ctx, tx, "", &AuthAuditEvent{Event: AuditDeviceUpdated, SubjectType: auth.SubjectDevice, SubjectID: d.ID,
		Actor: by.Actor, Reason: reason, RequestID: by.RequestID, ClientIP: by.ClientIP}); err != nil {
		return d, false, err
	}
	if err := tx.Commit(); err != nil {
		return d, false, fmt.Errorf("patch device: commit: %w", err)
	}
	return next, true, nil
}

// DeviceState is what the per-request token checks need of a device row.
type DeviceState struct {
	// Found is false when there is no such device.
	Found      bool
	Active     bool       `db:"active"`
	RevokedAt  *time.Time `db:"tokens_revoked_at"`
	LocationID string     `db:"location_id"`
}

// DeviceState reads a device's state for token checks; a missing device is
// a DeviceState with Found false, not an error.
func (st *Store) DeviceState(ctx context.Context, id string) (DeviceState, error) {
	row, found, err := database.Find[DeviceState](ctx, st.DB, "device state",
		`SELECT active, tokens_revoked_at, location_id FROM devices WHERE id = $1`, id)
	row.Found = found
	return row, err
}
