package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// OutboxChannels are the notification outbox's channels.
var OutboxChannels = []string{"inapp", "slack", "sms"}

// OutboxBacklog is the notification outbox's unsent (pending) rows of one
// channel.
type OutboxBacklog struct {
	Channel string
	Pending int
	// OldestAge is how long the oldest pending row has waited; zero when
	// none is pending.
	OldestAge time.Duration
}

// DefaultStateTimeout bounds each scrape-time query.
const DefaultStateTimeout = 2 * time.Second

// StateSources are the queries a worker's /metrics runs at scrape time, for
// state that lives in Postgres rather than in one process's counters.
type StateSources struct {
	// Outbox returns the notification outbox's backlog by channel.
	Outbox func(context.Context) ([]OutboxBacklog, error)
	// NodeStatuses returns the broker node count by status (the headline
	// as the node pages show it); every status should be present, zero
	// or not, and the set bounded.
	NodeStatuses func(context.Context) (map[string]int, error)
	// Timeout bounds each query; zero means DefaultStateTimeout.
	Timeout time.Duration
	// Logger gets a warning when a query fails; nil means slog.Default.
	Logger *slog.Logger
}

// stateCollector runs the StateSources at scrape time. A failing or slow
// query never fails the scrape: its metrics are left out and
// vigil_state_query_success{query} is 0.
type stateCollector struct {
	src         StateSources
	pending     *prometheus.Desc
	oldest      *prometheus.Desc
	nodes       *prometheus.Desc
	success     *prometheus.Desc
	durationSec *prometheus.Desc
}

// RegisterState registers the scrape-time collector of src on r; a nil
// source is skipped. It fails when r already has one.
func (r *Registry) RegisterState(src StateSources) error {
	if src.Timeout <= 0 {
		src.Timeout = DefaultStateTimeout
	}
	if src.Logger == nil {
		src.Logger = slog.Default()
	}
	c := &stateCollector{
		src: src,
		pending: prometheus.NewDesc("vigil_outbox_pending",
			"Notification outbox rows not sent yet (status pending), by channel.", []string{"channel"}, nil),
		oldest: prometheus.NewDesc("vigil_outbox_oldest_pending_age_seconds",
			"Age of the oldest notification outbox row not sent yet, by channel; 0 when none is pending.", []string{"channel"}, nil),
		nodes: prometheus.NewDesc("vigil_nodes",
			"Broker nodes by status (the headline the node pages show).", []string{"status"}, nil),
		success: prometheus.NewDesc("vigil_state_query_success",
			"1 when the scrape-time query answered within its timeout, else 0.", []string{"query"}, nil),
		durationSec: prometheus.NewDesc("vigil_state_query_duration_seconds",
			"How long the scrape-time query took.", []string{"query"}, nil),
	}
	if err := r.reg.Register(c); err != nil {
		return fmt.Errorf("register state collector: %w", err)
	}
	return nil
}

// Describe sends the collector's descriptors.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.oldest, c.nodes, c.success, c.durationSec} {
		ch <- d
	}
}

// Collect runs the queries at once, each within the timeout.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	var wg sync.WaitGroup
	start := func(name string, query func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(ch, name, query)
		}()
	}
	if c.src.Outbox != nil {
		start("outbox", func(ctx context.Context) error {
			rows, err := c.src.Outbox(ctx)
			if err != nil {
				return err
			}
			seen := map[string]OutboxBacklog{}
			for _, b := range rows {
				seen[b.Channel] = b
			}
			for _, ch := range OutboxChannels {
				if _, ok := seen[ch]; !ok {
					seen[ch] = OutboxBacklog{Channel: ch}
				}
			}
			for channel, b := range seen {
				ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(b.Pending), channel)
				ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, b.OldestAge.Seconds(), channel)
			}
			return nil
		})
	}
	if c.src.NodeStatuses != nil {
		start("nodes", func(ctx context.Context) error {
			counts, err := c.src.NodeStatuses(ctx)
			if err != nil {
				return err
			}
			for status, n := range counts {
				ch <- prometheus.MustNewConstMetric(c.nodes, prometheus.GaugeValue, float64(n), status)
			}
			return nil
		})
	}
	wg.Wait()
}

// run runs one query within the timeout and reports its success and
// duration.
func (c *stateCollector) run(ch chan<- prometheus.Metric, name string, query func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.src.Timeout)
	defer cancel()
	start := time.Now()
	err := query(ctx)
	ok := 1.0
	if err != nil {
		ok = 0
		c.src.Logger.Warn("metrics: scrape-time query failed", "query", name, "err", err)
	}
	ch <- prometheus.MustNewConstMetric(c.success, prometheus.GaugeValue, ok, name)
	ch <- prometheus.MustNewConstMetric(c.durationSec, prometheus.GaugeValue, time.Since(start).Seconds(), name)
}
