//go:build integration

package activities_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-health/vigil/activities"
	"github.com/vigil-health/vigil/internal/mail"
	"github.com/vigil-health/vigil/internal/mail/mailsink"
	nodestore "github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/internal/node/broker"
	"github.com/vigil-health/vigil/internal/node/brokersim"
	"github.com/vigil-health/vigil/internal/testenv"
	"github.com/vigil-health/vigil/workflows"
)

const (
	simKey   = "integration-admin-key"
	staticCC = "monitor@aktin.test"
)

// captureLogs sends the default logger's records, debug included, to the
// returned buffer as JSON lines until the test ends.
func captureLogs(t *testing.T) *syncBuffer {
	t.Helper()
	buf := &syncBuffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return buf
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startSink runs an SMTP server with STARTTLS and returns a sender to it.
func startSink(t *testing.T) (*mailsink.Sink, *mail.Sender) {
	t.Helper()
	sink, err := mailsink.Start(mailsink.Options{Addr: "127.0.0.1:0", TLS: "starttls"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sink.Close() })
	sender, err := mail.NewSender(mail.Config{
		Host: sink.Host(), Port: sink.Port(), TLS: mail.TLSStartTLS, From: "broker-monitor@vigil.test",
		RootCAs: sink.CertPool(), Timeout: 5 * time.Second,
	})
	require.NoError(t, err)
	return sink, sender
}

func addContact(t *testing.T, nodeID, role, email string, main, unsubscribed bool) {
	t.Helper()
	_, err := db.Exec(`INSERT INTO node_contacts (node_id, role, email, main_contact, unsubscribed) VALUES ($1, $2, $3, $4, $5)`,
		nodeID, role, email, main, unsubscribed)
	require.NoError(t, err)
}

func newNodeID() string { return "n" + uuid.NewString()[:8] }

// TestScanFleet_EndToEnd drives a scripted simulated fleet through two real
// fleet scans (FleetScan workflow, ScanFleet activity, Signal-With-Start)
// into node workflows that record to Postgres and mail a real SMTP server.
func TestScanFleet_EndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The package's TestMain gives Postgres only; this test brings its own
	// Temporal server (and database).
	env, err := testenv.Start(ctx, "activities-nodes")
	require.NoError(t, err)
	t.Cleanup(env.Close)

	now := time.Now().UTC()
	sim := brokersim.New(brokersim.Options{AdminKey: simKey})
	for _, spec := range []brokersim.NodeSpec{
		{ID: "101", Behaviour: brokersim.Healthy},
		{ID: "102", Behaviour: brokersim.Offline, At: now.Add(-100 * time.Hour)},
		{ID: "103", Behaviour: brokersim.VersionDrift},
		// Import errors in every observation, no contacts.
		{ID: "105", Behaviour: brokersim.ErrorStorm, At: now.Add(-48 * time.Hour), ImportsPerHour: 8},
	} {
		_, err := sim.AddNode(spec)
		require.NoError(t, err)
	}
	url, stop, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(stop)
	bc, err := broker.NewClient(broker.Options{BaseURL: url, APIKey: simKey, Timeout: 5 * time.Second})
	require.NoError(t, err)
	sink, sender := startSink(t)
	for _, c := range []struct {
		node, role, email string
		main              bool
	}{
		{"102", "ED", "notaufnahme@klinik102.test", true},
		{"102", "IT", "it@klinik102.test", false},
		{"103", "IT", "it@klinik103.test", false},
	} {
		_, err := env.DB.Exec(`INSERT INTO node_contacts (node_id, role, email, main_contact) VALUES ($1, $2, $3, $4)`, c.node, c.role, c.email, c.main)
		require.NoError(t, err)
	}

	const taskQueue = "activities-nodes"
	nodes := &activities.Nodes{
		Store: &nodestore.Store{DB: env.DB}, Broker: bc, Temporal: env.Client, TaskQueue: taskQueue,
		CurrentDWHVersion: brokersim.CurrentDWHVersion, CurrentI2B2Version: "1.5.3",
		Concurrency: 4, Mailer: sender, MailCC: []string{staticCC},
	}
	w := sdkworker.New(env.Client, taskQueue, sdkworker.Options{})
	w.RegisterWorkflow(workflows.NodeMonitor)
	w.RegisterWorkflow(workflows.FleetScan)
	w.RegisterActivity(nodes)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	scan := func() (client.WorkflowRun, nodestore.ScanResult) {
		t.Helper()
		run, err := env.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: "fleet-scan-" + uuid.NewString(), TaskQueue: taskQueue,
		}, workflows.FleetScan, &workflows.FleetScanInput{})
		require.NoError(t, err)
		var res nodestore.ScanResult
		require.NoError(t, run.Get(ctx, &res))
		return run, res
	}
	// waitScanned waits until every node's workflow has recorded scanID.
	waitScanned := func(scanID string, ids ...string) {
		t.Helper()
		require.Eventually(t, func() bool {
			var n int
			require.NoError(t, env.DB.Get(&n, `SELECT count(*) FROM broker_nodes WHERE last_scan_id = $1 AND node_id = ANY($2)`, scanID, pq.StringArray(ids)))
			return n == len(ids)
		}, 30*time.Second, 50*time.Millisecond)
	}

	firstRun, first := scan()
	require.Equal(t, 4, first.Nodes)
	require.Equal(t, 0, first.Failed)
	waitScanned(first.ScanID, "101", "102", "103", "105")

	// The scan's row.
	var scanRow struct {
		Nodes    int        `db:"nodes"`
		Failed   int        `db:"failed"`
		Finished *time.Time `db:"finished_at"`
	}
	require.NoError(t, env.DB.Get(&scanRow, `SELECT nodes, failed, finished_at FROM broker_scans WHERE scan_id = $1`, first.ScanID))
	require.Equal(t, 4, scanRow.Nodes)
	require.NotNil(t, scanRow.Finished)

	status := func(id string) (string, []string) {
		var row struct {
			Headline   string         `db:"headline"`
			Conditions pq.StringArray `db:"conditions"`
		}
		require.NoError(t, env.DB.Get(&row, `SELECT headline, conditions FROM broker_nodes WHERE node_id = $1`, id))
		return row.Headline, row.Conditions
	}
	h, conds := status("101")
	require.Equal(t, "ONLINE", h)
	require.Equal(t, []string{"ONLINE"}, conds)
	h, conds = status("102")
	require.Equal(t, "OFFLINE", h)
	require.Equal(t, []string{"OFFLINE", "NO IMPORTS"}, conds)
	h, conds = status("103")
	require.Equal(t, "ONLINE", h)
	require.Equal(t, []string{"ONLINE", "DWH OUTDATED"}, conds)

	// Three alerts: 102 offline and without imports, 103 outdated.
	msgs, err := sink.Wait(ctx, 3)
	require.NoError(t, err)
	require.Len(t, msgs, 3)
	subjects := map[string]mailsink.Received{}
	for _, m := range msgs {
		subjects[m.Subject] = m
		require.Equal(t, []string{staticCC}, m.CC, "static addresses go in Cc")
	}
	off := subjects["Automatische Information: AKTIN DWH Offline"]
	require.Equal(t, []string{"notaufnahme@klinik102.test", "it@klinik102.test"}, off.To)
	require.ElementsMatch(t, []string{"notaufnahme@klinik102.test", "it@klinik102.test", staticCC}, off.Rcpt)
	require.Equal(t, activities.NodeMailMessageID(workflows.NodeMailKey("102", "OFFLINE", 1, 0)), off.MessageID)
	require.Contains(t, subjects, "Automatische Information: AKTIN DWH Keine Imports")
	outdated := subjects["Automatische Information: AKTIN DWH Version veraltet"]
	require.Equal(t, []string{"it@klinik103.test"}, outdated.To)

	// Each scan stores one observation per node; the workflows get
	// references.
	var stored int
	require.NoError(t, env.DB.Get(&stored, `SELECT count(*) FROM node_observations WHERE scan_id = $1`, first.ScanID))
	require.Equal(t, 4, stored)
	// An observation past the retention is deleted by the next scan.
	_, err = env.DB.Exec(`INSERT INTO node_observations (scan_id, node_id, observed_at, payload) VALUES ('scan-old', '101', $1, '{}')`,
		now.Add(-activities.NodeObservationRetention-time.Hour))
	require.NoError(t, err)

	// A node that appears between two scans gets its workflow from the
	// second scan; nothing is mailed again.
	_, err = sim.AddNode(brokersim.NodeSpec{ID: "104", Behaviour: brokersim.Healthy})
	require.NoError(t, err)
	_, second := scan()
	require.Equal(t, 5, second.Nodes)
	require.NotEqual(t, first.ScanID, second.ScanID, "scans started within a second are told apart")
	waitScanned(second.ScanID, "101", "102", "103", "104", "105")
	require.NoError(t, env.DB.Get(&stored, `SELECT count(*) FROM node_observations WHERE scan_id = 'scan-old'`))
	require.Zero(t, stored, "observations past the retention are deleted")
	desc, err := env.Client.DescribeWorkflowExecution(ctx, workflows.NodeWorkflowID("104"), "")
	require.NoError(t, err)
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.WorkflowExecutionInfo.Status)
	attrs := desc.WorkflowExecutionInfo.SearchAttributes.GetIndexedFields()
	var kind, nodeID string
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(attrs["VigilKind"], &kind))
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(attrs["NodeID"], &nodeID))
	require.Equal(t, workflows.KindNode, kind)
	require.Equal(t, "104", nodeID)
	require.Eventually(t, func() bool {
		d, err := env.Client.DescribeWorkflowExecution(ctx, workflows.NodeWorkflowID("102"), "")
		if err != nil {
			return false
		}
		var s string
		p := d.WorkflowExecutionInfo.SearchAttributes.GetIndexedFields()["NodeStatus"]
		return p != nil && converter.GetDefaultDataConverter().FromPayload(p, &s) == nil && s == "OFFLINE"
	}, 10*time.Second, 50*time.Millisecond, "the headline is a search attribute")

	var histories, sent int
	require.NoError(t, env.DB.Get(&histories, `SELECT count(*) FROM node_status_history WHERE node_id IN ('101', '102', '103')`))
	require.Equal(t, 3, histories, "the second scan changed no status")
	require.NoError(t, env.DB.Get(&sent, `SELECT count(*) FROM node_mail_log WHERE status = 'sent'`))
	require.Equal(t, 3, sent)
	require.Len(t, sink.Messages(), 3)

	// The status query (the workflow may still be taking in the second
	// recording).
	st := waitObservations(ctx, t, env.Client, "102", 2)
	require.True(t, st.Mails[0].Told)

	// What two observations cost in a node's history: the scan signals a
	// reference, never the observation (import errors included).
	var stormErrors []string
	require.NoError(t, env.DB.Select(&stormErrors, `SELECT content FROM node_import_errors WHERE node_id = '105'`))
	require.NotEmpty(t, stormErrors)
	for _, id := range []string{"102", "105"} {
		waitObservations(ctx, t, env.Client, id, 2)
		events, size := historySize(ctx, t, env.Client, workflows.NodeWorkflowID(id))
		t.Logf("history of %s after two observations: %d events, %d bytes", workflows.NodeWorkflowID(id), events, size)
		it := env.Client.GetWorkflowHistory(ctx, workflows.NodeWorkflowID(id), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			raw, err := proto.Marshal(ev)
			require.NoError(t, err)
			for _, e := range stormErrors {
				require.NotContains(t, string(raw), e, "import error text in the history of node %s", id)
			}
			if sig := ev.GetWorkflowExecutionSignaledEventAttributes(); sig != nil {
				require.Less(t, proto.Size(sig.GetInput()), 512, "a signal carries a reference only")
			}
		}
	}

	// Record the histories for the replay test: a node monitor (ended by
	// cancellation, as an operator would) and a fleet scan.
	require.NoError(t, env.Client.CancelWorkflow(ctx, workflows.NodeWorkflowID("102"), ""))
	require.Eventually(t, func() bool {
		d, err := env.Client.DescribeWorkflowExecution(ctx, workflows.NodeWorkflowID("102"), "")
		return err == nil && d.WorkflowExecutionInfo.Status == enums.WORKFLOW_EXECUTION_STATUS_CANCELED
	}, 10*time.Second, 50*time.Millisecond)
	env.ReplayAndRecord(t, workflows.NodeWorkflowID("102"), "", "node_monitor.json")
	env.ReplayAndRecord(t, firstRun.GetID(), firstRun.GetRunID(), "fleet_scan.json")
}

// waitObservations waits until the node's monitor has taken in n
// observations and returns its state.
func waitObservations(ctx context.Context, t *testing.T, c client.Client, nodeID string, n int) workflows.NodeMonitorState {
	t.Helper()
	var st workflows.NodeMonitorState
	require.Eventually(t, func() bool {
		v, err := c.QueryWorkflow(ctx, workflows.NodeWorkflowID(nodeID), "", workflows.NodeQueryStatus)
		if err != nil {
			return false
		}
		st = workflows.NodeMonitorState{}
		return v.Get(&st) == nil && st.Observations == n
	}, 10*time.Second, 50*time.Millisecond, "node %s: %d observations", nodeID, n)
	return st
}

// historySize counts the events of a workflow's latest run and their
// encoded size.
func historySize(ctx context.Context, t *testing.T, c client.Client, workflowID string) (events, size int) {
	t.Helper()
	it := c.GetWorkflowHistory(ctx, workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		events++
		size += proto.Size(ev)
	}
	return events, size
}

func TestScanFleet_RefusedKeyIsNotRetried(t *testing.T) {
	sim := brokersim.New(brokersim.Options{AdminKey: simKey})
	url, stop, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(stop)
	bc, err := broker.NewClient(broker.Options{BaseURL: url, APIKey: "wrong-key"})
	require.NoError(t, err)
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	a := &activities.Nodes{Store: &nodestore.Store{DB: db}, Broker: bc}
	env.RegisterActivity(a)
	scanID := "scan-refused-" + uuid.NewString()
	_, err = env.ExecuteActivity(a.ScanFleet, &activities.ScanFleetInput{ScanID: scanID})
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "%v", err)
	require.Equal(t, activities.ErrTypeBrokerAuth, ae.Type())
	require.True(t, ae.NonRetryable())
	var msg string
	require.NoError(t, db.Get(&msg, `SELECT error FROM broker_scans WHERE scan_id = $1`, scanID))
	require.Contains(t, msg, "refused the admin key")

	env = s.NewTestActivityEnvironment()
	noBroker := &activities.Nodes{Store: &nodestore.Store{DB: db}}
	env.RegisterActivity(noBroker)
	_, err = env.ExecuteActivity(noBroker.ScanFleet, &activities.ScanFleetInput{ScanID: "scan-x"})
	require.ErrorContains(t, err, "no broker")
}

// dailyRow reads one daily row's counters and deltas.
type dailyRow struct {
	Imported       *int64     `db:"imported"`
	DailyImported  *int64     `db:"daily_imported"`
	DailyInvalid   *int64     `db:"daily_invalid"`
	ErrorRate      *float64   `db:"error_rate"`
	DailyErrorRate *float64   `db:"daily_error_rate"`
	LastContact    *time.Time `db:"last_contact"`
}

func readDaily(t *testing.T, node string, day time.Time) dailyRow {
	t.Helper()
	var r dailyRow
	require.NoError(t, db.Get(&r, `SELECT imported, daily_imported, daily_invalid, error_rate, daily_error_rate, last_contact
		FROM node_daily_stats WHERE node_id = $1 AND day = $2::date`, node, day.Format(time.DateOnly)))
	return r
}

func i64(v int64) *int64 { return &v }

// record stores obs as a fleet scan does and records it by its reference.
func record(ctx context.Context, t *testing.T, a *activities.Nodes, obs *nodestore.Observation) (*nodestore.Evaluation, error) {
	t.Helper()
	ref, err := activities.SaveNodeObservation(ctx, &nodestore.Store{DB: db}, obs)
	require.NoError(t, err)
	return a.RecordNodeObservation(ctx, ref)
}

func TestRecordNodeObservation_DailyRowsAndStatus(t *testing.T) {
	ctx := context.Background()
	a := &activities.Nodes{Store: &nodestore.Store{DB: db}}
	node := newNodeID()
	day1 := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC) // across the year change
	start1 := day1.Add(-30 * 24 * time.Hour)
	start2 := day1.Add(50 * time.Hour)
	observe := func(scan string, at time.Time, start time.Time, imported, invalid int64) *nodestore.Evaluation {
		t.Helper()
		contact := at.Add(-time.Minute)
		write := at.Add(-time.Hour)
		ev, err := record(ctx, t, a, &nodestore.Observation{
			ScanID: scan, ObservedAt: at, Node: broker.Node{ID: node, ClientDN: "CN=Klinikum", LastContact: &contact},
			Stats: &broker.ImportStats{Start: &start, LastWrite: &write, Imported: imported, Invalid: invalid},
		})
		require.NoError(t, err)
		return ev
	}
	historyRows := func() int {
		var n int
		require.NoError(t, db.Get(&n, `SELECT count(*) FROM node_status_history WHERE node_id = $1`, node))
		return n
	}

	ev := observe("s1", day1.Add(10*time.Hour), start1, 100, 0)
	require.Equal(t, "ONLINE", ev.Headline)
	require.True(t, ev.Changed)
	require.Equal(t, 1, ev.IntervalWeeks)
	require.Equal(t, 72, ev.Facts.ThresholdHours)
	r := readDaily(t, node, day1)
	require.Equal(t, i64(100), r.Imported)
	require.Nil(t, r.DailyImported, "no row yesterday: no delta")

	// The same day again replaces the row.
	ev = observe("s2", day1.Add(16*time.Hour), start1, 110, 0)
	require.False(t, ev.Changed)
	r = readDaily(t, node, day1)
	require.Equal(t, i64(110), r.Imported)
	var rows int
	require.NoError(t, db.Get(&rows, `SELECT count(*) FROM node_daily_stats WHERE node_id = $1`, node))
	require.Equal(t, 1, rows)

	// The next day (the next year): deltas against yesterday's last row.
	day2 := day1.AddDate(0, 0, 1)
	ev = observe("s3", day2.Add(10*time.Hour), start1, 150, 10)
	r = readDaily(t, node, day2)
	require.Equal(t, i64(40), r.DailyImported)
	require.Equal(t, i64(10), r.DailyInvalid)
	require.NotNil(t, r.DailyErrorRate)
	require.InDelta(t, 20.0, *r.DailyErrorRate, 0.001)
	require.InDelta(t, 6.25, *r.ErrorRate, 0.001)
	require.Equal(t, "EXTREME ERROR RATE", ev.Headline)
	require.Equal(t, []string{"EXTREME ERROR RATE"}, ev.Conditions)
	require.InDelta(t, 20.0, *ev.Facts.DailyErrorRate, 0.001)
	require.Equal(t, 2, historyRows())

	// A retry of the same observation changes nothing.
	ev = observe("s3", day2.Add(10*time.Hour), start1, 150, 10)
	require.False(t, ev.Changed)
	require.Equal(t, 2, historyRows())

	// The DWH restarted: no deltas, so no error rate today. Three days
	// without three import days in a row: TESTING.
	day3 := day2.AddDate(0, 0, 1)
	ev = observe("s4", day3.Add(10*time.Hour), start2, 5, 0)
	r = readDaily(t, node, day3)
	require.Equal(t, i64(5), r.Imported)
	require.Nil(t, r.DailyImported)
	require.Nil(t, r.DailyErrorRate)
	require.Equal(t, "TESTING", ev.Headline)
	require.Equal(t, []string{"TESTING"}, ev.Conditions)
	require.Equal(t, 3, historyRows())
	var prev struct {
		Headline string         `db:"previous_headline"`
		Conds    pq.StringArray `db:"previous_conditions"`
	}
	require.NoError(t, db.Get(&prev, `SELECT previous_headline, previous_conditions FROM node_status_history
		WHERE node_id = $1 ORDER BY changed_at DESC LIMIT 1`, node))
	require.Equal(t, "EXTREME ERROR RATE", prev.Headline)

	// Statistics that could not be fetched keep the known counters; the
	// contact is still recorded.
	contact := day3.Add(12 * time.Hour)
	_, err := record(ctx, t, a, &nodestore.Observation{
		ScanID: "s5", ObservedAt: day3.Add(12 * time.Hour), StatsUnknown: true, FetchError: "stats: 503",
		Node: broker.Node{ID: node, LastContact: &contact},
	})
	require.NoError(t, err)
	r = readDaily(t, node, day3)
	require.Equal(t, i64(5), r.Imported)
	require.True(t, contact.Equal(*r.LastContact))

	// Settings apply: a 1-hour threshold makes the node offline.
	_, err = db.Exec(`INSERT INTO node_settings (node_id, common_name, threshold_hours_failure, notification_interval_weeks)
		VALUES ($1, 'Klinikum', 1, 3)`, node)
	require.NoError(t, err)
	ev, err = record(ctx, t, a, &nodestore.Observation{
		ScanID: "s6", ObservedAt: day3.Add(15 * time.Hour), StatsUnknown: true, Node: broker.Node{ID: node, LastContact: &contact},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"TESTING", "OFFLINE", "NO IMPORTS"}, ev.Conditions, "every condition, not only the first")
	require.Equal(t, 3, ev.IntervalWeeks)
	require.Equal(t, 1, ev.Facts.ThresholdHours)
	require.True(t, contact.Equal(*ev.Facts.LastContact))
}

func TestRecordNodeObservation_ErrorsAndResources(t *testing.T) {
	ctx := context.Background()
	a := &activities.Nodes{Store: &nodestore.Store{DB: db}, CurrentDWHVersion: "1.6"}
	node := newNodeID()
	at := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	t1, t2, t3 := at.Add(-3*time.Hour), at.Add(-2*time.Hour), at.Add(-time.Hour)
	props := func(kv ...string) []broker.Property {
		var out []broker.Property
		for i := 0; i < len(kv); i += 2 {
			out = append(out, broker.Property{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	observe := func(scan string, at time.Time, errs []broker.ImportError, res []nodestore.Resource) *nodestore.Evaluation {
		t.Helper()
		contact := at
		ev, err := record(ctx, t, a, &nodestore.Observation{
			ScanID: scan, ObservedAt: at, Node: broker.Node{ID: node, LastContact: &contact},
			Stats: &broker.ImportStats{Imported: 10, Errors: errs}, Resources: res,
		})
		require.NoError(t, err)
		return ev
	}
	ev := observe("r1", at, []broker.ImportError{
		{Timestamp: t1, Repeats: 1, Content: "CDA invalid: missing encounter"},
		{Timestamp: t2, Repeats: 2, Content: "Patient id rejected\x00"},
		{Timestamp: t1.Add(-time.Hour), Repeats: 1, Content: "CDA invalid: missing encounter"}, // older duplicate
	}, []nodestore.Resource{
		{Name: "versions", Entries: props("dwh-j2ee", "dwh-j2ee-1.5", "java", "11")},
		{Name: "rscript", Missing: true},
	})
	require.Equal(t, []string{"ONLINE", "DWH OUTDATED"}, ev.Conditions)
	require.Equal(t, "1.5", ev.Facts.DWHVersion)
	require.Equal(t, "1.6", ev.Facts.CurrentDWHVersion)

	type importError struct {
		Content string    `db:"content"`
		Repeats int64     `db:"repeats"`
		At      time.Time `db:"error_at"`
		Updated time.Time `db:"updated_at"`
	}
	readErrors := func() []importError {
		var out []importError
		require.NoError(t, db.Select(&out, `SELECT content, repeats, error_at, updated_at FROM node_import_errors WHERE node_id = $1 ORDER BY content`, node))
		return out
	}
	errs := readErrors()
	require.Len(t, errs, 2)
	require.Equal(t, "CDA invalid: missing encounter", errs[0].Content)
	require.True(t, t1.Equal(errs[0].At), "the newest of duplicates is kept")
	require.Equal(t, "Patient id rejected", errs[1].Content, "NUL bytes are dropped")
	require.Equal(t, int64(2), errs[1].Repeats)

	// The next scan: the first error repeats, the second is unchanged; the
	// versions change.
	ev = observe("r2", at.Add(time.Hour), []broker.ImportError{
		{Timestamp: t3, Repeats: 3, Content: "CDA invalid: missing encounter"},
		{Timestamp: t2, Repeats: 2, Content: "Patient id rejected"},
	}, []nodestore.Resource{
		{Name: "versions", Entries: props("os", "debian 12", "dwh-j2ee", "dwh-j2ee-1.6")},
	})
	require.Equal(t, []string{"ONLINE"}, ev.Conditions, "no longer outdated")
	after := readErrors()
	require.Len(t, after, 2)
	require.Equal(t, int64(3), after[0].Repeats)
	require.True(t, t3.Equal(after[0].At))
	require.True(t, errs[1].Updated.Equal(after[1].Updated), "an unchanged error is not rewritten")

	// A retry of the same scan logs nothing more.
	observe("r2", at.Add(time.Hour), nil, []nodestore.Resource{
		{Name: "versions", Entries: props("os", "debian 12", "dwh-j2ee", "dwh-j2ee-1.6")},
	})

	type change struct {
		Scan     string  `db:"scan_id"`
		Resource string  `db:"resource"`
		Key      string  `db:"key"`
		Old      *string `db:"old_value"`
		New      *string `db:"new_value"`
	}
	var changes []change
	require.NoError(t, db.Select(&changes, `SELECT scan_id, resource, key, old_value, new_value FROM node_resource_changes
		WHERE node_id = $1 ORDER BY id`, node))
	str := func(s string) *string { return &s }
	require.Equal(t, []change{
		{"r1", "versions", "dwh-j2ee", nil, str("dwh-j2ee-1.5")},
		{"r1", "versions", "java", nil, str("11")},
		{"r2", "versions", "dwh-j2ee", str("dwh-j2ee-1.5"), str("dwh-j2ee-1.6")},
		{"r2", "versions", "java", str("11"), nil},
		{"r2", "versions", "os", nil, str("debian 12")},
	}, changes)
	var current []broker.Property
	require.NoError(t, db.Select(&current, `SELECT key, value FROM node_resources WHERE node_id = $1 AND resource = 'versions' ORDER BY key`, node))
	require.Equal(t, props("dwh-j2ee", "dwh-j2ee-1.6", "os", "debian 12"), current)
	var version string
	require.NoError(t, db.Get(&version, `SELECT dwh_version FROM broker_nodes WHERE node_id = $1`, node))
	require.Equal(t, "1.6", version)
}

func TestSaveNodeObservation(t *testing.T) {
	ctx := context.Background()
	a := &activities.Nodes{Store: &nodestore.Store{DB: db}}
	node := newNodeID()
	at := time.Date(2026, 4, 2, 9, 0, 0, 0, time.UTC)
	contact := at.Add(-time.Minute)
	obs := func(scan string, imported int64, errText string) *nodestore.Observation {
		return &nodestore.Observation{
			ScanID: scan, ObservedAt: at, Node: broker.Node{ID: node, LastContact: &contact},
			Stats: &broker.ImportStats{Imported: imported, Invalid: 1, Errors: []broker.ImportError{{Timestamp: at, Repeats: 1, Content: errText}}},
		}
	}
	errorContents := func() []string {
		var out []string
		require.NoError(t, db.Select(&out, `SELECT content FROM node_import_errors WHERE node_id = $1 ORDER BY content`, node))
		return out
	}
	// A retried scan replaces its row: one per scan and node.
	ref, err := activities.SaveNodeObservation(ctx, &nodestore.Store{DB: db}, obs("o1", 10, "first attempt"))
	require.NoError(t, err)
	require.Equal(t, nodestore.ObservationRef{ScanID: "o1", NodeID: node, ObservedAt: at}, *ref)
	ref, err = activities.SaveNodeObservation(ctx, &nodestore.Store{DB: db}, obs("o1", 20, "Patient\x00 record\x00 rejected"))
	require.NoError(t, err)
	var rows int
	require.NoError(t, db.Get(&rows, `SELECT count(*) FROM node_observations WHERE node_id = $1`, node))
	require.Equal(t, 1, rows)

	// Recording reads the latest payload by the reference.
	ev, err := a.RecordNodeObservation(ctx, ref)
	require.NoError(t, err)
	require.NotEmpty(t, ev.Headline)
	require.Equal(t, i64(20), readDaily(t, node, at).Imported)
	require.Equal(t, []string{"Patient record rejected"}, errorContents(), "NUL characters are dropped")

	// Text that merely looks like an escaped NUL is kept.
	ref, err = activities.SaveNodeObservation(ctx, &nodestore.Store{DB: db}, obs("o2", 30, `path C:\u0000\x`))
	require.NoError(t, err)
	_, err = a.RecordNodeObservation(ctx, ref)
	require.NoError(t, err)
	require.Equal(t, []string{"Patient record rejected", `path C:\u0000\x`}, errorContents())

	tests := []struct {
		name string
		err  func() error
		want string
	}{
		{"unknown reference", func() error {
			_, err := a.RecordNodeObservation(ctx, &nodestore.ObservationRef{ScanID: "o9", NodeID: node, ObservedAt: at})
			return err
		}, "not found"},
		{"reference without scan", func() error {
			_, err := a.RecordNodeObservation(ctx, &nodestore.ObservationRef{NodeID: node})
			return err
		}, "required"},
		{"observation without time", func() error {
			_, err := activities.SaveNodeObservation(ctx, &nodestore.Store{DB: db}, &nodestore.Observation{ScanID: "o3", Node: broker.Node{ID: node}})
			return err
		}, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			var ae *temporal.ApplicationError
			require.True(t, errors.As(err, &ae), "%v", err)
			require.True(t, ae.NonRetryable())
			require.Equal(t, activities.ErrTypeInvalidInput, ae.Type())
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestSendNodeMail(t *testing.T) {
	ctx := context.Background()
	sink, sender := startSink(t)
	a := &activities.Nodes{Store: &nodestore.Store{DB: db}, Mailer: sender, MailCC: []string{staticCC, "MONITOR@aktin.test"}, CurrentI2B2Version: "1.5.3"}
	contact := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	request := func(node, key string) *nodestore.MailRequest {
		return &nodestore.MailRequest{
			Key: key, NodeID: node, Condition: "OFFLINE", Kind: nodestore.MailAlert, Since: contact.Add(73 * time.Hour),
			Facts: nodestore.MailFacts{LastContact: &contact, ThresholdHours: 72},
		}
	}
	logRow := func(key string) (status string, recipients, cc []string) {
		var row struct {
			Status     string         `db:"status"`
			Recipients pq.StringArray `db:"recipients"`
			CC         pq.StringArray `db:"cc"`
		}
		require.NoError(t, db.Get(&row, `SELECT status, recipients, cc FROM node_mail_log WHERE key = $1`, key))
		return row.Status, row.Recipients, row.CC
	}

	t.Run("recipients, Cc and idempotence", func(t *testing.T) {
		sink.Reset()
		node := newNodeID()
		addContact(t, node, "ED", "chef@ed.test", true, false)
		addContact(t, node, "ED", "pflege@ed.test", false, false) // not a main contact
		addContact(t, node, "ED", "weg@ed.test", true, true)      // unsubscribed
		addContact(t, node, "IT", "admin@it.test", false, false)
		addContact(t, node, "IT", "CHEF@ed.test", false, false) // the same person, also IT
		addContact(t, node, "IT", "alt@it.test", false, true)   // unsubscribed
		key := workflows.NodeMailKey(node, "OFFLINE", 1, 0)
		res, err := a.SendNodeMail(ctx, request(node, key))
		require.NoError(t, err)
		require.Equal(t, nodestore.MailSent, res.Status)
		require.Equal(t, 2, res.Recipients)
		msgs, err := sink.Wait(ctx, 1)
		require.NoError(t, err)
		m := msgs[0]
		require.Equal(t, []string{"chef@ed.test", "admin@it.test"}, m.To)
		require.Equal(t, []string{staticCC}, m.CC)
		require.ElementsMatch(t, []string{"chef@ed.test", "admin@it.test", staticCC}, m.Rcpt)
		require.Equal(t, "Automatische Information: AKTIN DWH Offline", m.Subject)
		require.Equal(t, activities.NodeMailMessageID(key), m.MessageID)
		require.Contains(t, m.Text, "Node "+node)
		require.True(t, m.TLS)
		status, rcpt, cc := logRow(key)
		require.Equal(t, "sent", status)
		require.Equal(t, []string{"chef@ed.test", "admin@it.test"}, rcpt)
		require.Equal(t, []string{staticCC}, cc)

		// A retried activity sends nothing.
		res, err = a.SendNodeMail(ctx, request(node, key))
		require.NoError(t, err)
		require.Equal(t, nodestore.MailSent, res.Status)
		time.Sleep(100 * time.Millisecond)
		require.Len(t, sink.Messages(), 1)
	})

	t.Run("no recipients: no mail, logged once, sent when a contact is added", func(t *testing.T) {
		sink.Reset()
		node := newNodeID()
		addContact(t, node, "ED", "nurse@ed.test", false, false) // not a main contact
		key := workflows.NodeMailKey(node, "OFFLINE", 1, 0)
		logs := captureLogs(t)
		for range 3 {
			res, err := a.SendNodeMail(ctx, request(node, key))
			require.NoError(t, err)
			require.Equal(t, nodestore.MailNoRecipients, res.Status)
		}
		var levels []string
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var rec struct {
				Level, Msg, Key string
			}
			require.NoError(t, json.Unmarshal([]byte(line), &rec))
			if rec.Key == key && strings.Contains(rec.Msg, "no recipients") {
				levels = append(levels, rec.Level)
			}
		}
		require.Equal(t, []string{"WARN", "DEBUG", "DEBUG"}, levels, "warned once per mail")
		status, _, _ := logRow(key)
		require.Equal(t, "no_recipients", status)
		require.Empty(t, sink.Messages())

		_, err := db.Exec(`INSERT INTO node_settings (node_id, common_name, mail_language) VALUES ($1, 'Klinikum Test', 'en')`, node)
		require.NoError(t, err)
		addContact(t, node, "IT", "it@site.test", false, false)
		res, err := a.SendNodeMail(ctx, request(node, key))
		require.NoError(t, err)
		require.Equal(t, nodestore.MailSent, res.Status)
		msgs, err := sink.Wait(ctx, 1)
		require.NoError(t, err)
		require.Equal(t, "Automatic notice: AKTIN DWH offline", msgs[0].Subject, "in the node's language")
		require.Contains(t, msgs[0].Text, "Klinikum Test")
		var rows int
		require.NoError(t, db.Get(&rows, `SELECT count(*) FROM node_mail_log WHERE node_id = $1`, node))
		require.Equal(t, 1, rows)
	})

	t.Run("no SMTP configured fails permanently", func(t *testing.T) {
		node := newNodeID()
		addContact(t, node, "IT", "it@site.test", false, false)
		key := workflows.NodeMailKey(node, "DWH OUTDATED", 1, 0)
		_, err := (&activities.Nodes{Store: &nodestore.Store{DB: db}}).SendNodeMail(ctx, request(node, key))
		var ae *temporal.ApplicationError
		require.True(t, errors.As(err, &ae))
		require.Equal(t, activities.ErrTypeMailPermanent, ae.Type())
		require.True(t, ae.NonRetryable())
		status, _, _ := logRow(key)
		require.Equal(t, "failed", status)
	})

	t.Run("a refused recipient fails permanently", func(t *testing.T) {
		node := newNodeID()
		addContact(t, node, "IT", "not an address", false, false)
		key := workflows.NodeMailKey(node, "OFFLINE", 1, 0)
		_, err := a.SendNodeMail(ctx, request(node, key))
		var ae *temporal.ApplicationError
		require.True(t, errors.As(err, &ae), "%v", err)
		require.Equal(t, activities.ErrTypeMailPermanent, ae.Type())
		status, _, _ := logRow(key)
		require.Equal(t, "failed", status)
	})

}
