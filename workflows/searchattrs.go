package workflows

import "go.temporal.io/sdk/temporal"

// Search attributes let operators filter runs in the Temporal Web UI. They are
// typed, registered at worker start (or by the compose setup job) and never
// carry personal data: kinds, states, severities and opaque ids only.
var (
	// VigilKindKey names what a workflow is: system-check, incident, watch,
	// node or activation.
	VigilKindKey = temporal.NewSearchAttributeKeyKeyword("VigilKind")
	// IncidentStatusKey is an incident's lifecycle state.
	IncidentStatusKey = temporal.NewSearchAttributeKeyKeyword("IncidentStatus")
	// SeverityKey is an incident's severity.
	SeverityKey = temporal.NewSearchAttributeKeyKeyword("Severity")
	// AlertTypeKey is the catalogue type of the alert that opened an incident.
	AlertTypeKey = temporal.NewSearchAttributeKeyKeyword("AlertType")
	// AssignedRoleKey is the staff role an incident is assigned to.
	AssignedRoleKey = temporal.NewSearchAttributeKeyKeyword("AssignedRole")
	// WatchIDKey is a capacity watch's id.
	WatchIDKey = temporal.NewSearchAttributeKeyKeyword("WatchID")
	// WatchStateKey is a capacity watch's state (active, paused, degraded,
	// and deleted once its watch was deleted).
	WatchStateKey = temporal.NewSearchAttributeKeyKeyword("WatchState")
	// NodeIDKey is a broker node's id.
	NodeIDKey = temporal.NewSearchAttributeKeyKeyword("NodeID")
	// NodeStatusKey is a broker node's headline status.
	NodeStatusKey = temporal.NewSearchAttributeKeyKeyword("NodeStatus")
	// IncidentIDKey is an incident's REST id (the one the API, Slack and SMS
	// show), so an operator can paste it into the Web UI's search.
	IncidentIDKey = temporal.NewSearchAttributeKeyKeyword("IncidentID")
	// NodeNameKey is a broker node's name (its settings' common name, else
	// the CN of its client DN): a hospital, never a person. It is Text, so
	// `NodeName = "Lindenau"` matches by word (and it takes none of the ten
	// Keyword slots of SQL visibility).
	NodeNameKey = temporal.NewSearchAttributeKeyString("NodeName")
)

// SearchAttributes lists every custom search attribute Vigil uses, for
// registration on a namespace.
var SearchAttributes = []temporal.SearchAttributeKey{
	VigilKindKey,
	IncidentStatusKey,
	SeverityKey,
	AlertTypeKey,
	AssignedRoleKey,
	WatchIDKey,
	WatchStateKey,
	NodeIDKey,
	NodeStatusKey,
	IncidentIDKey,
	NodeNameKey,
}

// Values of VigilKindKey.
const (
	KindSystemCheck = "system-check"
	KindIncident    = "incident"
	KindWatch       = "watch"
	KindActivation  = "activation"
	// KindNode is a broker node's monitor (NodeMonitor).
	KindNode = "node"
)
