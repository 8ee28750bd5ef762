package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PollLagBuckets are the histogram buckets, in seconds, of watch poll lag:
// from a prompt poll to one held back for minutes by the directory's shared
// rate limit.
var PollLagBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600}

// Label values of the watch metrics.
var (
	// WatchPollOutcomes: ok (the directory answered), unauthorized (it
	// refused the credentials), error (anything else; the attempt is
	// retried and the watch may turn degraded).
	WatchPollOutcomes = []string{"ok", "unauthorized", "error"}
	// WatchChangeKinds are the kinds of status_changes rows.
	WatchChangeKinds = []string{"first_sighting", "change", "robot_reset", "disappeared", "degraded", "source_recovered"}
	// WatchNotifyChannels and WatchNotifyOutcomes: sent, refused (a
	// permanent refusal - bad Slack channel, bad number - not retried) or
	// failed (retried).
	WatchNotifyChannels = []string{"slack", "sms"}
	WatchNotifyOutcomes = []string{"sent", "refused", "failed"}
)

// WatchMetrics are the capacity watches' metrics.
type WatchMetrics struct {
	// PollLag observes, per recorded poll, how long after its scheduled
	// time the directory was polled (vigil_watch_poll_lag_seconds), as
	// `vigil bench watches` measures it from watch_polls.
	PollLag prometheus.Histogram
	// Polls counts directory poll attempts by outcome
	// (vigil_watch_polls_total).
	Polls *prometheus.CounterVec
	// Changes counts capacity changes recorded, by kind
	// (vigil_watch_changes_total); a replayed poll counts once.
	Changes *prometheus.CounterVec
	// Notifications counts change notifications by channel and outcome
	// (vigil_watch_notifications_total).
	Notifications *prometheus.CounterVec
}

// NewWatchMetrics creates the watch metrics and registers them on r; like
// NewIncidentMetrics it is idempotent.
func NewWatchMetrics(r *Registry) (*WatchMetrics, error) {
	other := func(vs []string) []string { return append(append([]string{}, vs...), "other") }
	m := &WatchMetrics{
		PollLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_watch_poll_lag_seconds",
			Help:    "How long after its scheduled time a capacity watch polled the directory.",
			Buckets: PollLagBuckets,
		}),
		Polls: counterVec("vigil_watch_polls_total", "Directory poll attempts of capacity watches, by outcome.",
			[]string{"outcome"}, [][]string{WatchPollOutcomes}),
		Changes: counterVec("vigil_watch_changes_total", "Capacity changes recorded by watches, by kind.",
			[]string{"kind"}, [][]string{other(WatchChangeKinds)}),
		Notifications: counterVec("vigil_watch_notifications_total", "Capacity change notifications, by channel and outcome.",
			[]string{"channel", "outcome"}, [][]string{WatchNotifyChannels, WatchNotifyOutcomes}),
	}
	if err := registerFields(r, field(&m.PollLag), field(&m.Polls), field(&m.Changes), field(&m.Notifications)); err != nil {
		return nil, err
	}
	return m, nil
}

var watchesByRegistry sync.Map // *Registry -> *WatchMetrics

// Watches returns the registry's watch metrics, creating them on first use.
func (r *Registry) Watches() *WatchMetrics { return cached(&watchesByRegistry, r, NewWatchMetrics) }

// Polled counts one poll attempt; a nil WatchMetrics counts nothing.
func (m *WatchMetrics) Polled(outcome string) {
	if m != nil {
		m.Polls.WithLabelValues(bounded(outcome, WatchPollOutcomes)).Inc()
	}
}

// ObservePollLag observes one poll's lag; a negative lag (clock skew) counts
// as on time.
func (m *WatchMetrics) ObservePollLag(lag time.Duration) {
	if m != nil {
		m.PollLag.Observe(max(lag, 0).Seconds())
	}
}

// ChangeRecorded counts one recorded change of a kind.
func (m *WatchMetrics) ChangeRecorded(kind string) {
	if m != nil {
		m.Changes.WithLabelValues(bounded(kind, WatchChangeKinds)).Inc()
	}
}

// Notified counts one notification on a channel with its outcome.
func (m *WatchMetrics) Notified(channel, outcome string) {
	if m != nil {
		m.Notifications.WithLabelValues(bounded(channel, WatchNotifyChannels), bounded(outcome, WatchNotifyOutcomes)).Inc()
	}
}
