package metrics

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ResponseTimeBuckets are the histogram buckets, in seconds, of incident
// response times: from seconds (a nurse at the bedside) to hours (an
// incident left open overnight).
var ResponseTimeBuckets = []float64{5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600}

// knownSeverities bound the severity label: any other value is counted as
// "UNKNOWN", so a bad input can never create unbounded series.
var knownSeverities = map[string]bool{"CRITICAL": true, "HIGH": true, "MEDIUM": true, "LOW": true}

// IncidentMetrics are the clinical-incident metrics of a Registry: alert and
// incident counts, escalations, notifications, and the response-time
// histograms observed when an incident resolves. Severity labels take the
// values CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN.
type IncidentMetrics struct {
	// AlertsReceived counts raw alerts accepted, by severity
	// (vigil_alerts_received_total).
	AlertsReceived *prometheus.CounterVec
	// IncidentsOpened counts incidents opened, by severity
	// (vigil_incidents_total).
	IncidentsOpened *prometheus.CounterVec
	// Escalations counts escalation steps fired (vigil_escalations_total).
	Escalations prometheus.Counter
	// Notifications counts notification attempts by channel (inapp, slack,
	// sms) and outcome (sent, failed, skipped) (vigil_notifications_total).
	Notifications *prometheus.CounterVec
	// MTTA observes, per resolved incident, opened to first acknowledged, by
	// severity (vigil_incident_mtta_seconds); never-acknowledged incidents
	// are not observed.
	MTTA *prometheus.HistogramVec
	// MTTR observes opened to resolved, by severity
	// (vigil_incident_mttr_seconds).
	MTTR *prometheus.HistogramVec
	// TimeToAssign observes opened to first assigned, by severity
	// (vigil_incident_time_to_assign_seconds).
	TimeToAssign *prometheus.HistogramVec
	// EscalationLateness observes how late a timer-scheduled page
	// (escalation step or start reminder) went out after it was due
	// (vigil_escalation_lateness_seconds).
	EscalationLateness prometheus.Histogram
}

// NotificationOutcomes are the outcomes each notification channel reports
// (vigil_notifications_total): the in-app page is sent; Slack posts or
// updates the incident's message, or fails (error); an SMS is sent,
// skipped (no or bad number, SMS off), failed (refused by the provider) or
// errs (retried).
var NotificationOutcomes = map[string][]string{
	"inapp": {"sent"},
	"slack": {"posted", "updated", "error"},
	"sms":   {"sent", "skipped", "failed", "error"},
}

// LatenessBuckets are the histogram buckets, in seconds, of page lateness:
// from a busy but healthy worker (tens of milliseconds) to an outage.
var LatenessBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

// NewIncidentMetrics creates the incident metrics and registers them on r.
// It is idempotent: when r already has them, the returned IncidentMetrics
// uses the registered collectors. It fails only when another metric of the
// same name but a different shape is registered.
func NewIncidentMetrics(r *Registry) (*IncidentMetrics, error) {
	m := &IncidentMetrics{
		AlertsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_alerts_received_total",
			Help: "Raw alerts accepted, by severity.",
		}, []string{"severity"}),
		IncidentsOpened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_incidents_total",
			Help: "Incidents opened, by severity.",
		}, []string{"severity"}),
		Escalations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_escalations_total",
			Help: "Escalation steps fired for unacknowledged incidents.",
		}),
		Notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_notifications_total",
			Help: "Notification attempts, by channel and outcome.",
		}, []string{"channel", "outcome"}),
		MTTA: responseTimes("vigil_incident_mtta_seconds",
			"Time from an incident opening to its first acknowledgement, observed when it resolves; never-acknowledged incidents are not observed."),
		MTTR: responseTimes("vigil_incident_mttr_seconds", "Time from an incident opening to its resolution."),
		TimeToAssign: responseTimes("vigil_incident_time_to_assign_seconds",
			"Time from an incident opening to its first assignment, observed when it resolves."),
		EscalationLateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_escalation_lateness_seconds",
			Help:    "How late an escalation or reminder page went out after it was due (its in-app delivery).",
			Buckets: LatenessBuckets,
		}),
	}
	// The known series start at zero, so dashboards and alert rules see
	// them before the first incident.
	for sev := range knownSeverities {
		m.AlertsReceived.WithLabelValues(sev)
		m.IncidentsOpened.WithLabelValues(sev)
		m.MTTA.WithLabelValues(sev)
		m.MTTR.WithLabelValues(sev)
		m.TimeToAssign.WithLabelValues(sev)
	}
	for channel, outcomes := range NotificationOutcomes {
		for _, o := range outcomes {
			m.Notifications.WithLabelValues(channel, o)
		}
	}
	err := registerFields(r, field(&m.AlertsReceived), field(&m.IncidentsOpened), field(&m.Escalations),
		field(&m.Notifications), field(&m.MTTA), field(&m.MTTR), field(&m.TimeToAssign), field(&m.EscalationLateness))
	if err != nil {
		return nil, err
	}
	return m, nil
}

// responseTimes is a histogram of incident response times by severity.
func responseTimes(name, help string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: ResponseTimeBuckets}, []string{"severity"})
}

// register registers c on r, or returns the collector already registered
// in its place.
func register[C prometheus.Collector](r *Registry, c C) (C, error) {
	err := r.reg.Register(c)
	if err == nil {
		return c, nil
	}
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register metric: %w", err)
}

// fieldRegistration registers the collector of one metrics struct field.
type fieldRegistration func(*Registry) error

// field registers *c on r and, when r already has a collector of that name
// and shape, puts the registered one in *c (see register).
func field[C prometheus.Collector](c *C) fieldRegistration {
	return func(r *Registry) (err error) {
		*c, err = register(r, *c)
		return err
	}
}

// registerFields runs the field registrations in order and stops at the
// first that fails.
func registerFields(r *Registry, fields ...fieldRegistration) error {
	for _, register := range fields {
		if err := register(r); err != nil {
			return err
		}
	}
	return nil
}

// incidentsByRegistry caches each Registry's IncidentMetrics (a Registry
// lives as long as its process, so entries are never removed).
var incidentsByRegistry sync.Map // *Registry -> *IncidentMetrics

// Incidents returns the registry's incident metrics, creating and
// registering them on first use. It panics, like MustRegister, if a metric
// of the same name but a different shape is already registered.
func (r *Registry) Incidents() *IncidentMetrics {
	return cached(&incidentsByRegistry, r, NewIncidentMetrics)
}

// severityLabel bounds a severity to the known values.
func severityLabel(severity string) string {
	if knownSeverities[severity] {
		return severity
	}
	return "UNKNOWN"
}

// AlertReceived counts one raw alert of a severity.
func (m *IncidentMetrics) AlertReceived(severity string) { m.AlertsReceivedAdd(severity, 1) }

// AlertsReceivedAdd counts n raw alerts of a severity; n < 1 counts nothing.
func (m *IncidentMetrics) AlertsReceivedAdd(severity string, n int) {
	if n < 1 {
		return
	}
	m.AlertsReceived.WithLabelValues(severityLabel(severity)).Add(float64(n))
}

// IncidentOpened counts one incident opened with a severity.
func (m *IncidentMetrics) IncidentOpened(severity string) {
	m.IncidentsOpened.WithLabelValues(severityLabel(severity)).Inc()
}

// Escalated counts one escalation step fired.
func (m *IncidentMetrics) Escalated() { m.Escalations.Inc() }

// Notified counts one notification attempt on a channel with its outcome.
func (m *IncidentMetrics) Notified(channel, outcome string) {
	m.Notifications.WithLabelValues(channel, outcome).Inc()
}

// ObserveResolved observes a resolved incident's response times from its
// workflow timestamps: time to assign (openedAt to assignedAt), MTTA
// (openedAt to acknowledgedAt) and MTTR (openedAt to resolvedAt). A zero
// timestamp (the incident never reached that point, e.g. it auto-resolved
// unacknowledged) skips its histogram, as does a zero openedAt every one;
// a timestamp before openedAt is skipped as inconsistent.
func (m *IncidentMetrics) ObserveResolved(severity string, openedAt, assignedAt, acknowledgedAt, resolvedAt time.Time) {
	if openedAt.IsZero() {
		return
	}
	sev := severityLabel(severity)
	observe := func(h *prometheus.HistogramVec, at time.Time) {
		if at.IsZero() || at.Before(openedAt) {
			return
		}
		h.WithLabelValues(sev).Observe(at.Sub(openedAt).Seconds())
	}
	observe(m.TimeToAssign, assignedAt)
	observe(m.MTTA, acknowledgedAt)
	observe(m.MTTR, resolvedAt)
}

// ObserveLateness observes a timer-scheduled page delivered late seconds
// after it was due; a negative lateness (clock skew between the workflow's
// time and the database's) counts as on time.
func (m *IncidentMetrics) ObserveLateness(late time.Duration) {
	m.EscalationLateness.Observe(max(late, 0).Seconds())
}
