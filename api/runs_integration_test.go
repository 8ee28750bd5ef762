//go:build integration

package api_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/internal/node/broker"
	"github.com/vigil-health/vigil/internal/node/brokersim"
	"github.com/vigil-health/vigil/worker"
	"github.com/vigil-health/vigil/workflows"
)

// Runs as operators see them in the Temporal Web UI (issue 12): static
// summaries and details, current details, searchable attributes, and the
// operator signals, on a real server through the normal paths.

// runSummary is a run's static summary and details (DescribeWorkflow).
func runSummary(t *testing.T, workflowID string) (summary, details string) {
	t.Helper()
	d, err := env.Client.DescribeWorkflow(t.Context(), workflowID, "")
	require.NoError(t, err)
	summary, err = d.GetStaticSummary()
	require.NoError(t, err)
	details, err = d.GetStaticDetails()
	require.NoError(t, err)
	return summary, details
}

// runMetadata is the run's current details and handler definitions (the
// query the Web UI makes).
func runMetadata(t *testing.T, workflowID string) *sdkpb.WorkflowMetadata {
	t.Helper()
	v, err := env.Client.QueryWorkflow(t.Context(), workflowID, "", "__temporal_workflow_metadata")
	require.NoError(t, err)
	md := &sdkpb.WorkflowMetadata{}
	require.NoError(t, v.Get(md))
	return md
}

// listed returns the workflow ids a visibility query finds.
func listed(t assert.TestingT, query string) []string {
	resp, err := env.Client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: query})
	if !assert.NoError(t, err, query) {
		return nil
	}
	var ids []string
	for _, e := range resp.GetExecutions() {
		ids = append(ids, e.GetExecution().GetWorkflowId())
	}
	return ids
}

// searchAttributeText is every search attribute of a run, decoded as text.
func searchAttributeText(t *testing.T, workflowID string) string {
	t.Helper()
	d, err := env.Client.DescribeWorkflowExecution(t.Context(), workflowID, "")
	require.NoError(t, err)
	var b strings.Builder
	for name, p := range d.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields() {
		var v any
		require.NoError(t, converter.GetDefaultDataConverter().FromPayload(p, &v))
		fmt.Fprintf(&b, "%s=%v\n", name, v)
	}
	return b.String()
}

type operatorSignalRow struct {
	Signal  string `db:"signal"`
	Actor   string `db:"actor"`
	Reason  string `db:"reason"`
	Outcome string `db:"outcome"`
	Refusal string `db:"refusal"`
}

func operatorSignals(t assert.TestingT, kind, subjectID string) []operatorSignalRow {
	var rows []operatorSignalRow
	assert.NoError(t, env.DB.Select(&rows, `SELECT signal, actor, reason, outcome, refusal FROM operator_signals
		WHERE kind = $1 AND subject_id = $2 ORDER BY id`, kind, subjectID))
	return rows
}

func TestRuns_WatchSummaryOperatorSignalsAndDeletedState(t *testing.T) {
	s, _, _ := directoryStack(t)
	charge := s.login(t, "c01")
	var w api.WatchView
	body := `{"kind":"search","search":{"postcode":"LS1 4AP","distance_miles":10,"service_types":["100"]},"interval_seconds":60}`
	require.Equal(t, http.StatusCreated, s.call(t, "POST", "/v1/watches", charge, body, &w).StatusCode)
	path := "/v1/watches/" + w.ID

	summary, details := runSummary(t, w.WorkflowID)
	require.Equal(t, "Watch · UTCs within 10 miles of LS1 4AP", summary)
	require.Contains(t, details, "Capacity watch "+w.ID)
	require.Contains(t, details, "every 1m")
	require.Contains(t, details, "Created by: C01")

	var md *sdkpb.WorkflowMetadata
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		md = runMetadata(t, w.WorkflowID)
		assert.Contains(c, md.GetCurrentDetails(), "Last poll: ", "the first poll is done")
	}, 15*time.Second, 100*time.Millisecond)
	require.Contains(t, md.GetCurrentDetails(), "State: active")
	var signals []string
	for _, d := range md.GetDefinition().GetSignalDefinitions() {
		require.NotEmpty(t, d.GetDescription(), d.GetName())
		signals = append(signals, d.GetName())
	}
	require.ElementsMatch(t, []string{"pause", "resume"}, signals)
	for _, d := range md.GetDefinition().GetUpdateDefinitions() {
		require.NotEmpty(t, d.GetDescription(), d.GetName())
	}

	// An operator pauses the watch with a signal: the REST read shows it,
	// with who did it and why; WatchState is searchable as paused.
	signal := func(name string, payload any) {
		t.Helper()
		require.NoError(t, env.Client.SignalWorkflow(t.Context(), w.WorkflowID, "", name, payload))
	}
	signal(workflows.WatchSignalPause, map[string]string{"operator": "alice", "reason": "directory maintenance"})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var v api.WatchView
		s.call(t, "GET", path, charge, "", &v)
		assert.Equal(c, workflows.WatchPaused, v.State)
		assert.Equal(c, "operator:alice", v.StateChangedBy)
		assert.Equal(c, "directory maintenance", v.StateReason)
		assert.NotNil(c, v.StateChangedAt)
	}, 15*time.Second, 100*time.Millisecond)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, []string{w.WorkflowID}, listed(c, `WatchID = "`+w.ID+`" AND WatchState = "paused"`))
	}, 15*time.Second, 200*time.Millisecond)

	// Refused: pausing a paused watch (as the REST pause), and a bad name.
	signal(workflows.WatchSignalPause, map[string]string{"operator": "bob"})
	signal(workflows.WatchSignalPause, map[string]string{"operator": "bob smith"})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, []operatorSignalRow{
			{"pause", "operator:alice", "directory maintenance", "accepted", ""},
			{"pause", "operator:bob", "", "refused", "the watch is already paused"},
			{"pause", "", "", "refused", "the operator name must be 1 to 64 letters, digits or . - _ @"},
		}, operatorSignals(c, "watch", w.ID))
	}, 15*time.Second, 100*time.Millisecond)
	current := runMetadata(t, w.WorkflowID).GetCurrentDetails()
	require.Contains(t, current, "State: paused · last paused or resumed by operator:alice")
	require.Contains(t, current, "Last refused signal: pause from an unnamed operator")

	// The REST resume records the staff member; an operator's resume of a
	// running watch is refused.
	require.Equal(t, http.StatusOK, s.call(t, "POST", path+"/resume", charge, "", nil).StatusCode)
	var v api.WatchView
	s.call(t, "GET", path, charge, "", &v)
	require.Equal(t, workflows.WatchActive, v.State)
	require.Equal(t, "C01", v.StateChangedBy, "the staff id")
	require.Empty(t, v.StateReason)
	signal(workflows.WatchSignalResume, map[string]string{"operator": "alice"})
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		rows := operatorSignals(c, "watch", w.ID)
		if assert.Len(c, rows, 4) {
			assert.Equal(c, operatorSignalRow{"resume", "operator:alice", "", "refused", "the watch is already running"}, rows[3])
		}
	}, 15*time.Second, 100*time.Millisecond)

	// Deleted: the run ends with WatchState = deleted, searchable.
	require.Equal(t, http.StatusNoContent, s.call(t, "DELETE", path, charge, "", nil).StatusCode)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, []string{w.WorkflowID}, listed(c, `WatchID = "`+w.ID+`" AND WatchState = "deleted"`))
	}, 15*time.Second, 200*time.Millisecond)
	require.Empty(t, listed(t, `WatchID = "`+w.ID+`" AND WatchState = "active"`))

	// The run, signals included, replays against today's code (and is
	// recorded for the replay unit test with VIGIL_RECORD_HISTORIES=1).
	env.ReplayAndRecord(t, w.WorkflowID, "", "watch_operator_signals.json")
}

func TestRuns_NodeSummaryNameAndRescan(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	node := fmt.Sprint(8800000 + rand.IntN(99999))
	t.Cleanup(func() {
		_ = env.Client.CancelWorkflow(context.Background(), workflows.NodeWorkflowID(node), "")
		for _, table := range append([]string{"node_observations"}, ndNodeTables...) {
			_, _ = env.DB.Exec(`DELETE FROM `+table+` WHERE node_id = $1`, node)
		}
	})
	sim := brokersim.New(brokersim.Options{})
	_, err := sim.AddNode(brokersim.NodeSpec{ID: node, Name: "Evangelisches Krankenhaus Lindenau", Behaviour: brokersim.Healthy})
	require.NoError(t, err)
	url, stop, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(stop)
	bc, err := broker.NewClient(broker.Options{BaseURL: url, APIKey: brokersim.DefaultAdminKey, Timeout: 5 * time.Second})
	require.NoError(t, err)
	s := startStackWith(t, worker.Dependencies{Broker: bc})

	// The normal path: a fleet scan (as the Schedule runs it) starts the
	// node's workflow by Signal-With-Start.
	run, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "fleet-scan-" + uuid.NewString(), TaskQueue: s.TaskQueue,
		StaticSummary: workflows.FleetScanSummary}, workflows.FleetScan, &workflows.FleetScanInput{})
	require.NoError(t, err)
	var scanned workflows.FleetScanResult
	require.NoError(t, run.Get(ctx, &scanned))
	wfID := workflows.NodeWorkflowID(node)
	summary, details := runSummary(t, wfID)
	require.Equal(t, "Node "+node+" · Evangelisches Krankenhaus Lindenau", summary)
	require.Contains(t, details, "Client DN: CN=Evangelisches Krankenhaus Lindenau,O=AKTIN,C=DE")
	require.Contains(t, runMetadata(t, run.GetID()).GetCurrentDetails(), fmt.Sprintf("Scanned %d node(s)", scanned.Nodes))

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, []string{wfID}, listed(c, `NodeID = "`+node+`" AND NodeName = "Lindenau"`))
	}, 15*time.Second, 200*time.Millisecond, "NodeName is searchable by word")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		md, err := env.Client.QueryWorkflow(ctx, wfID, "", "__temporal_workflow_metadata")
		if !assert.NoError(c, err) {
			return
		}
		var m sdkpb.WorkflowMetadata
		assert.NoError(c, md.Get(&m))
		assert.Contains(c, m.GetCurrentDetails(), "Node "+node+" · Evangelisches Krankenhaus Lindenau\nStatus: ONLINE")
	}, 15*time.Second, 100*time.Millisecond)

	// The settings rename the node; an operator's rescan picks it up at
	// once: recorded as the operator's scan, and the name follows.
	_, err = env.DB.Exec(`INSERT INTO node_settings (node_id, common_name) VALUES ($1, 'Klinikum Lindenau Nord')`, node)
	require.NoError(t, err)
	require.NoError(t, env.Client.SignalWorkflow(ctx, wfID, "", workflows.NodeSignalRescan,
		map[string]string{"operator": "alice", "reason": "site says it is back"}))
	require.NoError(t, env.Client.SignalWorkflow(ctx, wfID, "", workflows.NodeSignalRescan, map[string]string{"operator": ""}))
	var rescan string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.NoError(c, env.DB.Get(&rescan, `SELECT scan_id FROM broker_scans WHERE requested_by = 'operator:alice'
			AND finished_at IS NOT NULL AND nodes = 1 AND scan_id LIKE 'rescan-%' ORDER BY started_at DESC LIMIT 1`))
		var last string
		assert.NoError(c, env.DB.Get(&last, `SELECT last_scan_id FROM broker_nodes WHERE node_id = $1`, node))
		assert.Equal(c, rescan, last, "the rescan's observation was recorded")
		assert.Equal(c, []operatorSignalRow{
			{"rescan", "operator:alice", "site says it is back", "accepted", ""},
			{"rescan", "", "", "refused", `the payload names no operator: send {"operator":"<name>","reason":"<text>"}`},
		}, operatorSignals(c, "node", node))
	}, 30*time.Second, 100*time.Millisecond)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, []string{wfID}, listed(c, `NodeID = "`+node+`" AND NodeName = "Nord"`))
	}, 15*time.Second, 200*time.Millisecond, "NodeName follows the settings")
	current := runMetadata(t, wfID).GetCurrentDetails()
	require.Contains(t, current, "Last operator signal: rescan ("+rescan+") by operator:alice")
	require.Contains(t, current, "Last refused signal: rescan from an unnamed operator")

	// Ended by cancellation (as an operator would), the run replays against
	// today's code (recorded with VIGIL_RECORD_HISTORIES=1).
	require.NoError(t, env.Client.CancelWorkflow(ctx, wfID, ""))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		d, err := env.Client.DescribeWorkflowExecution(ctx, wfID, "")
		if assert.NoError(c, err) {
			assert.NotNil(c, d.GetWorkflowExecutionInfo().GetCloseTime())
		}
	}, 10*time.Second, 50*time.Millisecond)
	env.ReplayAndRecord(t, wfID, "", "node_rescan.json")
}

func TestRuns_ActivationAndSystemCheckHoldNoPatientID(t *testing.T) {
	s := startActivationStack(t, 1000)
	nurse := s.login(t, "n01")
	pid := "p-" + uuid.NewString()[:8]
	require.Equal(t, http.StatusCreated, s.do(t, "POST", "/v1/patients/"+pid+"/activation", nurse, "", nil).StatusCode)
	wfID := activationWorkflowID(t, "patient", pid)
	summary, details := runSummary(t, wfID)
	require.Equal(t, "Activation · patient", summary)
	require.Contains(t, details, "Patient activation: completed with the activation code and a PIN")
	current := runMetadata(t, wfID).GetCurrentDetails()
	require.Contains(t, current, "Stage: pending · 0 of 10 wrong PINs")
	for what, text := range map[string]string{"summary": summary, "details": details, "current details": current,
		"search attributes": searchAttributeText(t, wfID), "workflow id": wfID} {
		require.NotContains(t, text, pid, "the patient id in the run's %s", what)
	}

	var check struct {
		CheckID    string `json:"check_id"`
		WorkflowID string `json:"workflow_id"`
	}
	resp := s.call(t, "POST", "/v1/system/check?wait=true", nurse, `{"note":"hello"}`, &check)
	require.Less(t, resp.StatusCode, 300)
	summary, details = runSummary(t, check.WorkflowID)
	require.Equal(t, workflows.SystemCheckSummary, summary)
	require.Contains(t, details, "system_checks "+check.CheckID)
	require.NotContains(t, details, "hello", "the operator's note stays out of the details")
}
