package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values of the broker node metrics.
var (
	// NodeMailKinds are the kinds of node e-mails.
	NodeMailKinds = []string{"alert", "reminder", "recovered"}
	// NodeMailOutcomes: sent (reached at least one recipient), no_recipients
	// (the node has no one to mail), retried (deferred by the SMTP server
	// or a transient failure; the activity is retried) and failed (given
	// up: every recipient refused, no SMTP, a permanent SMTP failure).
	NodeMailOutcomes = []string{"sent", "no_recipients", "retried", "failed"}
	// BrokerScanOutcomes: ok, unauthorized (the broker refused the admin
	// key), error (retried).
	BrokerScanOutcomes = []string{"ok", "unauthorized", "error"}
	// BrokerNodePollOutcomes: ok, partial (some of the node's resources
	// could not be fetched; the node is still evaluated), error (the node
	// could not be stored or signalled; the scan is retried).
	BrokerNodePollOutcomes = []string{"ok", "partial", "error"}
)

// NodeMetrics are the broker node monitoring's metrics (the node count by
// status is read at scrape time, see StateSources).
type NodeMetrics struct {
	// Mails counts node e-mail outcomes by kind (vigil_node_mails_total).
	Mails *prometheus.CounterVec
	// RefusedRecipients counts addresses the SMTP server refused for good
	// (vigil_node_mail_refused_recipients_total).
	RefusedRecipients prometheus.Counter
	// Scans counts fleet scans by outcome (vigil_broker_scans_total).
	Scans *prometheus.CounterVec
	// NodePolls counts per-node fetches of fleet scans by outcome
	// (vigil_broker_node_polls_total).
	NodePolls *prometheus.CounterVec
}

// NewNodeMetrics creates the node metrics and registers them on r; like
// NewIncidentMetrics it is idempotent.
func NewNodeMetrics(r *Registry) (*NodeMetrics, error) {
	m := &NodeMetrics{
		Mails: counterVec("vigil_node_mails_total", "Node e-mail attempts, by kind and outcome.",
			[]string{"kind", "outcome"}, [][]string{NodeMailKinds, NodeMailOutcomes}),
		RefusedRecipients: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_node_mail_refused_recipients_total",
			Help: "Node e-mail recipients the SMTP server refused for good.",
		}),
		Scans: counterVec("vigil_broker_scans_total", "Broker fleet scans, by outcome.",
			[]string{"outcome"}, [][]string{BrokerScanOutcomes}),
		NodePolls: counterVec("vigil_broker_node_polls_total", "Per-node broker fetches of fleet scans, by outcome.",
			[]string{"outcome"}, [][]string{BrokerNodePollOutcomes}),
	}
	if err := registerFields(r, field(&m.Mails), field(&m.RefusedRecipients), field(&m.Scans), field(&m.NodePolls)); err != nil {
		return nil, err
	}
	return m, nil
}

var nodesByRegistry sync.Map // *Registry -> *NodeMetrics

// Nodes returns the registry's node metrics, creating them on first use.
func (r *Registry) Nodes() *NodeMetrics { return cached(&nodesByRegistry, r, NewNodeMetrics) }

// Mailed counts one node e-mail attempt of a kind with its outcome and the
// recipients it saw refused for good; a nil NodeMetrics counts nothing.
func (m *NodeMetrics) Mailed(kind, outcome string, refused int) {
	if m == nil {
		return
	}
	m.Mails.WithLabelValues(bounded(kind, NodeMailKinds), bounded(outcome, NodeMailOutcomes)).Inc()
	if refused > 0 {
		m.RefusedRecipients.Add(float64(refused))
	}
}

// Scanned counts one fleet scan attempt.
func (m *NodeMetrics) Scanned(outcome string) {
	if m != nil {
		m.Scans.WithLabelValues(bounded(outcome, BrokerScanOutcomes)).Inc()
	}
}

// NodePolled counts one node fetched by a scan.
func (m *NodeMetrics) NodePolled(outcome string) {
	if m != nil {
		m.NodePolls.WithLabelValues(bounded(outcome, BrokerNodePollOutcomes)).Inc()
	}
}
