package metrics_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/vigil-health/vigil/internal/metrics"
)

// scrape returns the registry's /metrics body.
func scrape(t *testing.T, reg *metrics.Registry) string {
	t.Helper()
	w := httptest.NewRecorder()
	reg.Handler().ServeHTTP(w, httptest.NewRequestWithContext(context.Background(), "GET", "/metrics", nil))
	require.Equal(t, 200, w.Code, w.Body.String())
	return w.Body.String()
}

func TestTemporalSDKNamesAndTypes(t *testing.T) {
	reg := metrics.New()
	h := reg.TemporalSDK().WithTags(map[string]string{"namespace": "default", "task_queue": "vigil"})
	h.Counter("temporal_workflow_task_execution_failed").Inc(2)
	h.Counter("temporal_workflow_task_execution_failed").Inc(1)
	h.Counter("temporal_workflow_task_execution_failed").Inc(-5) // never decreases
	h.Gauge("temporal_worker_task_slots_available").Update(7)
	h.Gauge("temporal_worker_task_slots_available").Update(5)
	h.Timer("temporal_workflow_task_schedule_to_start_latency").Record(30 * time.Millisecond)
	h.Timer("temporal_workflow_task_schedule_to_start_latency").Record(2 * time.Second)

	body := scrape(t, reg)
	for _, line := range []string{
		"# TYPE temporal_workflow_task_execution_failed_total counter",
		`temporal_workflow_task_execution_failed_total{namespace="default",task_queue="vigil"} 3`,
		"# TYPE temporal_worker_task_slots_available gauge",
		`temporal_worker_task_slots_available{namespace="default",task_queue="vigil"} 5`,
		"# TYPE temporal_workflow_task_schedule_to_start_latency_seconds histogram",
		`temporal_workflow_task_schedule_to_start_latency_seconds_bucket{namespace="default",task_queue="vigil",le="0.025"} 0`,
		`temporal_workflow_task_schedule_to_start_latency_seconds_bucket{namespace="default",task_queue="vigil",le="0.05"} 1`,
		`temporal_workflow_task_schedule_to_start_latency_seconds_bucket{namespace="default",task_queue="vigil",le="2.5"} 2`,
		`temporal_workflow_task_schedule_to_start_latency_seconds_bucket{namespace="default",task_queue="vigil",le="+Inf"} 2`,
		`temporal_workflow_task_schedule_to_start_latency_seconds_sum{namespace="default",task_queue="vigil"} 2.03`,
		`temporal_workflow_task_schedule_to_start_latency_seconds_count{namespace="default",task_queue="vigil"} 2`,
		"vigil_temporal_sdk_series_dropped_total 0",
	} {
		require.Contains(t, body, line+"\n")
	}
}

// TestTemporalSDKTagSets checks one metric name asked for with different tag
// sets: every set is its own series, exposed with the union of the name's
// labels (a missing one empty), and the scrape does not fail.
func TestTemporalSDKTagSets(t *testing.T) {
	tests := []struct {
		name string
		// calls are tag sets, each counted once on temporal_request_failure.
		calls []map[string]string
		want  []string
	}{
		{
			name: "a tag only some calls have",
			calls: []map[string]string{
				{"operation": "PollWorkflowTaskQueue"},
				{"operation": "PollWorkflowTaskQueue", "status_code": "UNAVAILABLE"},
			},
			want: []string{
				`temporal_request_failure_total{operation="PollWorkflowTaskQueue",status_code=""} 1`,
				`temporal_request_failure_total{operation="PollWorkflowTaskQueue",status_code="UNAVAILABLE"} 1`,
			},
		},
		{
			name: "disjoint tag names",
			calls: []map[string]string{
				{"a": "1"},
				{"b": "2"},
			},
			want: []string{
				`temporal_request_failure_total{a="1",b=""} 1`,
				`temporal_request_failure_total{a="",b="2"} 1`,
			},
		},
		{
			name: "an empty value is no tag, so it is the same series",
			calls: []map[string]string{
				{"operation": "X", "status_code": ""},
				{"operation": "X"},
			},
			want: []string{`temporal_request_failure_total{operation="X"} 2`},
		},
		{
			name: "invalid tag names are sanitized",
			calls: []map[string]string{
				{"task-queue": "vigil", "1st": "x"},
			},
			want: []string{`temporal_request_failure_total{_1st="x",task_queue="vigil"} 1`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := metrics.New()
			root := reg.TemporalSDK()
			for _, tags := range tt.calls {
				root.WithTags(tags).Counter("temporal_request_failure").Inc(1)
			}
			_, err := reg.Gatherer().Gather()
			require.NoError(t, err)
			body := scrape(t, reg)
			for _, line := range tt.want {
				require.Contains(t, body, line+"\n")
			}
		})
	}
}

func TestTemporalSDKWithTags(t *testing.T) {
	reg := metrics.New()
	root := reg.TemporalSDK().WithTags(map[string]string{"namespace": "default", "worker_type": "none", "task_queue": "none"})
	// A later tag overwrites, an empty one removes, the parent is unchanged.
	child := root.WithTags(map[string]string{"worker_type": "WorkflowWorker", "task_queue": ""})
	child.Gauge("temporal_num_pollers").Update(2)
	root.Gauge("temporal_num_pollers").Update(1)

	body := scrape(t, reg)
	require.Contains(t, body, `temporal_num_pollers{namespace="default",task_queue="",worker_type="WorkflowWorker"} 2`+"\n")
	require.Contains(t, body, `temporal_num_pollers{namespace="default",task_queue="none",worker_type="none"} 1`+"\n")
}

func TestTemporalSDKSeriesLimit(t *testing.T) {
	reg := metrics.New()
	h := reg.TemporalSDK()
	for i := range metrics.MaxTemporalSeries + 10 {
		h.WithTags(map[string]string{"i": fmt.Sprint(i)}).Counter("temporal_request").Inc(1)
	}
	// An existing series keeps counting at the limit.
	h.WithTags(map[string]string{"i": "0"}).Counter("temporal_request").Inc(1)
	require.InDelta(t, 10, counter(t, reg, "vigil_temporal_sdk_series_dropped_total", nil), 1e-9)
	require.InDelta(t, 2, counter(t, reg, "temporal_request_total", map[string]string{"i": "0"}), 1e-9)
}

func TestTemporalSDKConcurrentUse(t *testing.T) {
	reg := metrics.New()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := reg.TemporalSDK().WithTags(map[string]string{"worker": fmt.Sprint(g % 2)})
			for range 500 {
				h.Counter("temporal_request").Inc(1)
				h.Timer("temporal_request_latency").Record(time.Millisecond)
				h.Gauge("temporal_sticky_cache_size").Update(1)
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				_, err := reg.Gatherer().Gather()
				require.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	require.InDelta(t, 2000, counter(t, reg, "temporal_request_total", map[string]string{"worker": "0"}), 1e-9)
	require.InDelta(t, 2000, counter(t, reg, "temporal_request_total", map[string]string{"worker": "1"}), 1e-9)
}

func TestTemporalSDKRegistries(t *testing.T) {
	a, b := metrics.New(), metrics.New()
	a.TemporalSDK().Counter("temporal_request").Inc(1)
	a.TemporalSDK().Counter("temporal_request").Inc(1) // the second handler shares the first's series
	require.InDelta(t, 2, counter(t, a, "temporal_request_total", nil), 1e-9)
	require.InDelta(t, 0, counter(t, b, "temporal_request_total", nil), 1e-9)

	var none *metrics.Registry
	require.Equal(t, client.MetricsNopHandler, none.TemporalSDK())
}
