//go:build integration

package activities_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/vigil-health/vigil/activities"
	nodestore "github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/internal/node/broker"
	"github.com/vigil-health/vigil/internal/node/brokersim"
	"github.com/vigil-health/vigil/internal/operatorsignal"
)

func signalRecord(kind, subject, signal, actor, outcome string) activities.OperatorSignalRecord {
	return activities.OperatorSignalRecord{
		EventKey: kind + ":" + subject + ":" + uuid.NewString(), WorkflowID: kind + ":" + subject, Kind: kind, SubjectID: subject,
		Signal: signal, Actor: actor, Reason: "maintenance", Outcome: outcome, At: time.Now(),
	}
}

func TestRecordWatchOperatorState(t *testing.T) {
	ctx := context.Background()
	a := &activities.Watches{Store: watchStore()}
	insertWatch := func(state string) string {
		id := uuid.NewString()
		_, err := db.Exec(`INSERT INTO watches (id, kind, service_id, state) VALUES ($1, 'service', '2000001', $2)`, id, state)
		require.NoError(t, err)
		return id
	}
	id := insertWatch("active")
	rec := signalRecord("watch", id, "pause", "operator:alice", activities.OperatorSignalAccepted)
	in := &activities.WatchOperatorStateInput{WatchID: id, State: "paused", Signal: rec}
	require.NoError(t, a.RecordWatchOperatorState(ctx, in))
	require.NoError(t, a.RecordWatchOperatorState(ctx, in), "a retry records the signal once")
	var row struct {
		State  string     `db:"state"`
		By     string     `db:"state_changed_by"`
		At     *time.Time `db:"state_changed_at"`
		Reason string     `db:"state_reason"`
	}
	require.NoError(t, db.Get(&row, `SELECT state, state_changed_by, state_changed_at, state_reason FROM watches WHERE id = $1`, id))
	require.Equal(t, "paused", row.State)
	require.Equal(t, "operator:alice", row.By)
	require.Equal(t, "maintenance", row.Reason)
	require.NotNil(t, row.At)
	var n int
	require.NoError(t, db.Get(&n, `SELECT count(*) FROM operator_signals WHERE subject_id = $1 AND outcome = 'accepted' AND actor = 'operator:alice'`, id))
	require.Equal(t, 1, n)

	// A deleted watch stays deleted.
	gone := insertWatch("deleted")
	require.NoError(t, a.RecordWatchOperatorState(ctx, &activities.WatchOperatorStateInput{WatchID: gone, State: "paused",
		Signal: signalRecord("watch", gone, "pause", "operator:alice", activities.OperatorSignalAccepted)}))
	var state string
	require.NoError(t, db.Get(&state, `SELECT state FROM watches WHERE id = $1`, gone))
	require.Equal(t, "deleted", state)
}

func TestRecordOperatorSignal(t *testing.T) {
	ctx := context.Background()
	a := &activities.Operators{Store: &operatorsignal.Store{DB: db}}
	subject := newNodeID()
	rec := signalRecord("node", subject, "rescan", "", activities.OperatorSignalRefused)
	rec.Refusal = "the payload names no operator"
	require.NoError(t, a.RecordOperatorSignal(ctx, &rec))
	require.NoError(t, a.RecordOperatorSignal(ctx, &rec))
	var got struct {
		Actor   string `db:"actor"`
		Outcome string `db:"outcome"`
		Refusal string `db:"refusal"`
	}
	require.NoError(t, db.Get(&got, `SELECT actor, outcome, refusal FROM operator_signals WHERE subject_id = $1`, subject))
	require.Equal(t, "", got.Actor)
	require.Equal(t, "refused", got.Outcome)
	require.Equal(t, "the payload names no operator", got.Refusal)

	err := a.RecordOperatorSignal(ctx, &activities.OperatorSignalRecord{})
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae) && ae.NonRetryable(), "%v", err)
}

func TestRescanNode(t *testing.T) {
	ctx := context.Background()
	node := "9" + uuid.NewString()[:6]
	sim := brokersim.New(brokersim.Options{AdminKey: simKey})
	_, err := sim.AddNode(brokersim.NodeSpec{ID: node, Name: "Klinikum Am Hafen", Behaviour: brokersim.Healthy})
	require.NoError(t, err)
	url, stop, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(stop)
	bc, err := broker.NewClient(broker.Options{BaseURL: url, APIKey: simKey, Timeout: 5 * time.Second})
	require.NoError(t, err)
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	a := &activities.Nodes{Store: &nodestore.Store{DB: db}, Broker: bc}
	env.RegisterActivity(a)

	scanID := "rescan-" + uuid.NewString()
	in := &activities.RescanNodeInput{NodeID: node, ScanID: scanID,
		Signal: signalRecord("node", node, "rescan", "operator:alice", "")}
	v, err := env.ExecuteActivity(a.RescanNode, in)
	require.NoError(t, err)
	var ref nodestore.ObservationRef
	require.NoError(t, v.Get(&ref))
	require.Equal(t, scanID, ref.ScanID)
	require.Equal(t, node, ref.NodeID)
	var scan struct {
		By       string     `db:"requested_by"`
		Nodes    int        `db:"nodes"`
		Finished *time.Time `db:"finished_at"`
	}
	require.NoError(t, db.Get(&scan, `SELECT requested_by, nodes, finished_at FROM broker_scans WHERE scan_id = $1`, scanID))
	require.Equal(t, "operator:alice", scan.By)
	require.Equal(t, 1, scan.Nodes)
	require.NotNil(t, scan.Finished)
	var outcome string
	require.NoError(t, db.Get(&outcome, `SELECT outcome FROM operator_signals WHERE event_key = $1`, in.Signal.EventKey))
	require.Equal(t, activities.OperatorSignalAccepted, outcome)

	// The observation it stored is recorded like a scan's, and names the
	// node: by the CN of its client DN, then by its settings.
	ev, err := a.RecordNodeObservation(ctx, &ref)
	require.NoError(t, err)
	require.Equal(t, "ONLINE", ev.Headline)
	require.Equal(t, "Klinikum Am Hafen", ev.Name)
	_, err = db.Exec(`INSERT INTO node_settings (node_id, common_name) VALUES ($1, 'Hafenklinik')`, node)
	require.NoError(t, err)
	in2 := &activities.RescanNodeInput{NodeID: node, ScanID: "rescan-" + uuid.NewString(),
		Signal: signalRecord("node", node, "rescan", "operator:alice", "")}
	v, err = env.ExecuteActivity(a.RescanNode, in2)
	require.NoError(t, err)
	require.NoError(t, v.Get(&ref))
	ev, err = a.RecordNodeObservation(ctx, &ref)
	require.NoError(t, err)
	require.Equal(t, "Hafenklinik", ev.Name)

	// Without a broker the rescan fails at once.
	env = s.NewTestActivityEnvironment()
	noBroker := &activities.Nodes{Store: &nodestore.Store{DB: db}}
	env.RegisterActivity(noBroker)
	_, err = env.ExecuteActivity(noBroker.RescanNode, &activities.RescanNodeInput{NodeID: node, ScanID: "rescan-x"})
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "%v", err)
	require.Equal(t, activities.ErrTypeNoBroker, ae.Type())
}

func TestNodeName(t *testing.T) {
	require.Equal(t, "Klinik Nord", nodestore.Name(" Klinik Nord ", "CN=Other,O=AKTIN"))
	require.Equal(t, "Other", nodestore.Name("", "CN=Other,O=AKTIN"))
	require.Equal(t, "", nodestore.Name("", ""))
	require.Equal(t, "Node 5 · Other", nodestore.RunSummary("5", "Other"))
	require.Contains(t, nodestore.RunDetails("5", "Other", "CN=Other"), "Client DN: CN=Other")
}
