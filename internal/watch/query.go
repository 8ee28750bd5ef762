package watch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/keyset"
	"github.com/vigil-health/vigil/internal/watch/directory"
	"github.com/vigil-health/vigil/internal/watch/osgb"
)

// CapacityReset is the stored capacity of a service whose status was reset
// (the directory's 24-hour ROBOT reset) or never set.
const CapacityReset = ""

// Capacities are every stored capacity, most urgent first: the order
// Statuses lists them in.
var Capacities = []string{directory.CapacityNone, directory.CapacityLow, CapacityReset, directory.CapacityHigh}

// Page sizes of Changes.
const (
	// DefaultLimit is the page size when ChangeFilter.Limit is zero.
	DefaultLimit = 50
	// MaxLimit is the largest page size Changes accepts.
	MaxLimit = 200
)

// ErrInvalidCursor is returned by DecodeCursor for a cursor it did not
// make. It is keyset.ErrInvalid, which every list's cursors share.
var ErrInvalidCursor = keyset.ErrInvalid

// ErrInvalidFilter is returned by Changes for a filter it cannot run (a
// limit out of range, an inverted time window); the API validates its input
// first, so this is a programming error.
var ErrInvalidFilter = errors.New("invalid change filter")

// Service is a monitored service as service_statuses holds it: where it
// is, and its capacity when a poll last saw it. Status and CoverageService
// show it, each with what its view adds.
type Service struct {
	ServiceID string `json:"service_id" db:"service_id"`
	Name      string `json:"name" db:"name"`
	Type      string `json:"type" db:"type"`
	Postcode  string `json:"postcode" db:"postcode"`
	Region    string `json:"region" db:"region"`
	// Easting and Northing are National Grid coordinates in metres; nil
	// when the directory gave none.
	Easting  *int `json:"easting" db:"easting"`
	Northing *int `json:"northing" db:"northing"`
	// Capacity is HIGH, LOW, NONE or "" (reset or never set).
	Capacity string `json:"capacity" db:"capacity"`
	// RAG is the directory's colour for the capacity.
	RAG string `json:"rag" db:"rag"`
	// LastSeenAt is the last poll that saw the service.
	LastSeenAt time.Time `json:"last_seen_at" db:"last_seen_at"`
}

// serviceColumns are the columns of Service.
const serviceColumns = `service_id, name, type, postcode, region, easting, northing, capacity, rag, last_seen_at`

// Status is the current status of one monitored service.
type Status struct {
	Service
	// UpdatedBy and UpdatedAt say who last changed the capacity in the
	// directory, and when; UpdatedAt is nil when the directory gave none.
	UpdatedBy string     `json:"updated_by" db:"updated_by"`
	UpdatedAt *time.Time `json:"updated_at" db:"updated_at"`
	// WatchID is the watch that last saw the service.
	WatchID *string `json:"watch_id" db:"watch_id"`
}

// RecordedChange is one recorded status change.
type RecordedChange struct {
	ID               int64  `json:"id" db:"id"`
	WatchID          string `json:"watch_id" db:"watch_id"`
	ServiceID        string `json:"service_id" db:"service_id"`
	Name             string `json:"name" db:"name"`
	Type             string `json:"type" db:"type"`
	Region           string `json:"region" db:"region"`
	PreviousCapacity string `json:"previous_capacity" db:"previous_capacity"`
	PreviousRAG      string `json:"previous_rag" db:"previous_rag"`
	Capacity         string `json:"capacity" db:"capacity"`
	RAG              string `json:"rag" db:"rag"`
	// Kind is change, robot_reset, disappeared, first_sighting, degraded or
	// recovered_source.
	Kind string `json:"kind" db:"kind"`
	// ChangedBy and ChangedAt are the directory's "updated by" and "updated
	// at" of the new status; ChangedAt is nil when it gave none.
	ChangedBy string     `json:"changed_by" db:"changed_by"`
	ChangedAt *time.Time `json:"changed_at" db:"changed_at"`
	// DetectedAt is when the poll noticed the change.
	DetectedAt time.Time `json:"detected_at" db:"detected_at"`
	PollID     string    `json:"poll_id" db:"poll_id"`
	// Notified says whether the change was announced.
	Notified bool `json:"notified" db:"notified"`
}

// CoverageService is one monitored service placed on a map.
type CoverageService struct {
	Service
	// Lat and Lon are WGS84 decimal degrees (6 places, about 0.1 m),
	// converted from Easting and Northing; nil when those are missing or
	// outside the National Grid.
	Lat *float64 `json:"lat" db:"-"`
	Lon *float64 `json:"lon" db:"-"`
}

// Cursor is a position in the newest-first order of Changes: the last change
// of a page.
type Cursor struct {
	DetectedAt time.Time
	ID         int64
}

// cursorTag marks change-list cursors (see package keyset).
const cursorTag = "c1"

// Encode returns the cursor as an opaque, URL-safe string.
func (c Cursor) Encode() string {
	return keyset.Encode(cursorTag, c.DetectedAt, strconv.FormatInt(c.ID, 10))
}

// DecodeCursor parses a string made by Cursor.Encode; anything else is
// ErrInvalidCursor.
func DecodeCursor(s string) (Cursor, error) {
	at, raw, err := keyset.Decode(cursorTag, s)
	if err != nil {
		return Cursor{}, err
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: id: %w", ErrInvalidCursor, err)
	}
	if id < 1 {
		return Cursor{}, fmt.Errorf("%w: id %d", ErrInvalidCursor, id)
	}
	return Cursor{DetectedAt: at, ID: id}, nil
}

// ChangeFilter selects the changes Changes returns. Zero fields do not filter.
type ChangeFilter struct {
	// ServiceID keeps the changes of one service.
	ServiceID string
	// WatchID keeps the changes one watch recorded (a UUID).
	WatchID string
	// From (inclusive) and To (exclusive) bound detected_at.
	From, To time.Time
	// Limit is the page size: 1 to MaxLimit, zero meaning DefaultLimit.
	Limit int
	// Cursor continues after this position (the previous page's Next).
	Cursor *Cursor
}

// ChangePage is one page of Changes.
type ChangePage = keyset.Page[RecordedChange, Cursor]

// capacityOrder is a SQL expression ranking capacities as Capacities does;
// unknown values rank last.
const capacityOrder = `CASE capacity WHEN 'NONE' THEN 0 WHEN 'LOW' THEN 1 WHEN '' THEN 2 WHEN 'HIGH' THEN 3 ELSE 4 END`

// statusColumns are the columns of Status.
const statusColumns = serviceColumns + `, updated_by, updated_at, watch_id`

// Statuses returns the current status of the monitored services whose
// capacity is one of capacities ("" being CapacityReset), or of every
// service when capacities is empty; most urgent capacity first (NONE, LOW,
// reset, HIGH), then by name and service id.
func (s *Store) Statuses(ctx context.Context, capacities []string) ([]Status, error) {
	q := `SELECT ` + statusColumns + ` FROM service_statuses`
	var args []any
	if len(capacities) > 0 {
		q += ` WHERE capacity = ANY($1)`
		args = append(args, pq.StringArray(capacities))
	}
	q += ` ORDER BY ` + capacityOrder + `, name, service_id`
	return database.SelectEach(ctx, s.DB, (*Status).normalize, "list service statuses", q, args...)
}

// Changes returns the status changes matching f, newest first (by
// detected_at, then id), one page at a time. Pages neither repeat nor skip
// changes while new ones are recorded: those sort before the first page.
func (s *Store) Changes(ctx context.Context, f ChangeFilter) (*ChangePage, error) {
	limit, err := keyset.PageSize(f.Limit, DefaultLimit, MaxLimit, ErrInvalidFilter)
	if err != nil {
		return nil, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.From.After(f.To) {
		return nil, fmt.Errorf("%w: from %s is after to %s", ErrInvalidFilter, f.From, f.To)
	}
	var (
		where []string
		args  database.Args
	)
	if f.ServiceID != "" {
		where = append(where, "service_id = "+args.Add(f.ServiceID))
	}
	if f.WatchID != "" {
		where = append(where, "watch_id = "+args.Add(f.WatchID)+"::uuid")
	}
	if !f.From.IsZero() {
		where = append(where, "detected_at >= "+args.Add(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "detected_at < "+args.Add(f.To))
	}
	if f.Cursor != nil {
		where = append(where, "(detected_at, id) < ("+args.Add(f.Cursor.DetectedAt)+", "+args.Add(f.Cursor.ID)+")")
	}
	q := `SELECT id, watch_id, service_id, name, type, region, previous_capacity, previous_rag,
			capacity, rag, kind, changed_by, changed_at, detected_at, poll_id, notified
		FROM status_changes`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	// One row more than the page tells whether another page follows.
	q += ` ORDER BY detected_at DESC, id DESC LIMIT ` + args.Add(limit+1)

	items, err := database.Select[RecordedChange](ctx, s.DB, "list status changes", q, args...)
	if err != nil {
		return nil, err
	}
	page := keyset.NewPage(items, limit, func(last *RecordedChange) Cursor {
		return Cursor{DetectedAt: last.DetectedAt.UTC(), ID: last.ID}
	})
	for i := range page.Items {
		c := &page.Items[i]
		c.DetectedAt = c.DetectedAt.UTC()
		c.ChangedAt = utcPtr(c.ChangedAt)
	}
	return page, nil
}

// Coverage returns every monitored service with its position: WGS84
// latitude and longitude when it has an easting and northing inside the
// National Grid, nil otherwise. Services are ordered by region, name and
// service id.
func (s *Store) Coverage(ctx context.Context) ([]CoverageService, error) {
	out, err := database.Select[CoverageService](ctx, s.DB, "list service coverage", `
		SELECT `+serviceColumns+` FROM service_statuses ORDER BY region, name, service_id`)
	if err != nil {
		return nil, err
	}
	for i := range out {
		c := &out[i]
		c.LastSeenAt = c.LastSeenAt.UTC()
		c.Lat, c.Lon = Position(c.Easting, c.Northing)
	}
	return out, nil
}

// Position converts a service's National Grid easting and northing to WGS84
// latitude and longitude rounded to 6 decimal places; nil, nil when either
// is missing or the point is outside the grid. A service at 0, 0 (the
// grid's corner, in the sea off the Scilly Isles) is taken to have no
// position: directories use it for "unknown".
func Position(easting, northing *int) (lat, lon *float64) {
	if easting == nil || northing == nil || (*easting == 0 && *northing == 0) {
		return nil, nil
	}
	e, n := float64(*easting), float64(*northing)
	if !osgb.InGreatBritain(e, n) {
		return nil, nil
	}
	la, lo := osgb.ToWGS84(e, n)
	la, lo = round6(la), round6(lo)
	return &la, &lo
}

// round6 rounds to 6 decimal places.
func round6(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// normalize puts the status's timestamps in UTC.
func (st *Status) normalize() {
	st.LastSeenAt = st.LastSeenAt.UTC()
	st.UpdatedAt = utcPtr(st.UpdatedAt)
}

// utcPtr returns t in UTC, or nil.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
