//go:build integration

package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/config"
	"github.com/vigil-health/vigil/internal/database"
	"github.com/vigil-health/vigil/internal/embeddedtemporal"
	"github.com/vigil-health/vigil/internal/netport"
)

func freePort(t *testing.T) int {
	t.Helper()
	port, err := netport.Free("127.0.0.1")
	require.NoError(t, err)
	return port
}

// anyPorts lets the embedded Temporal server pick every port it binds
// (frontend and Web UI included) just before binding, retrying on fresh ports
// when it loses a race: a port picked by the test and bound later can be
// taken in between by another Temporal server on the machine (`vigil dev`,
// other test packages).
func anyPorts(cfg *config.Config) {
	cfg.TemporalAddress = "127.0.0.1:0"
	cfg.Dev.UIPort = embeddedtemporal.AnyPort
}

func get(t *testing.T, rawURL string, out any) int {
	t.Helper()
	resp, err := http.Get(rawURL) //nolint:noctx // test helper
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode
}

// TestDev_WholeStackInOneProcess starts `vigil dev` as main does (embedded
// Temporal with SQLite on disk and the Web UI, a database it must create,
// migrations, worker and API), runs a system check through HTTP, finds it
// through the Web UI's own API, and stops everything.
func TestDev_WholeStackInOneProcess(t *testing.T) {
	ctx := context.Background()
	cfg, dsn := devConfig(t, "dev", map[string]string{
		// /metrics on its own address, not on the API's.
		"VIGIL_METRICS_ADDR": "127.0.0.1:0",
	})
	// StartDev must create the database itself.
	require.NoError(t, database.Drop(ctx, dsn))
	stack := startDev(t, cfg, slog.LevelWarn)

	var ready struct{ Status string }
	require.Equal(t, http.StatusOK, get(t, stack.APIURL+"/readyz", &ready))
	require.Equal(t, "ready", ready.Status)

	// VIGIL_METRICS_ADDR moves /metrics off the API address.
	require.NotEqual(t, stack.APIURL, stack.MetricsURL)
	require.Equal(t, http.StatusNotFound, get(t, stack.APIURL+"/metrics", nil))
	require.Equal(t, http.StatusOK, get(t, stack.MetricsURL+"/metrics", nil))

	resp, err := http.Post(stack.APIURL+"/v1/system/check?wait=true", "application/json", strings.NewReader(`{"note":"dev"}`)) //nolint:noctx // test
	require.NoError(t, err)
	var check struct {
		CheckID    string `json:"check_id"`
		WorkflowID string `json:"workflow_id"`
		Status     string `json:"status"`
		WebUIURL   string `json:"web_ui_url"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&check))
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "COMPLETED", check.Status)
	require.True(t, strings.HasPrefix(check.WebUIURL, stack.TemporalUIURL+"/namespaces/default/workflows/"), check.WebUIURL)

	// One registry for the worker and the API: the SDK's worker metrics and
	// the scrape-time outbox backlog and node counts.
	resp, err = http.Get(stack.MetricsURL + "/metrics") //nolint:noctx // test
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	for _, want := range []string{
		`temporal_workflow_completed_total{`, `temporal_worker_task_slots_available{`, `temporal_workflow_task_schedule_to_start_latency_seconds_bucket{`,
		`vigil_outbox_pending{channel="sms"} 0`, `vigil_nodes{status="ONLINE"}`, `vigil_state_query_success{query="outbox"} 1`,
		`vigil_http_request_duration_seconds_count{`,
	} {
		require.Contains(t, string(body), want)
	}

	// The Web UI serves its pages, and its API lists the run, filtered by
	// Vigil's search attribute, exactly as the UI's workflow list does.
	require.Equal(t, http.StatusOK, get(t, check.WebUIURL, nil))
	query := url.Values{"query": {`VigilKind="system-check"`}}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var list struct {
			Executions []struct {
				Execution struct {
					WorkflowID string `json:"workflowId"`
				} `json:"execution"`
				Status string `json:"status"`
			} `json:"executions"`
		}
		if !assert.Equal(c, http.StatusOK, get(t, stack.TemporalUIURL+"/api/v1/namespaces/default/workflows?"+query.Encode(), &list)) {
			return
		}
		if assert.Len(c, list.Executions, 1) {
			assert.Equal(c, check.WorkflowID, list.Executions[0].Execution.WorkflowID)
			assert.Equal(c, "WORKFLOW_EXECUTION_STATUS_COMPLETED", list.Executions[0].Status)
		}
	}, 15*time.Second, 100*time.Millisecond)

	stack.Stop()
	_, err = net.DialTimeout("tcp", strings.TrimPrefix(stack.APIURL, "http://"), time.Second)
	require.Error(t, err, "the API port is released on stop")
	_, err = net.DialTimeout("tcp", strings.TrimPrefix(stack.MetricsURL, "http://"), time.Second)
	require.Error(t, err, "the metrics port is released on stop")
}
