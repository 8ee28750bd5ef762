package node

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/node/broker"
	"github.com/vigil-health/vigil/internal/node/nodehealth"
)

// evaluationDays is how many days of rows an evaluation reads (TESTING
// looks for a run of consecutive import days in them).
const evaluationDays = 60

// RecordObservation records one observation of a node and evaluates
// it, in one transaction. The observation is read from node_observations
// by its reference (a missing, undecodable or undated one is an
// *ObservationError); then:
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
func (s *Store) RecordObservation(ctx context.Context, ref *ObservationRef, currentDWHVersion string) (*Evaluation, error) {
	tx, err := s.DB.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	obs, err := loadObservation(ctx, tx, ref)
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
		return nil, dataError(fmt.Errorf("upsert node %s: %w", nodeID, err))
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
		LastWriteFallback: facts.LastWrite, DWHVersion: dwh, CurrentDWHVersion: currentDWHVersion,
	})
	conditions := make([]string, len(status.Conditions))
	for i, c := range status.Conditions {
		conditions[i] = string(c)
	}
	ev := &Evaluation{
		Headline: string(status.Headline), Conditions: conditions, IntervalWeeks: settings.NotificationIntervalWeeks,
		Name: Name(set.CommonName, prior.ClientDN),
		Facts: MailFacts{
			LastContact: row.LastContact, LastWrite: row.LastWrite, DWHVersion: dwh,
			CurrentDWHVersion: nodehealth.NormalizeVersion(currentDWHVersion),
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

// loadObservation reads the observation ref names.
func loadObservation(ctx context.Context, tx *sqlx.Tx, ref *ObservationRef) (*Observation, error) {
	var payload []byte
	err := tx.GetContext(ctx, &payload, `SELECT payload FROM node_observations WHERE scan_id = $1 AND node_id = $2`, ref.ScanID, ref.NodeID)
	if errors.Is(err, sql.ErrNoRows) {
		// Stored before the signal was sent: only the retention (or an
		// operator) removes it, and retrying cannot bring it back.
		return nil, &ObservationError{Message: fmt.Sprintf("observation of node %s in scan %s not found", ref.NodeID, ref.ScanID)}
	}
	if err != nil {
		return nil, fmt.Errorf("read observation of node %s: %w", ref.NodeID, err)
	}
	var obs Observation
	if err := json.Unmarshal(payload, &obs); err != nil {
		return nil, &ObservationError{Message: fmt.Sprintf("observation of node %s in scan %s: %v", ref.NodeID, ref.ScanID, err), Err: err}
	}
	obs.ScanID, obs.Node.ID = ref.ScanID, ref.NodeID
	if obs.ObservedAt.IsZero() {
		obs.ObservedAt = ref.ObservedAt
	}
	if obs.ObservedAt.IsZero() {
		return nil, &ObservationError{Message: "observation time is required"}
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
		return dataError(fmt.Errorf("write daily row of node %s: %w", nodeID, err))
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
		return dataError(fmt.Errorf("write import errors of node %s: %w", nodeID, err))
	}
	return nil
}

// recordResource replaces the stored keys of one resource and logs every
// difference (old NULL: NEW, new NULL: DELETED).
func recordResource(ctx context.Context, tx *sqlx.Tx, nodeID, scanID string, at time.Time, res Resource) error {
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
			return dataError(fmt.Errorf("write resource %s key %s: %w", res.Name, c.key, err))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO node_resource_changes (node_id, resource, key, old_value, new_value, changed_at, scan_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (node_id, resource, key, scan_id) DO NOTHING`,
			nodeID, res.Name, c.key, c.old, c.new, at, scanID); err != nil {
			return dataError(fmt.Errorf("log resource %s key %s: %w", res.Name, c.key, err))
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
