package watch

import "time"

// Observation is one service's status as a poll saw it: the compact view
// the watch workflow decides on (the full snapshot row stays in Postgres).
// It travels in workflow and activity payloads: its JSON (Go field names)
// is recorded in workflow histories and must not change.
type Observation struct {
	ServiceStatus
	UpdatedBy string
	UpdatedAt time.Time
}

// ServiceStatus is a service and its status: what a poll saw (in an
// Observation), or what a watch last accepted (in its workflow state). It
// is embedded in payload types, whose JSON flattens its fields.
type ServiceStatus struct {
	ServiceID string
	Name      string
	Region    string
	Type      string
	Capacity  string
	RAG       string
}

// Kinds of status changes (status_changes.kind).
const (
	ChangeFirstSighting = "first_sighting"
	ChangeStatus        = "change"
	ChangeRobotReset    = "robot_reset"
	ChangeDisappeared   = "disappeared"
	ChangeDegraded      = "degraded"
	ChangeSourceBack    = "source_recovered"
)

// Change is one status change a watch decided on: recorded in the history
// and, when Announce is set, told to the watch's Slack channel and SMS
// numbers. It travels in workflow and activity payloads: its JSON (Go field
// names) is recorded in workflow histories and must not change.
type Change struct {
	Kind      string
	ServiceID string
	Name      string
	Type      string
	Region    string
	// Previous and PrevRAG are the status before the change; Capacity and
	// RAG the status after it.
	Previous string
	PrevRAG  string
	Capacity string
	RAG      string
	// ChangedBy and ChangedAt are the directory's "updated by" and "updated
	// at" of the new status.
	ChangedBy string
	ChangedAt time.Time
	// Announce is the workflow's decision to tell people. It stays in the
	// workflow: it is neither stored nor part of activity payloads.
	Announce bool `json:"-"`
}
