package metrics

import (
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.temporal.io/sdk/client"
)

// TemporalLatencyBuckets are the histogram buckets, in seconds, of the
// Temporal SDK's timers: from a millisecond (a local request) through the
// 70 s of a long poll to an hour (a workflow's end-to-end latency).
var TemporalLatencyBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 3600}

// MaxTemporalSeries bounds the series the SDK handler keeps per registry; a
// new tag combination beyond it is dropped (and counted in
// vigil_temporal_sdk_series_dropped_total) rather than grow without bound.
const MaxTemporalSeries = 2000

// sdkKind is the kind of an SDK metric.
type sdkKind int

const (
	sdkCounter sdkKind = iota
	sdkGauge
	sdkTimer
)

// exposedName is how an SDK metric appears in /metrics: counters end in
// _total and timers are histograms in seconds ending in _seconds, as the
// Prometheus exporters of the SDK's tally and OpenTelemetry handlers name
// them (so the community SDK dashboards' queries work); gauges keep their
// name.
func (k sdkKind) exposedName(name string) string {
	name = sanitizeName(name)
	switch k {
	case sdkCounter:
		return name + "_total"
	case sdkTimer:
		return name + "_seconds"
	}
	return name
}

func (k sdkKind) String() string {
	return [...]string{"counter", "gauge", "timer"}[k]
}

// sdkSeries is one SDK metric with one set of tags.
type sdkSeries struct {
	kind   sdkKind
	name   string            // exposed name
	labels map[string]string // sanitized tag names, no empty values
	metric prometheus.Metric // a label-less Counter, Gauge or Histogram
}

// sdkCollector is a registry's Temporal SDK metrics. The SDK asks for the
// same metric name with different tag sets (temporal_request_failure has
// status_code, which temporal_request lacks; a tag may be absent on some
// calls), which prometheus vectors cannot hold: each tag set is kept as its
// own series and, at scrape time, every series of a name is exposed with
// the union of that name's label names, a missing one empty (which
// Prometheus treats as absent).
type sdkCollector struct {
	mu      sync.RWMutex
	series  map[string]*sdkSeries // by seriesKey
	dropped prometheus.Counter
	warned  bool
}

// seriesKey identifies a series: kind, exposed name and sorted tags.
func seriesKey(kind sdkKind, name, tagKey string) string {
	return kind.String() + "\xff" + name + "\xff" + tagKey
}

// tagKey encodes sorted, non-empty tags.
func tagKey(tags map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(tags[k])
		b.WriteByte('\xff')
	}
	return b.String()
}

// get returns the series, creating it; nil when the bound is reached.
func (c *sdkCollector) get(kind sdkKind, name string, h *sdkHandler) prometheus.Metric {
	exposed := kind.exposedName(name)
	key := seriesKey(kind, exposed, h.key)
	c.mu.RLock()
	s, ok := c.series[key]
	c.mu.RUnlock()
	if ok {
		return s.metric
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.series[key]; ok {
		return s.metric
	}
	if len(c.series) >= MaxTemporalSeries {
		c.dropped.Inc()
		if !c.warned {
			c.warned = true
			slog.Warn("temporal sdk metrics: series limit reached; new tag combinations are dropped", "limit", MaxTemporalSeries, "metric", exposed)
		}
		return nil
	}
	s = &sdkSeries{kind: kind, name: exposed, labels: h.tags}
	switch kind {
	case sdkCounter:
		s.metric = prometheus.NewCounter(prometheus.CounterOpts{Name: exposed})
	case sdkGauge:
		s.metric = prometheus.NewGauge(prometheus.GaugeOpts{Name: exposed})
	default:
		s.metric = prometheus.NewHistogram(prometheus.HistogramOpts{Name: exposed, Buckets: TemporalLatencyBuckets})
	}
	c.series[key] = s
	return s.metric
}

// Describe sends nothing: the SDK's metrics are not known in advance, so
// the collector is unchecked.
func (c *sdkCollector) Describe(chan<- *prometheus.Desc) {}

// Collect exposes every series, each name with the union of its labels.
func (c *sdkCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	all := slices.Collect(maps.Values(c.series))
	c.mu.RUnlock()

	type family struct {
		kind   sdkKind
		labels []string
		series []*sdkSeries
	}
	families := map[string]*family{}
	for _, s := range all {
		f, ok := families[s.name]
		if !ok {
			f = &family{kind: s.kind}
			families[s.name] = f
		}
		if f.kind != s.kind {
			continue // the same exposed name as another kind: keep the first
		}
		f.series = append(f.series, s)
		for l := range s.labels {
			if !slices.Contains(f.labels, l) {
				f.labels = append(f.labels, l)
			}
		}
	}
	for name, f := range families {
		slices.Sort(f.labels)
		desc := prometheus.NewDesc(name, "Temporal SDK "+f.kind.String()+" "+name+".", f.labels, nil)
		for _, s := range f.series {
			values := make([]string, len(f.labels))
			for i, l := range f.labels {
				values[i] = s.labels[l]
			}
			var m dto.Metric
			if err := s.metric.Write(&m); err != nil {
				ch <- prometheus.NewInvalidMetric(desc, err)
				continue
			}
			var (
				out prometheus.Metric
				err error
			)
			switch f.kind {
			case sdkCounter:
				out, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, m.GetCounter().GetValue(), values...)
			case sdkGauge:
				out, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, m.GetGauge().GetValue(), values...)
			default:
				h := m.GetHistogram()
				buckets := make(map[float64]uint64, len(h.GetBucket()))
				for _, b := range h.GetBucket() {
					buckets[b.GetUpperBound()] = b.GetCumulativeCount()
				}
				out, err = prometheus.NewConstHistogram(desc, h.GetSampleCount(), h.GetSampleSum(), buckets, values...)
			}
			if err != nil {
				out = prometheus.NewInvalidMetric(desc, err)
			}
			ch <- out
		}
	}
}

// sdkHandler is a client.MetricsHandler with its tags.
type sdkHandler struct {
	c    *sdkCollector
	tags map[string]string
	key  string
}

// WithTags returns a handler with tags added (an existing key is
// overwritten; an empty value removes the tag).
func (h *sdkHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(h.tags)
	if merged == nil {
		merged = map[string]string{}
	}
	for k, v := range tags {
		k = sanitizeName(k)
		if v == "" {
			delete(merged, k)
			continue
		}
		merged[k] = v
	}
	return &sdkHandler{c: h.c, tags: merged, key: tagKey(merged)}
}

// Counter returns the counter of name with the handler's tags.
func (h *sdkHandler) Counter(name string) client.MetricsCounter {
	m, _ := h.c.get(sdkCounter, name, h).(prometheus.Counter)
	return counterFunc(func(d int64) {
		if m != nil && d > 0 {
			m.Add(float64(d))
		}
	})
}

// Gauge returns the gauge of name with the handler's tags.
func (h *sdkHandler) Gauge(name string) client.MetricsGauge {
	m, _ := h.c.get(sdkGauge, name, h).(prometheus.Gauge)
	return gaugeFunc(func(v float64) {
		if m != nil {
			m.Set(v)
		}
	})
}

// Timer returns the timer of name with the handler's tags, a histogram in
// seconds.
func (h *sdkHandler) Timer(name string) client.MetricsTimer {
	m, _ := h.c.get(sdkTimer, name, h).(prometheus.Histogram)
	return timerFunc(func(d time.Duration) {
		if m != nil {
			m.Observe(d.Seconds())
		}
	})
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

// sanitizeName makes s a valid Prometheus metric or label name: every
// character outside [a-zA-Z0-9_] becomes _, and a leading digit gets a _
// in front.
func sanitizeName(s string) string {
	valid := func(i int, r rune) bool {
		return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
	}
	ok := s != ""
	for i, r := range s {
		if !valid(i, r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case valid(i, r):
			b.WriteRune(r)
		case i == 0 && r >= '0' && r <= '9':
			b.WriteByte('_')
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

// sdkByRegistry caches each Registry's SDK collector.
var sdkByRegistry sync.Map // *Registry -> *sdkCollector

// TemporalSDK returns a Temporal SDK metrics handler that records on r: give
// it to the Temporal client (client.Options.MetricsHandler) and the client
// and every worker built on it report temporal_* metrics in r's /metrics.
// Counters are exposed as <name>_total, timers as <name>_seconds
// histograms (TemporalLatencyBuckets) and gauges as <name>, each with the
// SDK's tags as labels. A nil registry returns the SDK's no-op handler.
func (r *Registry) TemporalSDK() client.MetricsHandler {
	if r == nil {
		return client.MetricsNopHandler
	}
	if c, ok := sdkByRegistry.Load(r); ok {
		return &sdkHandler{c: c.(*sdkCollector), tags: map[string]string{}}
	}
	c := &sdkCollector{
		series: map[string]*sdkSeries{},
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_temporal_sdk_series_dropped_total",
			Help: "Temporal SDK metric series not recorded because the handler's series limit was reached.",
		}),
	}
	actual, loaded := sdkByRegistry.LoadOrStore(r, c)
	if !loaded {
		r.reg.MustRegister(c, c.dropped)
	}
	return &sdkHandler{c: actual.(*sdkCollector), tags: map[string]string{}}
}
