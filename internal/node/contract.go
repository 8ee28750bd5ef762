package node

import (
	"strings"
	"time"

	"github.com/vigil-health/vigil/internal/node/broker"
)

// The contract between the fleet scan (an activity, which signals node
// workflows by name) and the node workflows: both use these names.
const (
	// MonitorWorkflow is the registered name of workflows.NodeMonitor.
	MonitorWorkflow = "NodeMonitor"
	// SignalObservation carries an ObservationRef to a node workflow.
	SignalObservation = "node-observation"
	// WorkflowKind is the VigilKind of node workflows.
	WorkflowKind = "node"
)

// WorkflowID is the business-keyed workflow id of a node's monitor,
// "node:<id>".
func WorkflowID(nodeID string) string { return "node:" + nodeID }

// RunSummary is the one-line summary of node id's workflow in the Web UI,
// e.g. "Node 5 · Evangelisches Krankenhaus Lindenau" ("Node 5" without a
// name).
func RunSummary(id, name string) string {
	if name == "" {
		return "Node " + id
	}
	return "Node " + id + " · " + name
}

// RunDetails are the fixed details of node id's workflow in the Web UI.
func RunDetails(id, name, clientDN string) string {
	var b strings.Builder
	b.WriteString("Broker node monitor: records every fleet scan's observation of node " + id +
		", evaluates its status and e-mails its contacts about OFFLINE, NO IMPORTS, DWH OUTDATED and EXTREME ERROR RATE.")
	if name != "" {
		b.WriteString("\nName: " + name)
	}
	if clientDN != "" {
		b.WriteString("\nClient DN: " + clientDN)
	}
	b.WriteString("\nSignals: rescan (poll the node now). Query: status.")
	return b.String()
}

// Name is a node's display name: its settings' common name, else the CN of
// its client DN, else "".
func Name(commonName, clientDN string) string {
	if n := strings.TrimSpace(commonName); n != "" {
		return n
	}
	return broker.CommonName(clientDN)
}

// MonitorStart is the input a scan starts a node workflow with
// (workflows.NodeMonitorInput has the same shape, plus the carried state).
type MonitorStart struct {
	NodeID string
}

// Resource is one properties resource of a node as a scan saw it.
type Resource struct {
	Name string
	// Entries are sorted by key.
	Entries []broker.Property
	// Missing is set when the node has not published the resource (404):
	// every key it had is logged as DELETED. A resource the scan could not
	// fetch for another reason is left out of the observation instead, so
	// nothing is recorded as changed.
	Missing bool
}

// Observation is what one fleet scan saw of one node. The scan stores it in
// node_observations (Store.SaveObservation) and signals the node's workflow
// only its ObservationRef: import error text may hold patient-related
// content, and the full observation would sit in workflow history twice
// (signal and activity input).
type Observation struct {
	// ScanID identifies the scan; a node workflow ignores a second
	// observation of the same scan (a retried scan).
	ScanID     string
	ObservedAt time.Time
	Node       broker.Node
	// Stats is nil when the node has published none, or when fetching them
	// failed (StatsUnknown is then set and the last known counters are
	// kept).
	Stats        *broker.ImportStats
	StatsUnknown bool
	Resources    []Resource
	// FetchError describes what could not be fetched ("" when all was);
	// the node is evaluated from what is known.
	FetchError string
}

// ObservationRef is what a fleet scan signals to a node's workflow: the key
// of the observation it stored in node_observations, and when it was made.
// Nothing the broker reported about imports is in it.
type ObservationRef struct {
	// ScanID identifies the scan; a node workflow ignores a second
	// reference to the same scan (a retried scan).
	ScanID string
	NodeID string
	// ObservedAt is when the scan fetched the node.
	ObservedAt time.Time
}

// ScanResult is what a fleet scan did.
type ScanResult struct {
	ScanID string
	// Nodes is how many nodes were signalled; Failed how many of them had
	// something that could not be fetched.
	Nodes  int
	Failed int
}

// Evaluation is a node's evaluated status after an observation, with what
// its e-mails need.
type Evaluation struct {
	// Headline is the first active condition in the seed's precedence;
	// Conditions are all active ones (nodehealth order).
	Headline   string
	Conditions []string
	// Changed is set when the headline or the conditions changed with this
	// observation (a status history row was written).
	Changed bool
	// IntervalWeeks is the node's notification interval.
	IntervalWeeks int
	Facts         MailFacts
	// Name is the node's display name (Name); "" when it has none.
	// Evaluations recorded before names were returned have none either.
	Name string `json:",omitempty"`
}

// Kinds of node e-mails (node_mail_log.kind).
const (
	MailAlert     = "alert"
	MailReminder  = "reminder"
	MailRecovered = "recovered"
)

// Outcomes of sending a node e-mail (node_mail_log.status, besides
// 'sending' and 'failed').
const (
	MailSent         = "sent"
	MailNoRecipients = "no_recipients"
)

// MailFacts are what a node e-mail tells, from the node's latest
// evaluation.
type MailFacts struct {
	LastContact       *time.Time
	LastWrite         *time.Time
	DWHVersion        string
	CurrentDWHVersion string
	// DailyErrorRate is today's error rate in percent (nil: nothing
	// processed today).
	DailyErrorRate *float64
	// ThresholdHours is the node's failure threshold.
	ThresholdHours int
}

// MailRequest is one node e-mail the workflow decided on.
type MailRequest struct {
	// Key is the idempotency key node:<id>:<condition>:<episode>:<seq>.
	Key       string
	NodeID    string
	Condition string
	// Kind is MailAlert, MailReminder or MailRecovered.
	Kind string
	// Since is when the condition's episode began.
	Since time.Time
	Facts MailFacts
}

// MailResult is the outcome of sending a node e-mail.
type MailResult struct {
	// Status is MailSent or MailNoRecipients.
	Status string
	// Recipients is how many To addresses the mail reached (the addresses
	// stay in node_mail_log and node_mail_recipients, out of workflow
	// history).
	Recipients int
	// Refused is how many addresses (To and Cc) were refused for good.
	Refused int
}
