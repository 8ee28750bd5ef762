//go:build integration

package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/workflows"
)

func httpJSON(t *testing.T, method, url, body string, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp
}

func TestSystemCheck_EndToEndThroughHTTP(t *testing.T) {
	srv := startStack(t)

	var ready map[string]any
	resp := httpJSON(t, "GET", srv.URL+"/readyz", "", &ready)
	require.Equal(t, http.StatusOK, resp.StatusCode, ready)

	var started api.SystemCheck
	resp = httpJSON(t, "POST", srv.URL+"/v1/system/check", `{"note":"integration"}`, &started)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, "/v1/system/checks/"+started.CheckID, resp.Header.Get("Location"))
	require.Equal(t, workflows.SystemCheckWorkflowID(started.CheckID), started.WorkflowID)
	require.Equal(t, "http://localhost:8233/namespaces/default/workflows/system-check:"+started.CheckID, started.WebUIURL)

	var done api.SystemCheck
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := httpJSON(t, "GET", srv.URL+resp.Header.Get("Location"), "", &done)
		assert.Equal(c, http.StatusOK, r.StatusCode)
		assert.Equal(c, "COMPLETED", done.Status)
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, "integration", done.Note)
	require.NotNil(t, done.RecordedAt)
	require.NotEmpty(t, done.WorkerIdentity)

	// The activity's row is in Postgres.
	var note string
	require.NoError(t, env.DB.Get(&note, `SELECT note FROM system_checks WHERE id = $1`, started.CheckID))
	require.Equal(t, "integration", note)

	// The run is visible to the Web UI's list, filtered by Vigil's typed
	// search attribute.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		list, err := env.Client.ListWorkflow(context.Background(), listRequest(
			`VigilKind = "system-check" AND WorkflowId = "`+started.WorkflowID+`"`))
		if !assert.NoError(c, err) {
			return
		}
		assert.Len(c, list.GetExecutions(), 1)
	}, 20*time.Second, 100*time.Millisecond)

	env.ReplayAndRecord(t, started.WorkflowID, "", "system_check.json")
}

func TestSystemCheck_WaitReturnsTheFinishedCheck(t *testing.T) {
	srv := startStack(t)
	var done api.SystemCheck
	resp := httpJSON(t, "POST", srv.URL+"/v1/system/check?wait=true", "", &done)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "COMPLETED", done.Status)
	require.NotNil(t, done.RecordedAt)
}

func TestSystemCheck_UnknownIDIs404(t *testing.T) {
	srv := startStack(t)
	var body api.ErrorBody
	resp := httpJSON(t, "GET", srv.URL+"/v1/system/checks/"+uuid.NewString(), "", &body)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, api.CodeNotFound, body.Error.Code)
}

func listRequest(query string) *workflowservice.ListWorkflowExecutionsRequest {
	return &workflowservice.ListWorkflowExecutionsRequest{Namespace: env.Temporal.Namespace(), Query: query}
}
