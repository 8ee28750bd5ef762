//go:build integration

package deploy_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/internal/embeddedtemporal"
	"github.com/vigil-health/vigil/internal/testenv"
	"github.com/vigil-health/vigil/internal/watch/directory/directorysim"
	"github.com/vigil-health/vigil/workflows"
)

// freeAddr is a localhost address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// scrapeURL returns a /metrics body.
func scrapeURL(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // test helper
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	return string(b)
}

// startProcess runs a Vigil process (app.Worker or app.API) until the test
// ends and waits for url to answer 200.
func startProcess(t *testing.T, run func(context.Context, config.Config, *slog.Logger) error, cfg config.Config, url string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	go func() { done <- run(ctx, cfg, logger) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("process did not stop")
		}
	})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		select {
		case err := <-done:
			require.NoError(t, err, "process stopped at start")
			require.FailNow(t, "process stopped at start")
		default:
		}
		resp, err := http.Get(url) //nolint:noctx // test
		if !assert.NoError(c, err) {
			return
		}
		_ = resp.Body.Close()
		assert.Equal(c, http.StatusOK, resp.StatusCode)
	}, 60*time.Second, 100*time.Millisecond)
}

// TestObservability_WorkerAndAPIMetrics runs `vigil worker` and `vigil api`
// as processes apart against real Postgres and Temporal servers, runs a
// system check (a workflow and its activity), fails a workflow task (a
// workflow type no worker registers), asks the API for an unknown check (a
// failed Temporal request) and finally stops the Temporal server (failed
// polls). Then the worker's /metrics must show the SDK's worker metrics,
// and every metric the dashboards and alert rules select, vigil_* and
// temporal_*, must be exposed by the worker or the API.
func TestObservability_WorkerAndAPIMetrics(t *testing.T) {
	ctx := context.Background()
	env, err := testenv.StartDB(ctx, "deploy_observability")
	require.NoError(t, err)
	t.Cleanup(env.Close)
	// A server of this test's own: it is stopped on purpose below.
	srv, err := embeddedtemporal.Start(ctx, embeddedtemporal.Options{Logger: env.Logger})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })

	// A directory, so the worker runs its directory worker: watch polls are
	// activities it polls for (never eager), with their schedule-to-start.
	sim := directorysim.New(directorysim.Options{Accounts: directorysim.DefaultAccounts(), RatePerSecond: 200})
	dirURL, stopSim, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(stopSim)

	const taskQueue = "observability"
	workerAddr, apiAddr, apiMetricsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	load := func(extra map[string]string) config.Config {
		vars := map[string]string{
			"DATABASE_URL":            env.DatabaseURL,
			"TEMPORAL_ADDRESS":        srv.FrontendAddress(),
			"TEMPORAL_NAMESPACE":      srv.Namespace(),
			"VIGIL_TASK_QUEUE":        taskQueue,
			"VIGIL_JWT_SECRET":        strings.Repeat("j", 40),
			"VIGIL_ACTIVATION_SECRET": strings.Repeat("a", 40),
			"VIGIL_SHUTDOWN_TIMEOUT":  "15s",
			// 32 bytes, base64: the worker and the API share it.
			"VIGIL_PAYLOAD_KEYS": "obs=b2JzZXJ2YWJpbGl0eS10ZXN0LXBheWxvYWQta2V5ISE=",
		}
		for k, v := range extra {
			vars[k] = v
		}
		cfg, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
		require.NoError(t, err)
		return cfg
	}
	workerURL, apiURL, apiMetricsURL := "http://"+workerAddr, "http://"+apiAddr, "http://"+apiMetricsAddr
	startProcess(t, app.Worker, load(map[string]string{
		"VIGIL_HTTP_ADDR":          workerAddr,
		"VIGIL_DIRECTORY_URL":      dirURL,
		"VIGIL_DIRECTORY_ACCOUNTS": "CAPMON=capmon:capmon-demo,PATHWAYS_REFERRAL=pathways:pathways-demo,DIGITAL_REFERRAL=digital:digital-demo",
	}), workerURL+"/healthz")
	startProcess(t, app.API, load(map[string]string{"VIGIL_HTTP_ADDR": apiAddr, "VIGIL_METRICS_ADDR": apiMetricsAddr}), apiURL+"/readyz")

	// A system check: a workflow with an activity on the worker.
	resp, err := http.Post(apiURL+"/v1/system/check?wait=true", "application/json", strings.NewReader(`{"note":"metrics"}`)) //nolint:noctx // test
	require.NoError(t, err)
	var check struct{ Status string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&check))
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "COMPLETED", check.Status)

	// An unknown check: the API's DescribeWorkflowExecution fails NOT_FOUND.
	resp, err = http.Get(apiURL + "/v1/system/checks/" + uuid.NewString()) //nolint:noctx // test
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	tc, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace()})
	require.NoError(t, err)
	defer tc.Close()

	// A capacity watch: its first poll goes out at once.
	watchID := uuid.NewString()
	watch, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.WatchWorkflowID(watchID), TaskQueue: taskQueue}, workflows.Watch,
		&workflows.WatchInput{WatchID: watchID, Config: workflows.WatchConfig{
			Kind: workflows.WatchKindService, ServiceID: "2000001", Description: "metrics", Interval: time.Hour, RecoveryPolls: 1,
		}})
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		body := scrapeURL(t, workerURL+"/metrics")
		assert.Contains(c, body, "vigil_watch_poll_lag_seconds_count 1\n")
		assert.Contains(c, body, `vigil_watch_changes_total{kind="first_sighting"} 1`+"\n")
	}, 30*time.Second, 200*time.Millisecond)
	require.NoError(t, tc.TerminateWorkflow(ctx, watch.GetID(), watch.GetRunID(), "test done"))

	// A workflow type no worker registers: its workflow task fails.
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "unregistered-" + uuid.NewString(), TaskQueue: taskQueue}, "NoSuchWorkflow")
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Contains(c, scrapeURL(t, workerURL+"/metrics"), `temporal_workflow_task_execution_failed_total{`)
	}, 30*time.Second, 200*time.Millisecond)
	require.NoError(t, tc.TerminateWorkflow(ctx, run.GetID(), run.GetRunID(), "test done"))

	t.Run("the worker shows the SDK's worker metrics", func(t *testing.T) {
		exposed := parseExposition(t, scrapeURL(t, workerURL+"/metrics"))
		for _, want := range []struct {
			name   string
			labels map[string]string
		}{
			{"temporal_workflow_task_schedule_to_start_latency_seconds_bucket", map[string]string{"task_queue": taskQueue, "namespace": srv.Namespace()}},
			{"temporal_activity_schedule_to_start_latency_seconds_count", map[string]string{"task_queue": workflows.DirectoryTaskQueue(taskQueue), "activity_type": "Poll"}},
			{"temporal_activity_execution_latency_seconds_count", map[string]string{"task_queue": taskQueue, "activity_type": "RecordSystemCheck"}},
			{"vigil_watch_polls_total", map[string]string{"outcome": "ok"}},
			{"temporal_worker_task_slots_available", map[string]string{"task_queue": taskQueue, "worker_type": "WorkflowWorker"}},
			{"temporal_worker_task_slots_available", map[string]string{"task_queue": taskQueue, "worker_type": "ActivityWorker"}},
			{"temporal_num_pollers", map[string]string{"task_queue": taskQueue, "poller_type": "workflow_task"}},
			{"temporal_sticky_cache_size", map[string]string{"workflow_type": "SystemCheck"}},
			{"temporal_workflow_completed_total", map[string]string{"workflow_type": "SystemCheck"}},
			{"temporal_workflow_task_execution_failed_total", map[string]string{"workflow_type": "NoSuchWorkflow", "failure_reason": "WorkflowError"}},
			{"temporal_long_request_total", map[string]string{"operation": "PollWorkflowTaskQueue"}},
			{"temporal_request_total", map[string]string{"operation": "RespondWorkflowTaskCompleted"}},
		} {
			series, ok := exposed[want.name]
			require.True(t, ok, "%s is not exposed", want.name)
			require.True(t, containsLabels(series, want.labels), "no series of %s has %v: %v", want.name, want.labels, series)
		}
	})

	// Temporal goes away: the worker's polls fail.
	require.NoError(t, srv.Stop())
	var workerBody string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		workerBody = scrapeURL(t, workerURL+"/metrics")
		assert.Contains(c, workerBody, `temporal_long_request_failure_total{`)
	}, 60*time.Second, 250*time.Millisecond)
	apiBody := scrapeURL(t, apiMetricsURL+"/metrics")
	t.Logf("worker poll failures after the server stopped:\n%s", grepLines(workerBody, "temporal_long_request_failure_total{"))

	t.Run("every dashboard and rule metric is exposed", func(t *testing.T) {
		exposed := parseExposition(t, workerBody)
		for name, series := range parseExposition(t, apiBody) {
			exposed[name] = append(exposed[name], series...)
		}
		queries := observabilityQueries(t)
		checkQueriesExposed(t, queries, exposed, "vigil_")
		checkQueriesExposed(t, queries, exposed, "temporal_")
	})
}

func containsLabels(series []map[string]string, want map[string]string) bool {
	for _, labels := range series {
		ok := true
		for k, v := range want {
			if labels[k] != v {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func grepLines(body, substr string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
