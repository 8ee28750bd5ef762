package metrics_test

import (
	"context"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/metrics"
)

func TestIncidentMetricsObserveResolved(t *testing.T) {
	opened := time.Date(2026, 7, 15, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return opened.Add(d) }
	tests := []struct {
		name                                   string
		severity                               string
		opened, assigned, acknowledged, solved time.Time
		// wantSeverity is the label the observations land under.
		wantSeverity                   string
		wantAssign, wantMTTA, wantMTTR int
		assignSum, mttaSum, mttrSum    float64
	}{
		{"all points reached", "CRITICAL", opened, at(4 * time.Second), at(90 * time.Second), at(20 * time.Minute),
			"CRITICAL", 1, 1, 1, 4, 90, 1200},
		{"never acknowledged skips MTTA", "HIGH", opened, at(3 * time.Second), time.Time{}, at(time.Hour),
			"HIGH", 1, 0, 1, 3, 0, 3600},
		{"never assigned skips time to assign", "MEDIUM", opened, time.Time{}, at(time.Minute), at(2 * time.Minute),
			"MEDIUM", 0, 1, 1, 0, 60, 120},
		{"zero opened observes nothing", "LOW", time.Time{}, at(time.Second), at(time.Minute), at(time.Hour),
			"LOW", 0, 0, 0, 0, 0, 0},
		{"timestamp before opened is skipped", "LOW", opened, at(-time.Second), at(time.Minute), at(time.Hour),
			"LOW", 0, 1, 1, 0, 60, 3600},
		{"unknown severity is bounded", "catastrophic", opened, at(time.Second), at(time.Second), at(time.Second),
			"UNKNOWN", 1, 1, 1, 1, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := metrics.New()
			m := reg.Incidents()
			m.ObserveResolved(tt.severity, tt.opened, tt.assigned, tt.acknowledged, tt.solved)

			for _, h := range []struct {
				metric string
				count  int
				sum    float64
			}{
				{"vigil_incident_time_to_assign_seconds", tt.wantAssign, tt.assignSum},
				{"vigil_incident_mtta_seconds", tt.wantMTTA, tt.mttaSum},
				{"vigil_incident_mttr_seconds", tt.wantMTTR, tt.mttrSum},
			} {
				count, sum := histogram(t, reg, h.metric, tt.wantSeverity)
				require.Equal(t, h.count, count, h.metric)
				require.InDelta(t, h.sum, sum, 1e-9, h.metric)
			}
		})
	}
}

// histogram returns the sample count and sum of a histogram's series for a
// severity (zero when the series does not exist).
func histogram(t *testing.T, reg *metrics.Registry, name, severity string) (int, float64) {
	t.Helper()
	families, err := reg.Gatherer().Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "severity" && l.GetValue() == severity {
					return int(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	return 0, 0
}

func TestIncidentMetricsCounters(t *testing.T) {
	reg := metrics.New()
	m := reg.Incidents()
	m.AlertsReceivedAdd("CRITICAL", 3)
	m.AlertsReceivedAdd("CRITICAL", 0)
	m.AlertReceived("HIGH")
	m.IncidentOpened("CRITICAL")
	m.IncidentOpened("bogus")
	m.Escalated()
	m.Escalated()
	m.Notified("inapp", "sent")
	m.Notified("sms", "failed")
	m.Notified("inapp", "sent")

	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"alerts critical", "vigil_alerts_received_total", map[string]string{"severity": "CRITICAL"}, 3},
		{"alerts high", "vigil_alerts_received_total", map[string]string{"severity": "HIGH"}, 1},
		{"alerts low never seen", "vigil_alerts_received_total", map[string]string{"severity": "LOW"}, 0},
		{"incidents critical", "vigil_incidents_total", map[string]string{"severity": "CRITICAL"}, 1},
		{"incidents unknown severity", "vigil_incidents_total", map[string]string{"severity": "UNKNOWN"}, 1},
		{"escalations", "vigil_escalations_total", nil, 2},
		{"inapp sent", "vigil_notifications_total", map[string]string{"channel": "inapp", "outcome": "sent"}, 2},
		{"sms failed", "vigil_notifications_total", map[string]string{"channel": "sms", "outcome": "failed"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.InDelta(t, tt.want, counter(t, reg, tt.metric, tt.labels), 1e-9)
		})
	}
}

// counter returns the value of a counter's series with exactly these labels
// (zero when the series does not exist).
func counter(t *testing.T, reg *metrics.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gatherer().Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if len(got) == len(labels) && (len(labels) == 0 || reflect.DeepEqual(got, labels)) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestIncidentMetricsExposition(t *testing.T) {
	reg := metrics.New()
	m := reg.Incidents()
	m.AlertsReceivedAdd("LOW", 1)
	m.AlertReceived("LOW")
	m.IncidentOpened("LOW")
	m.Escalated()
	m.Notified("slack", "skipped")
	opened := time.Date(2026, 7, 15, 10, 0, 0, 0, time.UTC)
	m.ObserveResolved("LOW", opened, opened.Add(7*time.Second), opened.Add(45*time.Second), opened.Add(2*time.Hour))

	w := httptest.NewRecorder()
	reg.Handler().ServeHTTP(w, httptest.NewRequestWithContext(context.Background(), "GET", "/metrics", nil))
	require.Equal(t, 200, w.Code)
	body := w.Body.String()
	for _, line := range []string{
		"# TYPE vigil_alerts_received_total counter",
		`vigil_alerts_received_total{severity="LOW"} 2`,
		`vigil_incidents_total{severity="LOW"} 1`,
		"vigil_escalations_total 1",
		`vigil_notifications_total{channel="slack",outcome="skipped"} 1`,
		"# TYPE vigil_incident_mtta_seconds histogram",
		`vigil_incident_mtta_seconds_bucket{severity="LOW",le="30"} 0`,
		`vigil_incident_mtta_seconds_bucket{severity="LOW",le="60"} 1`,
		`vigil_incident_mtta_seconds_sum{severity="LOW"} 45`,
		`vigil_incident_time_to_assign_seconds_bucket{severity="LOW",le="5"} 0`,
		`vigil_incident_time_to_assign_seconds_bucket{severity="LOW",le="10"} 1`,
		`vigil_incident_mttr_seconds_bucket{severity="LOW",le="3600"} 0`,
		`vigil_incident_mttr_seconds_bucket{severity="LOW",le="7200"} 1`,
		`vigil_incident_mttr_seconds_bucket{severity="LOW",le="21600"} 1`,
		`vigil_incident_mttr_seconds_count{severity="LOW"} 1`,
	} {
		require.Contains(t, body, line+"\n")
	}
}

func TestIncidentsIsIdempotent(t *testing.T) {
	tests := []struct {
		name string
		get  func(*metrics.Registry) (*metrics.IncidentMetrics, error)
	}{
		{"Incidents", func(r *metrics.Registry) (*metrics.IncidentMetrics, error) { return r.Incidents(), nil }},
		{"NewIncidentMetrics", metrics.NewIncidentMetrics},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := metrics.New()
			a, err := tt.get(reg)
			require.NoError(t, err)
			b, err := tt.get(reg)
			require.NoError(t, err)
			a.Escalated()
			b.Escalated()
			require.InDelta(t, 2, counter(t, reg, "vigil_escalations_total", nil), 1e-9, "both share one registered counter")
			require.Same(t, reg.Incidents(), reg.Incidents())

			other := metrics.New()
			other.Incidents()
			require.InDelta(t, 0, counter(t, other, "vigil_escalations_total", nil), 1e-9, "registries do not share metrics")
		})
	}
}
