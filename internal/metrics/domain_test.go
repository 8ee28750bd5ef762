package metrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/metrics"
)

// TestDomainMetricsStartAtZero checks every bounded series exists before the
// first event, so dashboards and alert rules see them at once.
func TestDomainMetricsStartAtZero(t *testing.T) {
	reg := metrics.New()
	reg.Watches()
	reg.Nodes()
	reg.Access()
	body := scrape(t, reg)
	for _, line := range []string{
		`vigil_watch_polls_total{outcome="ok"} 0`,
		`vigil_watch_polls_total{outcome="error"} 0`,
		`vigil_watch_changes_total{kind="change"} 0`,
		`vigil_watch_changes_total{kind="other"} 0`,
		`vigil_watch_notifications_total{channel="sms",outcome="refused"} 0`,
		`vigil_watch_poll_lag_seconds_count 0`,
		`vigil_node_mails_total{kind="reminder",outcome="failed"} 0`,
		`vigil_node_mail_refused_recipients_total 0`,
		`vigil_broker_scans_total{outcome="unauthorized"} 0`,
		`vigil_broker_node_polls_total{outcome="partial"} 0`,
		`vigil_messages_total{type="CALLBACK"} 0`,
		`vigil_activation_steps_total{kind="patient",outcome="locked",step="attempt"} 0`,
		`vigil_tokens_issued_total{subject_type="device"} 0`,
	} {
		require.Contains(t, body, line+"\n")
	}
}

func TestDomainMetricsCount(t *testing.T) {
	reg := metrics.New()
	w, n, a := reg.Watches(), reg.Nodes(), reg.Access()
	w.Polled("ok")
	w.Polled("ok")
	w.Polled("nonsense")
	w.ObservePollLag(1500 * time.Millisecond)
	w.ObservePollLag(-time.Second)
	w.ChangeRecorded("robot_reset")
	w.ChangeRecorded("something new")
	w.Notified("slack", "sent")
	n.Mailed("alert", "sent", 2)
	n.Mailed("reminder", "failed", 1)
	n.Mailed("bogus", "sent", 0)
	n.Scanned("ok")
	n.NodePolled("partial")
	a.MessageCreated("RED_ALERT")
	a.MessageCreated("")
	a.ActivationStep("patient", "attempt", "ok")
	a.ActivationStep("device", "exchange", "refused")
	a.TokenIssued("patient")
	a.TokenIssued("robot")

	tests := []struct {
		metric string
		labels map[string]string
		want   float64
	}{
		{"vigil_watch_polls_total", map[string]string{"outcome": "ok"}, 2},
		{"vigil_watch_polls_total", map[string]string{"outcome": "other"}, 1},
		{"vigil_watch_changes_total", map[string]string{"kind": "robot_reset"}, 1},
		{"vigil_watch_changes_total", map[string]string{"kind": "other"}, 1},
		{"vigil_watch_notifications_total", map[string]string{"channel": "slack", "outcome": "sent"}, 1},
		{"vigil_node_mails_total", map[string]string{"kind": "alert", "outcome": "sent"}, 1},
		{"vigil_node_mails_total", map[string]string{"kind": "reminder", "outcome": "failed"}, 1},
		{"vigil_node_mails_total", map[string]string{"kind": "other", "outcome": "sent"}, 1},
		{"vigil_node_mail_refused_recipients_total", nil, 3},
		{"vigil_broker_scans_total", map[string]string{"outcome": "ok"}, 1},
		{"vigil_broker_node_polls_total", map[string]string{"outcome": "partial"}, 1},
		{"vigil_messages_total", map[string]string{"type": "RED_ALERT"}, 1},
		{"vigil_messages_total", map[string]string{"type": "other"}, 1},
		{"vigil_activation_steps_total", map[string]string{"kind": "patient", "step": "attempt", "outcome": "ok"}, 1},
		{"vigil_activation_steps_total", map[string]string{"kind": "device", "step": "exchange", "outcome": "refused"}, 1},
		{"vigil_tokens_issued_total", map[string]string{"subject_type": "patient"}, 1},
		{"vigil_tokens_issued_total", map[string]string{"subject_type": "other"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.metric, func(t *testing.T) {
			require.InDelta(t, tt.want, counter(t, reg, tt.metric, tt.labels), 1e-9)
		})
	}
	count, sum := histogramAll(t, reg, "vigil_watch_poll_lag_seconds")
	require.Equal(t, 2, count)
	require.InDelta(t, 1.5, sum, 1e-9, "a negative lag counts as on time")

	// A nil set of metrics (activities without a registry) counts nothing.
	var none *metrics.WatchMetrics
	none.Polled("ok")
	none.ObservePollLag(time.Second)
	var noNodes *metrics.NodeMetrics
	noNodes.Mailed("alert", "sent", 1)
	var noAccess *metrics.AccessMetrics
	noAccess.TokenIssued("patient")
}

// histogramAll returns a label-less histogram's sample count and sum.
func histogramAll(t *testing.T, reg *metrics.Registry, name string) (int, float64) {
	t.Helper()
	families, err := reg.Gatherer().Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			h := f.GetMetric()[0].GetHistogram()
			return int(h.GetSampleCount()), h.GetSampleSum()
		}
	}
	return 0, 0
}

func TestDomainMetricsAreIdempotent(t *testing.T) {
	reg := metrics.New()
	require.Same(t, reg.Watches(), reg.Watches())
	require.Same(t, reg.Nodes(), reg.Nodes())
	require.Same(t, reg.Access(), reg.Access())
	w, err := metrics.NewWatchMetrics(reg)
	require.NoError(t, err)
	w.Polled("ok")
	require.InDelta(t, 1, counter(t, reg, "vigil_watch_polls_total", map[string]string{"outcome": "ok"}), 1e-9)
}

func TestStateCollector(t *testing.T) {
	tests := []struct {
		name   string
		src    metrics.StateSources
		want   []string
		absent []string
	}{
		{
			name: "both answer",
			src: metrics.StateSources{
				Outbox: func(context.Context) ([]metrics.OutboxBacklog, error) {
					return []metrics.OutboxBacklog{{Channel: "sms", Pending: 3, OldestAge: 90 * time.Second}}, nil
				},
				NodeStatuses: func(context.Context) (map[string]int, error) {
					return map[string]int{"ONLINE": 4, "OFFLINE": 1, "TESTING": 0}, nil
				},
			},
			want: []string{
				`vigil_outbox_pending{channel="sms"} 3`,
				`vigil_outbox_pending{channel="inapp"} 0`,
				`vigil_outbox_pending{channel="slack"} 0`,
				`vigil_outbox_oldest_pending_age_seconds{channel="sms"} 90`,
				`vigil_outbox_oldest_pending_age_seconds{channel="inapp"} 0`,
				`vigil_nodes{status="ONLINE"} 4`,
				`vigil_nodes{status="OFFLINE"} 1`,
				`vigil_nodes{status="TESTING"} 0`,
				`vigil_state_query_success{query="outbox"} 1`,
				`vigil_state_query_success{query="nodes"} 1`,
			},
		},
		{
			name: "a failing query leaves its metrics out, the scrape still answers",
			src: metrics.StateSources{
				Outbox: func(context.Context) ([]metrics.OutboxBacklog, error) { return nil, errors.New("database down") },
				NodeStatuses: func(context.Context) (map[string]int, error) {
					return map[string]int{"ONLINE": 1}, nil
				},
			},
			want:   []string{`vigil_state_query_success{query="outbox"} 0`, `vigil_nodes{status="ONLINE"} 1`},
			absent: []string{"vigil_outbox_pending{"},
		},
		{
			name: "a slow query is cut at the timeout",
			src: metrics.StateSources{
				Outbox: func(ctx context.Context) ([]metrics.OutboxBacklog, error) {
					<-ctx.Done()
					return nil, ctx.Err()
				},
				Timeout: 50 * time.Millisecond,
			},
			want:   []string{`vigil_state_query_success{query="outbox"} 0`},
			absent: []string{"vigil_outbox_pending{", `query="nodes"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := metrics.New()
			require.NoError(t, reg.RegisterState(tt.src))
			start := time.Now()
			body := scrape(t, reg)
			require.Less(t, time.Since(start), 2*time.Second)
			for _, line := range tt.want {
				require.Contains(t, body, line+"\n")
			}
			for _, s := range tt.absent {
				require.False(t, strings.Contains(body, s), "%s must not be exposed:\n%s", s, body)
			}
		})
	}
	t.Run("registered once per registry", func(t *testing.T) {
		reg := metrics.New()
		require.NoError(t, reg.RegisterState(metrics.StateSources{}))
		require.Error(t, reg.RegisterState(metrics.StateSources{}))
	})
}
