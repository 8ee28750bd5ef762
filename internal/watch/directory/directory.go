// Package directory is Vigil's view of a service directory (NHS "Directory
// of Services" style): services with a capacity status, found by id or by a
// search of service types near a postcode. The Directory interface keeps the
// upstream contract out of workflows, so a FHIR-based adapter can be added
// beside the DoS REST client without touching them.
package directory

import (
	"context"
	"errors"
	"time"
)

// Capacity statuses as the directory reports them ("human" form). Empty
// means the status was reset (the 24-hour ROBOT reset) or never set.
const (
	CapacityHigh = "HIGH"
	CapacityLow  = "LOW"
	CapacityNone = "NONE"
)

// RobotUser is the "updated by" of the directory's automatic 24-hour reset.
const RobotUser = "ROBOT"

// ServiceTypes are the directory service types Vigil accepts in searches, by
// id (the directory's numeric type ids), with their names. The simulator
// serves these; a watch naming another type is refused.
var ServiceTypes = map[string]string{
	"40":  "Emergency Department",
	"100": "Urgent Treatment Centre",
	"28":  "GP Access Hub",
	"20":  "Minor Injuries Unit",
	"13":  "Walk-in Centre",
	"130": "Same Day Emergency Care",
}

// Service is one service as the directory describes it.
type Service struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Postcode string `json:"postcode"`
	Region   string `json:"region"`
	Easting  int    `json:"easting"`
	Northing int    `json:"northing"`
	// Capacity is HIGH, LOW, NONE or "".
	Capacity string `json:"capacity"`
	// RAG is the directory's colour for the capacity (opaque text).
	RAG string `json:"rag"`
	// UpdatedBy is who last changed the capacity ("ROBOT" for resets).
	UpdatedBy string `json:"updated_by"`
	// UpdatedAt is when, read in the directory's own zone (Europe/London);
	// zero when the directory gave none.
	UpdatedAt time.Time `json:"updated_at"`
}

// SearchQuery finds services of some types within a distance of a postcode.
type SearchQuery struct {
	Postcode      string   `json:"postcode"`
	DistanceMiles int      `json:"distance_miles"`
	GP            string   `json:"gp"`
	ServiceTypes  []string `json:"service_types"`
	ResultsLimit  int      `json:"results_limit"`
	// Role selects the account (and its permissions) the search runs as.
	Role string `json:"role"`
}

// Directory is a service directory.
type Directory interface {
	// Search returns the services matching q.
	Search(ctx context.Context, q SearchQuery) ([]Service, error)
	// Service returns one service, or ErrNotFound.
	Service(ctx context.Context, id string) (*Service, error)
}

// Errors a Directory returns. Callers classify retries with errors.Is:
// ErrUnauthorized is permanent until the credentials change; ErrUnavailable
// (timeouts, 5xx, 429) is worth retrying.
var (
	ErrNotFound     = errors.New("service not found in the directory")
	ErrUnauthorized = errors.New("the directory refused the credentials (401)")
	ErrUnavailable  = errors.New("the directory is unavailable")
)
