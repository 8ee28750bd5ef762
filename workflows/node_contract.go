package workflows

import (
	"time"

	"github.com/vigil-health/vigil/internal/node"
)

// NodeWorkflowID returns the workflow ID of a broker node's monitor,
// "node:<id>".
func NodeWorkflowID(nodeID string) string { return node.WorkflowID(nodeID) }

// Names of the node workflow's signal and query, and of the fleet scan's
// schedule.
const (
	// SignalNodeObservation carries one NodeObservationRef from a fleet
	// scan.
	SignalNodeObservation = node.SignalObservation
	// NodeQueryStatus returns the NodeMonitorState.
	NodeQueryStatus = "status"
	// NodeSignalRescan is the operator signal (payload OperatorSignal) that
	// has the node fetched from the broker now, as a fleet scan would, and
	// the observation recorded and evaluated at once.
	NodeSignalRescan = "rescan"
	// FleetScanScheduleID is the Temporal Schedule that runs FleetScan;
	// Temporal appends the scheduled time to the workflow ids it starts.
	FleetScanScheduleID = "broker-fleet-scan"
	// DefaultFleetScanEvery is the fleet scan's default period.
	DefaultFleetScanEvery = 15 * time.Minute
)

// NodeObservationRef is the reference to what one fleet scan saw of one
// node, which is stored in Postgres (node_observations): the scan id, the
// node id and the time. The observation itself (import errors included)
// never enters workflow history.
type NodeObservationRef = node.ObservationRef

// NodeEvaluation is a node's evaluated status after an observation.
type NodeEvaluation = node.Evaluation

// NodeMonitorInput starts (or continues) a node's monitor. A fleet scan
// starts it with the node id only.
type NodeMonitorInput struct {
	NodeID string
	// Carry is the state continued from the previous run.
	Carry *NodeMonitorState
	// ContinueAsNewAfter is a test hook; zero continues as new at the
	// server's suggestion or every 500 observations.
	ContinueAsNewAfter int
}

// NodeMailState is the e-mail state of one mailed condition (OFFLINE, NO
// IMPORTS, DWH OUTDATED, EXTREME ERROR RATE).
type NodeMailState struct {
	Condition string
	// Active is whether the latest evaluation had the condition.
	Active bool
	// Episodes counts the times the condition became active; Seq the mails
	// of the current episode sent (or given up). Together they make each
	// mail's idempotency key.
	Episodes int
	Seq      int
	// Since is when the current (or last) episode began.
	Since time.Time
	// LastSent is the last alert or reminder of the episode; the next
	// reminder is due an interval after it. Zero until the alert went out.
	LastSent time.Time
	// Told is set once a mail of the episode reached somebody, so its end
	// is announced with a "recovered" mail.
	Told bool
	// Pending is the mail kind waiting to be sent ("" for none): a mail
	// that found no recipients (or could not be sent) is retried, under
	// the same key, on the next observation.
	Pending string
	// LastResult is the outcome of the last send attempt.
	LastResult string
}

// NodeMonitorState is what a node's monitor knows; the status query
// returns it and continue-as-new carries it.
type NodeMonitorState struct {
	NodeID string
	// Mails has one entry per mailed condition, in nodehealth.MailConditions
	// order.
	Mails []NodeMailState
	// Last is the latest evaluation (nil before the first observation).
	Last *NodeEvaluation
	// Headline is the headline status last written to the NodeStatus
	// search attribute.
	Headline string
	// RecentScans are the last scans observed (newest last); a repeated
	// observation of one of them is ignored.
	RecentScans    []string
	LastObservedAt time.Time
	// Observations counts every observation processed, over all runs.
	Observations int
	// Name is the node's name (the NodeName search attribute), "" while
	// unknown.
	Name string `json:",omitempty"`
	// LastMail describes the last e-mail sent (or tried), for the run's
	// current details.
	LastMail string `json:",omitempty"`
}

// NodeSummary is a node run's one-line summary in the Web UI, e.g.
// "Node 5 · Evangelisches Krankenhaus Lindenau".
func NodeSummary(nodeID, name string) string { return node.RunSummary(nodeID, name) }

// FleetScanInput starts a fleet scan (nothing to configure yet: the broker
// and the concurrency are the worker's).
type FleetScanInput struct{}

// FleetScanResult is what a fleet scan did.
type FleetScanResult = node.ScanResult
