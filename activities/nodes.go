package activities

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vigil-health/vigil/internal/mail"
	"github.com/vigil-health/vigil/internal/metrics"
	"github.com/vigil-health/vigil/internal/node"
	"github.com/vigil-health/vigil/internal/node/broker"
	"github.com/vigil-health/vigil/internal/node/nodehealth"
)

// BrokerSource is the part of the broker's admin API a fleet scan reads.
// *broker.Client implements it; tests put the simulator behind one.
type BrokerSource interface {
	// Nodes lists every node the broker knows.
	Nodes(ctx context.Context) ([]broker.Node, error)
	// Node returns one node (its last contact and client DN).
	Node(ctx context.Context, id string) (broker.Node, error)
	// Stats returns the node's import statistics; nil, nil when it has
	// published none.
	Stats(ctx context.Context, id string) (*broker.ImportStats, error)
	// Resource returns one properties resource of the node, sorted by key;
	// broker.ErrNotFound when the node has not published it.
	Resource(ctx context.Context, id, name string) ([]broker.Property, error)
}

var _ BrokerSource = (*broker.Client)(nil)

// Search attributes set when a scan starts a node workflow; the names match
// workflows/searchattrs.go.
var (
	vigilKindKey = temporal.NewSearchAttributeKeyKeyword("VigilKind")
	nodeIDKey    = temporal.NewSearchAttributeKeyKeyword("NodeID")
	nodeNameKey  = temporal.NewSearchAttributeKeyString("NodeName")
)

// Error types of the node activities.
const (
	// ErrTypeBrokerAuth is the broker refusing the admin key: retrying
	// cannot help until the configuration is fixed.
	ErrTypeBrokerAuth = "BrokerUnauthorized"
	// ErrTypeNoBroker is a fleet scan on a worker without a broker.
	ErrTypeNoBroker = "NoBroker"
	// ErrTypeMailPermanent is an SMTP failure retrying cannot fix (a
	// refused recipient or sender, bad credentials) or a missing mailer.
	ErrTypeMailPermanent = "MailPermanent"
)

// DefaultBrokerConcurrency is how many nodes a scan fetches at once.
const DefaultBrokerConcurrency = 16

// NodeObservationRetention is how long observations stay in
// node_observations: every fleet scan deletes older ones.
const NodeObservationRetention = 7 * 24 * time.Hour

// Nodes holds the broker node monitoring activities: the fleet scan, the
// recording and evaluation of one node's observation, and its e-mails.
type Nodes struct {
	DB *sqlx.DB
	// Broker is the broker's admin API; nil makes ScanFleet fail
	// (non-retryable) while recording and mail still work.
	Broker BrokerSource
	// Temporal starts and signals node workflows (Signal-With-Start) on
	// TaskQueue.
	Temporal  client.Client
	TaskQueue string
	// CurrentDWHVersion and CurrentI2B2Version are the current releases a
	// node's versions are compared with ("" disables DWH OUTDATED).
	CurrentDWHVersion  string
	CurrentI2B2Version string
	// Concurrency bounds the nodes fetched at once; zero means
	// DefaultBrokerConcurrency.
	Concurrency int
	// Mailer sends the node e-mails; nil records every mail as failed
	// ("no SMTP configured").
	Mailer *mail.Sender
	// MailCC are static addresses copied (CC) on every node e-mail.
	MailCC []string
	// Zone is the zone times in e-mails are shown in; nil means
	// Europe/Berlin.
	Zone *time.Location
	// Metrics, when set, counts scans, node fetches and e-mails.
	Metrics *metrics.NodeMetrics
}

// SaveNodeObservation stores obs in node_observations under its scan and
// node ids, replacing the row an earlier attempt of the same scan wrote,
// and returns its reference. NUL characters are dropped from its text
// (jsonb cannot hold them; recording drops them anyway).
func SaveNodeObservation(ctx context.Context, db sqlx.ExecerContext, obs *node.Observation) (*node.ObservationRef, error) {
	if obs == nil || obs.ScanID == "" || obs.Node.ID == "" || obs.ObservedAt.IsZero() {
		return nil, temporal.NewNonRetryableApplicationError("scan id, node id and observation time are required", ErrTypeInvalidInput, nil)
	}
	payload, err := json.Marshal(obs)
	if err != nil {
		return nil, fmt.Errorf("encode observation of node %s: %w", obs.Node.ID, err)
	}
	ref := &node.ObservationRef{ScanID: obs.ScanID, NodeID: obs.Node.ID, ObservedAt: obs.ObservedAt.UTC()}
	if _, err := db.ExecContext(ctx, `INSERT INTO node_observations (scan_id, node_id, observed_at, payload)
		VALUES ($1, $2, $3, $4::jsonb)
		ON CONFLICT (scan_id, node_id) DO UPDATE SET observed_at = EXCLUDED.observed_at, payload = EXCLUDED.payload`,
		ref.ScanID, ref.NodeID, ref.ObservedAt, string(dropJSONNul(payload))); err != nil {
		return nil, classifySQL(fmt.Errorf("store observation of node %s: %w", ref.NodeID, err))
	}
	return ref, nil
}

// dropJSONNul removes the \u0000 escapes from encoded JSON (Postgres jsonb
// refuses them). A backslash outside strings cannot occur, so every one
// starts an escape.
func dropJSONNul(b []byte) []byte {
	const nul = `\u0000`
	if !bytes.Contains(b, []byte(nul)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			out = append(out, b[i])
			continue
		}
		if bytes.HasPrefix(b[i:], []byte(nul)) {
			i += len(nul) - 1
			continue
		}
		if i+1 < len(b) {
			out = append(out, b[i], b[i+1])
			i++
		}
	}
	return out
}

// ScanFleetInput starts one fleet scan.
type ScanFleetInput struct {
	// ScanID is unique per scan and stable across the activity's retries.
	ScanID string
}

// ScanFleet lists the broker's nodes, fetches each one (node, statistics
// and every resource of broker.Resources) with bounded concurrency, stores
// its observation in node_observations and signals each node's workflow
// the observation's reference by Signal-With-Start, so a node new to the
// broker gets its workflow on its first scan. Each node is fetched, stored
// and signalled by one of Concurrency workers, independently of the others.
// A scan that succeeded deletes the observations older than
// NodeObservationRetention.
//
// A node whose node entry, statistics or a resource could not be fetched is
// still signalled, with FetchError set: its last contact (from the node
// list) keeps being evaluated, so a node the broker cannot answer for still
// turns OFFLINE in time instead of keeping its last status for ever. The
// scan's row in broker_scans counts nodes and failures. A refused admin key
// is non-retryable; anything else is retried (node workflows ignore the
// repeated observations of a retried scan).
func (a *Nodes) ScanFleet(ctx context.Context, in *ScanFleetInput) (*node.ScanResult, error) {
	if in == nil || in.ScanID == "" {
		return nil, temporal.NewNonRetryableApplicationError("scan id is required", ErrTypeInvalidInput, nil)
	}
	if a.Broker == nil {
		return nil, temporal.NewNonRetryableApplicationError("no broker is configured on this worker", ErrTypeNoBroker, nil)
	}
	if _, err := a.DB.ExecContext(ctx, `INSERT INTO broker_scans (scan_id, started_at) VALUES ($1, $2)
		ON CONFLICT (scan_id) DO NOTHING`, in.ScanID, time.Now().UTC()); err != nil {
		return nil, fmt.Errorf("record scan start: %w", err)
	}
	res, err := a.scan(ctx, in.ScanID)
	msg := ""
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		a.Metrics.Scanned("ok")
	case errors.As(err, &appErr) && appErr.Type() == ErrTypeBrokerAuth:
		a.Metrics.Scanned("unauthorized")
	default:
		a.Metrics.Scanned("error")
	}
	if err != nil {
		msg = err.Error()
	}
	// The scan's row is finished even when the scan failed, so operators
	// see the error; a retry that succeeds overwrites it.
	if _, dbErr := a.DB.ExecContext(context.WithoutCancel(ctx), `UPDATE broker_scans SET finished_at = $2, nodes = $3, failed = $4, error = $5
		WHERE scan_id = $1`, in.ScanID, time.Now().UTC(), res.Nodes, res.Failed, msg); dbErr != nil && err == nil {
		err = fmt.Errorf("record scan end: %w", dbErr)
	}
	if err != nil {
		return nil, err
	}
	a.pruneObservations(ctx)
	return &res, nil
}

// pruneObservations deletes the observations older than
// NodeObservationRetention (of every node, also those the broker no longer
// lists). A failure is only logged: the next scan tries again.
func (a *Nodes) pruneObservations(ctx context.Context) {
	res, err := a.DB.ExecContext(ctx, `DELETE FROM node_observations WHERE observed_at < $1`,
		time.Now().Add(-NodeObservationRetention).UTC())
	if err != nil {
		slog.WarnContext(ctx, "old node observations not deleted", "err", err)
		return
	}
	if n, _ := res.RowsAffected(); n > 0 {
		slog.DebugContext(ctx, "old node observations deleted", "rows", n)
	}
}

func (a *Nodes) scan(ctx context.Context, scanID string) (node.ScanResult, error) {
	res := node.ScanResult{ScanID: scanID}
	nodes, err := a.Broker.Nodes(ctx)
	if err != nil {
		return res, brokerError("list nodes", err)
	}
	slices.SortFunc(nodes, func(x, y broker.Node) int { return strings.Compare(x.ID, y.ID) })
	nodes = slices.CompactFunc(nodes, func(x, y broker.Node) bool { return x.ID == y.ID })
	names, err := a.settingsNames(ctx)
	if err != nil {
		return res, err
	}

	workers := a.Concurrency
	if workers <= 0 {
		workers = DefaultBrokerConcurrency
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type outcome struct {
		failed bool
		err    error
	}
	jobs := make(chan broker.Node)
	results := make(chan outcome)
	var wg sync.WaitGroup
	for range min(workers, max(len(nodes), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				obs, err := a.observe(ctx, scanID, n)
				var ref *node.ObservationRef
				if err == nil {
					ref, err = SaveNodeObservation(ctx, a.DB, obs)
				}
				if err == nil {
					err = a.signal(ctx, ref, node.Name(names[n.ID], obs.Node.ClientDN), obs.Node.ClientDN)
				}
				results <- outcome{failed: obs.FetchError != "", err: err}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, n := range nodes {
			select {
			case jobs <- n:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	var firstErr error
	for o := range results {
		switch {
		case o.err != nil:
			a.Metrics.NodePolled("error")
		case o.failed:
			a.Metrics.NodePolled("partial")
		default:
			a.Metrics.NodePolled("ok")
		}
		if o.err != nil {
			if firstErr == nil {
				firstErr = o.err
				cancel() // stop fetching; the retry starts over
			}
			continue
		}
		res.Nodes++
		if o.failed {
			res.Failed++
		}
		activity.RecordHeartbeat(ctx, res.Nodes)
	}
	if firstErr != nil {
		return res, firstErr
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("scan: %w", err)
	}
	return res, nil
}

// observe fetches one node. Failures to fetch are recorded on the
// observation; only a refused admin key (or the scan's cancellation) is an
// error.
func (a *Nodes) observe(ctx context.Context, scanID string, listed broker.Node) (*node.Observation, error) {
	obs := &node.Observation{ScanID: scanID, Node: listed}
	var problems []string
	fail := func(what string, err error) error {
		if errors.Is(err, broker.ErrUnauthorized) {
			return brokerError(what, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		problems = append(problems, what+": "+err.Error())
		return nil
	}
	if n, err := a.Broker.Node(ctx, listed.ID); err == nil {
		if n.LastContact == nil {
			n.LastContact = listed.LastContact
		}
		if n.ClientDN == "" {
			n.ClientDN = listed.ClientDN
		}
		n.ID = listed.ID
		obs.Node = n
	} else if err := fail("node", err); err != nil {
		return obs, err
	}
	stats, err := a.Broker.Stats(ctx, listed.ID)
	switch {
	case err == nil:
		obs.Stats = stats
	case errors.Is(err, broker.ErrNotFound):
		// No statistics published: nothing to count.
	default:
		obs.StatsUnknown = true
		if err := fail("stats", err); err != nil {
			return obs, err
		}
	}
	for _, name := range broker.Resources {
		props, err := a.Broker.Resource(ctx, listed.ID, name)
		switch {
		case err == nil:
			props = slices.Clone(props)
			slices.SortStableFunc(props, func(x, y broker.Property) int { return strings.Compare(x.Key, y.Key) })
			obs.Resources = append(obs.Resources, node.Resource{Name: name, Entries: props})
		case errors.Is(err, broker.ErrNotFound):
			obs.Resources = append(obs.Resources, node.Resource{Name: name, Missing: true})
		default:
			if err := fail(name, err); err != nil {
				return obs, err
			}
		}
	}
	obs.FetchError = strings.Join(problems, "; ")
	obs.ObservedAt = time.Now().UTC()
	if obs.FetchError != "" {
		slog.WarnContext(ctx, "broker node partly fetched", "node", listed.ID, "scan", scanID, "err", obs.FetchError)
	}
	return obs, nil
}

// settingsNames returns the common names of the nodes that have settings.
func (a *Nodes) settingsNames(ctx context.Context) (map[string]string, error) {
	var rows []struct {
		NodeID     string `db:"node_id"`
		CommonName string `db:"common_name"`
	}
	if err := a.DB.SelectContext(ctx, &rows, `SELECT node_id, common_name FROM node_settings WHERE common_name <> ''`); err != nil {
		return nil, fmt.Errorf("read node names: %w", err)
	}
	names := make(map[string]string, len(rows))
	for _, r := range rows {
		names[r.NodeID] = r.CommonName
	}
	return names, nil
}

// signal delivers the observation's reference to the node's workflow,
// starting it when it is not running: then with its name (a search
// attribute, and in the run's summary for the Web UI).
func (a *Nodes) signal(ctx context.Context, ref *node.ObservationRef, name, clientDN string) error {
	id := ref.NodeID
	attrs := []temporal.SearchAttributeUpdate{vigilKindKey.ValueSet(node.WorkflowKind), nodeIDKey.ValueSet(id)}
	if name != "" {
		attrs = append(attrs, nodeNameKey.ValueSet(name))
	}
	_, err := a.Temporal.SignalWithStartWorkflow(ctx, node.WorkflowID(id), node.SignalObservation, ref,
		client.StartWorkflowOptions{
			ID:                    node.WorkflowID(id),
			TaskQueue:             a.TaskQueue,
			TypedSearchAttributes: temporal.NewSearchAttributes(attrs...),
			StaticSummary:         node.RunSummary(id, name),
			StaticDetails:         node.RunDetails(id, name, clientDN),
		},
		node.MonitorWorkflow, &node.MonitorStart{NodeID: id})
	if err != nil {
		return fmt.Errorf("signal node %s: %w", id, err)
	}
	return nil
}

// RescanNodeInput is an operator's rescan of one node.
type RescanNodeInput struct {
	NodeID string
	// ScanID is unique per rescan and stable across the activity's
	// retries.
	ScanID string
	// Signal is the rescan signal as the workflow recorded it
	// (operator_signals); its Actor asked for the rescan.
	Signal OperatorSignalRecord
}

// RescanNode fetches one node now, as a fleet scan would, and stores its
// observation; the node's workflow then records it like a scan's. The
// rescan is a broker_scans row of its own (requested_by the operator) and
// its signal is recorded as accepted in operator_signals. A node the broker
// cannot answer for is still observed, with FetchError set.
func (a *Nodes) RescanNode(ctx context.Context, in *RescanNodeInput) (*node.ObservationRef, error) {
	if in == nil || in.NodeID == "" || in.ScanID == "" {
		return nil, temporal.NewNonRetryableApplicationError("node id and scan id are required", ErrTypeInvalidInput, nil)
	}
	if a.Broker == nil {
		return nil, temporal.NewNonRetryableApplicationError("no broker is configured on this worker", ErrTypeNoBroker, nil)
	}
	if _, err := a.DB.ExecContext(ctx, `INSERT INTO broker_scans (scan_id, started_at, requested_by) VALUES ($1, $2, $3)
		ON CONFLICT (scan_id) DO NOTHING`, in.ScanID, time.Now().UTC(), in.Signal.Actor); err != nil {
		return nil, fmt.Errorf("record rescan start: %w", err)
	}
	obs, err := a.observe(ctx, in.ScanID, broker.Node{ID: in.NodeID})
	var ref *node.ObservationRef
	if err == nil {
		ref, err = SaveNodeObservation(ctx, a.DB, obs)
	}
	nodes, failed, msg := 1, 0, ""
	switch {
	case err != nil:
		nodes, msg = 0, err.Error()
		a.Metrics.NodePolled("error")
	case obs.FetchError != "":
		failed = 1
		a.Metrics.NodePolled("partial")
	default:
		a.Metrics.NodePolled("ok")
	}
	// The rescan's row is finished even when it failed, so operators see
	// the error; a retry that succeeds overwrites it.
	if _, dbErr := a.DB.ExecContext(context.WithoutCancel(ctx), `UPDATE broker_scans SET finished_at = $2, nodes = $3,
			failed = $4, error = $5 WHERE scan_id = $1`,
		in.ScanID, time.Now().UTC(), nodes, failed, msg); dbErr != nil && err == nil {
		err = fmt.Errorf("record rescan end: %w", dbErr)
	}
	if err != nil {
		return nil, err
	}
	rec := in.Signal
	rec.Outcome = OperatorSignalAccepted
	if err := insertOperatorSignal(ctx, a.DB, &rec); err != nil {
		return nil, err
	}
	return ref, nil
}

func brokerError(what string, err error) error {
	if errors.Is(err, broker.ErrUnauthorized) {
		return temporal.NewNonRetryableApplicationError("the broker refused the admin key", ErrTypeBrokerAuth, err)
	}
	return fmt.Errorf("broker %s: %w", what, err)
}

// evaluationDays is how many days of rows an evaluation reads (TESTING
// looks for a run of consecutive import days in them).
const evaluationDays = 60

// RecordNodeObservation records one observation of a node and evaluates
// it, in one transaction. The observation is read from node_observations
// by its reference (a missing one is a non-retryable error); then:
//   - the node's row in broker_nodes (client DN, last scan, last contact);
//   - today's node_daily_stats row (UTC day), replaced by every scan of the
//     day, with deltas against yesterday's row (nodehealth.NextDailyRow);
//     when the statistics could not be fetched, the last known counters
//     are carried, so the row still shows the day's contact;
//   - the import errors, identified by the SHA-256 of their content, with
//     repeats and time updated when they changed;
//   - each fetched resource's keys, with NEW / changed / DELETED entries in
//     node_resource_changes (one per key and scan: a retry adds none);
//   - the evaluation (nodehealth.Evaluate) with the node's settings or the
//     defaults, production_since once reached, and the headline and
//     conditions, with a node_status_history row when they changed.
//
// The transaction starts by upserting the node's row, which locks it: two
// attempts for the same node never interleave.
func (a *Nodes) RecordNodeObservation(ctx context.Context, ref *node.ObservationRef) (*node.Evaluation, error) {
	if ref == nil || ref.ScanID == "" || ref.NodeID == "" {
		return nil, temporal.NewNonRetryableApplicationError("scan id and node id are required", ErrTypeInvalidInput, nil)
	}
	tx, err := a.DB.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	obs, err := loadNodeObservation(ctx, tx, ref)
	if err != nil {
		return nil, err
	}
	nodeID, scanID, at := ref.NodeID, ref.ScanID, obs.ObservedAt.UTC()

	var prior struct {
		ClientDN        string         `db:"client_dn"`
		Headline        string         `db:"headline"`
		Conditions      pq.StringArray `db:"conditions"`
		ProductionSince *time.Time     `db:"production_since"`
	}
	if err := tx.GetContext(ctx, &prior, `
		INSERT INTO broker_nodes (node_id, client_dn, last_scan_id, last_checked, last_contact)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (node_id) DO UPDATE SET
			client_dn = COALESCE(NULLIF(EXCLUDED.client_dn, ''), broker_nodes.client_dn),
			last_scan_id = EXCLUDED.last_scan_id, last_checked = EXCLUDED.last_checked,
			last_contact = COALESCE(EXCLUDED.last_contact, broker_nodes.last_contact)
		RETURNING client_dn, headline, conditions, production_since`,
		nodeID, obs.Node.ClientDN, scanID, at, obs.Node.LastContact); err != nil {
		return nil, classifySQL(fmt.Errorf("upsert node %s: %w", nodeID, err))
	}

	// Today's row and the days before it.
	today := nodehealth.DayOf(at)
	var stored []nodehealth.DailyRow
	if err := tx.SelectContext(ctx, &stored, `SELECT day, checked_at, last_contact, last_start, last_write, last_reject,
			imported, updated, invalid, failed, error_rate, daily_imported, daily_updated, daily_invalid, daily_failed, daily_error_rate
		FROM node_daily_stats WHERE node_id = $1 AND day >= $2::date AND day <= $3::date ORDER BY day`,
		nodeID, today.AddDate(0, 0, -evaluationDays), today); err != nil {
		return nil, fmt.Errorf("read daily rows: %w", err)
	}
	rows := make([]nodehealth.DailyRow, 0, len(stored)+1)
	var todays *nodehealth.DailyRow
	for _, row := range stored {
		if row.Day.Equal(today) {
			todays = &row
			continue
		}
		if row.Day.Before(today) {
			rows = append(rows, row)
		}
	}
	var prev *nodehealth.DailyRow
	if len(rows) > 0 {
		prev = &rows[len(rows)-1]
	}
	stats := obs.Stats
	if obs.StatsUnknown {
		// Keep the last known counters (today's, else the latest day's).
		known := todays
		if known == nil {
			known = prev
		}
		stats = statsOf(known)
	}
	row := nodehealth.NextDailyRow(prev, at, obs.Node.LastContact, stats)
	if err := upsertDailyRow(ctx, tx, nodeID, row); err != nil {
		return nil, err
	}
	rows = append(rows, row)

	if !obs.StatsUnknown && obs.Stats != nil {
		if err := upsertImportErrors(ctx, tx, nodeID, obs.Stats.Errors); err != nil {
			return nil, err
		}
	}
	for _, res := range obs.Resources {
		if err := recordResource(ctx, tx, nodeID, scanID, at, res); err != nil {
			return nil, err
		}
	}

	// Settings, or the defaults.
	var set struct {
		CommonName  string `db:"common_name"`
		Threshold   int    `db:"threshold_hours_failure"`
		Interval    int    `db:"notification_interval_weeks"`
		Consecutive int    `db:"consecutive_import_days"`
	}
	err = tx.GetContext(ctx, &set, `SELECT common_name, threshold_hours_failure, notification_interval_weeks, consecutive_import_days
		FROM node_settings WHERE node_id = $1`, nodeID)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read node settings: %w", err)
	}
	settings := nodehealth.Settings{
		ThresholdHoursFailure: set.Threshold, NotificationIntervalWeeks: set.Interval, ConsecutiveImportDays: set.Consecutive,
	}.WithDefaults()
	var facts struct {
		LastWrite  *time.Time `db:"last_write"`
		DWHVersion *string    `db:"dwh_version"`
	}
	if err := tx.GetContext(ctx, &facts, `SELECT
			(SELECT max(last_write) FROM node_daily_stats WHERE node_id = $1) AS last_write,
			(SELECT value FROM node_resources WHERE node_id = $1 AND resource = $2 AND key = 'dwh-j2ee') AS dwh_version`,
		nodeID, broker.ResourceVersions); err != nil {
		return nil, fmt.Errorf("read node facts: %w", err)
	}
	dwh := ""
	if facts.DWHVersion != nil {
		dwh = nodehealth.NormalizeVersion(*facts.DWHVersion)
	}
	status := nodehealth.Evaluate(nodehealth.Input{
		Now: at, Settings: settings, Rows: rows, ProductionSince: prior.ProductionSince,
		LastWriteFallback: facts.LastWrite, DWHVersion: dwh, CurrentDWHVersion: a.CurrentDWHVersion,
	})
	conditions := make([]string, len(status.Conditions))
	for i, c := range status.Conditions {
		conditions[i] = string(c)
	}
	ev := &node.Evaluation{
		Headline: string(status.Headline), Conditions: conditions, IntervalWeeks: settings.NotificationIntervalWeeks,
		Name: node.Name(set.CommonName, prior.ClientDN),
		Facts: node.MailFacts{
			LastContact: row.LastContact, LastWrite: row.LastWrite, DWHVersion: dwh,
			CurrentDWHVersion: nodehealth.NormalizeVersion(a.CurrentDWHVersion),
			DailyErrorRate:    row.DailyErrorRate, ThresholdHours: settings.ThresholdHoursFailure,
		},
	}
	if ev.Facts.LastWrite == nil {
		ev.Facts.LastWrite = facts.LastWrite
	}
	ev.Changed = ev.Headline != prior.Headline || !slices.Equal(conditions, []string(prior.Conditions))
	if _, err := tx.ExecContext(ctx, `UPDATE broker_nodes SET dwh_version = $2,
			production_since = CASE WHEN $3 THEN COALESCE(production_since, $4::date) ELSE production_since END
		WHERE node_id = $1`, nodeID, dwh, status.ProductionReached, today); err != nil {
		return nil, fmt.Errorf("update node %s: %w", nodeID, err)
	}
	if ev.Changed {
		if _, err := tx.ExecContext(ctx, `UPDATE broker_nodes SET headline = $2, conditions = $3, status_since = $4 WHERE node_id = $1`,
			nodeID, ev.Headline, pq.StringArray(conditions), at); err != nil {
			return nil, fmt.Errorf("update node status %s: %w", nodeID, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO node_status_history (node_id, changed_at, scan_id, headline, conditions,
				previous_headline, previous_conditions)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (node_id, scan_id) DO NOTHING`,
			nodeID, at, scanID, ev.Headline, pq.StringArray(conditions), prior.Headline, nonNilStrings(prior.Conditions)); err != nil {
			return nil, fmt.Errorf("record node status %s: %w", nodeID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit observation of node %s: %w", nodeID, err)
	}
	return ev, nil
}

// loadNodeObservation reads the observation ref names.
func loadNodeObservation(ctx context.Context, tx *sqlx.Tx, ref *node.ObservationRef) (*node.Observation, error) {
	var payload []byte
	err := tx.GetContext(ctx, &payload, `SELECT payload FROM node_observations WHERE scan_id = $1 AND node_id = $2`, ref.ScanID, ref.NodeID)
	if errors.Is(err, sql.ErrNoRows) {
		// Stored before the signal was sent: only the retention (or an
		// operator) removes it, and retrying cannot bring it back.
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("observation of node %s in scan %s not found", ref.NodeID, ref.ScanID), ErrTypeInvalidInput, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("read observation of node %s: %w", ref.NodeID, err)
	}
	var obs node.Observation
	if err := json.Unmarshal(payload, &obs); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("observation of node %s in scan %s: %v", ref.NodeID, ref.ScanID, err), ErrTypeInvalidData, err)
	}
	obs.ScanID, obs.Node.ID = ref.ScanID, ref.NodeID
	if obs.ObservedAt.IsZero() {
		obs.ObservedAt = ref.ObservedAt
	}
	if obs.ObservedAt.IsZero() {
		return nil, temporal.NewNonRetryableApplicationError("observation time is required", ErrTypeInvalidInput, nil)
	}
	return &obs, nil
}

// statsOf rebuilds import statistics from a stored row (nil when it has no
// counters).
func statsOf(r *nodehealth.DailyRow) *broker.ImportStats {
	if r == nil || r.Imported == nil || r.Updated == nil || r.Invalid == nil || r.Failed == nil {
		return nil
	}
	return &broker.ImportStats{
		Start: r.LastStart, LastWrite: r.LastWrite, LastReject: r.LastReject,
		Imported: *r.Imported, Updated: *r.Updated, Invalid: *r.Invalid, Failed: *r.Failed,
	}
}

func upsertDailyRow(ctx context.Context, tx *sqlx.Tx, nodeID string, r nodehealth.DailyRow) error {
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO node_daily_stats (node_id, day, checked_at, last_contact, last_start, last_write, last_reject,
			imported, updated, invalid, failed, error_rate, daily_imported, daily_updated, daily_invalid, daily_failed, daily_error_rate)
		VALUES ($1, $2::date, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
		ON CONFLICT (node_id, day) DO UPDATE SET checked_at = EXCLUDED.checked_at, last_contact = EXCLUDED.last_contact,
			last_start = EXCLUDED.last_start, last_write = EXCLUDED.last_write, last_reject = EXCLUDED.last_reject,
			imported = EXCLUDED.imported, updated = EXCLUDED.updated, invalid = EXCLUDED.invalid, failed = EXCLUDED.failed,
			error_rate = EXCLUDED.error_rate, daily_imported = EXCLUDED.daily_imported, daily_updated = EXCLUDED.daily_updated,
			daily_invalid = EXCLUDED.daily_invalid, daily_failed = EXCLUDED.daily_failed, daily_error_rate = EXCLUDED.daily_error_rate`,
		nodeID, r.Day.Format(time.DateOnly), r.CheckedAt, r.LastContact, r.LastStart, r.LastWrite, r.LastReject,
		r.Imported, r.Updated, r.Invalid, r.Failed, r.ErrorRate,
		r.DailyImported, r.DailyUpdated, r.DailyInvalid, r.DailyFailed, r.DailyErrorRate); err != nil {
		return classifySQL(fmt.Errorf("write daily row of node %s: %w", nodeID, err))
	}
	return nil
}

// upsertImportErrors writes the errors in one statement, keyed by the
// SHA-256 of their content; a known error is updated only when its repeats
// or time changed.
func upsertImportErrors(ctx context.Context, tx *sqlx.Tx, nodeID string, errs []broker.ImportError) error {
	type item struct {
		hash    []byte
		content string
		at      time.Time
		repeats int64
	}
	var items []item
	for _, e := range errs {
		content := cleanText(e.Content)
		sum := sha256.Sum256([]byte(content))
		repeats := max(e.Repeats, 1)
		if i := slices.IndexFunc(items, func(x item) bool { return string(x.hash) == string(sum[:]) }); i >= 0 {
			// The same content twice in one report: keep the newest.
			if e.Timestamp.After(items[i].at) {
				items[i].at, items[i].repeats = e.Timestamp, repeats
			}
			continue
		}
		items = append(items, item{hash: sum[:], content: content, at: e.Timestamp, repeats: repeats})
	}
	if len(items) == 0 {
		return nil
	}
	hashes := make(pq.ByteaArray, len(items))
	contents := make(pq.StringArray, len(items))
	ats := make(pq.StringArray, len(items))
	repeats := make(pq.Int64Array, len(items))
	for i, it := range items {
		hashes[i], contents[i], repeats[i] = it.hash, it.content, it.repeats
		ats[i] = it.at.UTC().Format(time.RFC3339Nano)
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO node_import_errors (node_id, content_hash, content, error_at, repeats)
		SELECT $1, h, c, t, r FROM unnest($2::bytea[], $3::text[], $4::timestamptz[], $5::bigint[]) AS u(h, c, t, r)
		ON CONFLICT (node_id, content_hash) DO UPDATE SET repeats = EXCLUDED.repeats, error_at = EXCLUDED.error_at, updated_at = now()
		WHERE node_import_errors.repeats <> EXCLUDED.repeats OR node_import_errors.error_at <> EXCLUDED.error_at`,
		nodeID, hashes, contents, ats, repeats); err != nil {
		return classifySQL(fmt.Errorf("write import errors of node %s: %w", nodeID, err))
	}
	return nil
}

// recordResource replaces the stored keys of one resource and logs every
// difference (old NULL: NEW, new NULL: DELETED).
func recordResource(ctx context.Context, tx *sqlx.Tx, nodeID, scanID string, at time.Time, res node.Resource) error {
	var old []broker.Property
	if err := tx.SelectContext(ctx, &old, `SELECT key, value FROM node_resources WHERE node_id = $1 AND resource = $2 ORDER BY key`,
		nodeID, res.Name); err != nil {
		return fmt.Errorf("read resource %s: %w", res.Name, err)
	}
	next := make([]broker.Property, 0, len(res.Entries))
	if !res.Missing {
		for _, p := range res.Entries {
			p.Key, p.Value = cleanText(p.Key), cleanText(p.Value)
			if i := slices.IndexFunc(next, func(x broker.Property) bool { return x.Key == p.Key }); i >= 0 {
				next[i] = p // a repeated key: the last one wins, as in Java properties
				continue
			}
			next = append(next, p)
		}
	}
	slices.SortFunc(next, func(x, y broker.Property) int { return strings.Compare(x.Key, y.Key) })
	type change struct {
		key      string
		old, new *string
	}
	var changes []change
	i, j := 0, 0
	for i < len(old) || j < len(next) {
		switch {
		case j >= len(next) || (i < len(old) && old[i].Key < next[j].Key):
			changes = append(changes, change{key: old[i].Key, old: &old[i].Value})
			i++
		case i >= len(old) || next[j].Key < old[i].Key:
			changes = append(changes, change{key: next[j].Key, new: &next[j].Value})
			j++
		default:
			if old[i].Value != next[j].Value {
				changes = append(changes, change{key: old[i].Key, old: &old[i].Value, new: &next[j].Value})
			}
			i++
			j++
		}
	}
	for _, c := range changes {
		var err error
		if c.new == nil {
			_, err = tx.ExecContext(ctx, `DELETE FROM node_resources WHERE node_id = $1 AND resource = $2 AND key = $3`, nodeID, res.Name, c.key)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO node_resources (node_id, resource, key, value, updated_at) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (node_id, resource, key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
				nodeID, res.Name, c.key, *c.new, at)
		}
		if err != nil {
			return classifySQL(fmt.Errorf("write resource %s key %s: %w", res.Name, c.key, err))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO node_resource_changes (node_id, resource, key, old_value, new_value, changed_at, scan_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (node_id, resource, key, scan_id) DO NOTHING`,
			nodeID, res.Name, c.key, c.old, c.new, at, scanID); err != nil {
			return classifySQL(fmt.Errorf("log resource %s key %s: %w", res.Name, c.key, err))
		}
	}
	return nil
}

// cleanText makes broker text storable: valid UTF-8 without NUL bytes.
func cleanText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

func nonNilStrings(xs pq.StringArray) pq.StringArray {
	if xs == nil {
		return pq.StringArray{}
	}
	return xs
}
