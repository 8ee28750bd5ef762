package node

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/lib/pq"

	"github.com/vigil-health/vigil/internal/node/nodehealth"
)

// GapAfter is how long after its last check a node is shown with GAP IN
// MONITORING (the seed's 24 hours between rows).
const GapAfter = 24 * time.Hour

// Limits of the lists in Detail.
const (
	// ErrorLimit is how many of the latest import errors Detail lists.
	ErrorLimit = 20
	// HistoryLimit is how many status changes Detail lists.
	HistoryLimit = 50
	// ChangeLimit is how many resource changes Detail lists.
	ChangeLimit = 50
	// MailLimit is how many mail log entries Detail lists.
	MailLimit = 20
)

// Summary is one node's line of the fleet summary.
type Summary struct {
	NodeID string `json:"node_id" db:"node_id"`
	// CommonName is the settings' common name, else "Node <id>".
	CommonName      string `json:"common_name" db:"common_name"`
	ImportInterface string `json:"import_interface" db:"import_interface"`
	// LastChecked is the last scan that checked the node; nil if none has.
	LastChecked *time.Time `json:"last_checked" db:"last_checked"`
	// LastContact is the broker's last contact with the node; nil if
	// unknown.
	LastContact *time.Time `json:"last_contact" db:"last_contact"`
	// Headline is the first active condition in the seed's precedence;
	// Conditions are every active one, GAP IN MONITORING overlaid.
	Headline   string         `json:"headline" db:"headline"`
	Conditions pq.StringArray `json:"conditions" db:"conditions"`
	// ImportsToday (daily imported + updated), ErrorsToday (daily invalid
	// + failed) and ErrorRateToday come from today's (UTC) stats row; nil
	// without a row or without deltas.
	ImportsToday   *int64   `json:"imports_today" db:"imports_today"`
	ErrorsToday    *int64   `json:"errors_today" db:"errors_today"`
	ErrorRateToday *float64 `json:"error_rate_today" db:"error_rate_today"`
	// ErrorRate7d is the mean daily error rate over the last 7 UTC days
	// (today included) that have one, 2 decimals; nil when none has.
	// DaysWithData7d says how many days it averages. (The seed divided by
	// 7 whatever the number of days with data.)
	ErrorRate7d    *float64       `json:"error_rate_7d" db:"error_rate_7d"`
	DaysWithData7d int            `json:"days_with_data_7d" db:"days_with_data_7d"`
	Labels         pq.StringArray `json:"labels" db:"labels"`
	HasSettings    bool           `json:"has_settings" db:"has_settings"`
}

// SummaryFilter selects summary lines; zero fields do not filter.
type SummaryFilter struct {
	// Conditions keeps nodes with at least one of these active conditions
	// (after the GAP overlay).
	Conditions []string
	// Label keeps nodes with this label.
	Label string
}

// Node is the broker_nodes row of a node.
type Node struct {
	NodeID      string         `json:"node_id" db:"node_id"`
	ClientDN    string         `json:"client_dn" db:"client_dn"`
	FirstSeen   time.Time      `json:"first_seen" db:"first_seen"`
	LastScanID  string         `json:"last_scan_id" db:"last_scan_id"`
	LastChecked *time.Time     `json:"last_checked" db:"last_checked"`
	LastContact *time.Time     `json:"last_contact" db:"last_contact"`
	Headline    string         `json:"headline" db:"headline"`
	Conditions  pq.StringArray `json:"conditions" db:"conditions"`
	StatusSince *time.Time     `json:"status_since" db:"status_since"`
	// ProductionSince is the day (YYYY-MM-DD) the node left TESTING.
	ProductionSince *string `json:"production_since" db:"production_since"`
	DWHVersion      string  `json:"dwh_version" db:"dwh_version"`
}

// DailyStats is one node_daily_stats row.
type DailyStats struct {
	// Day is the UTC day, YYYY-MM-DD.
	Day            string     `json:"day" db:"day"`
	CheckedAt      time.Time  `json:"checked_at" db:"checked_at"`
	LastContact    *time.Time `json:"last_contact" db:"last_contact"`
	LastStart      *time.Time `json:"last_start" db:"last_start"`
	LastWrite      *time.Time `json:"last_write" db:"last_write"`
	LastReject     *time.Time `json:"last_reject" db:"last_reject"`
	Imported       *int64     `json:"imported" db:"imported"`
	Updated        *int64     `json:"updated" db:"updated"`
	Invalid        *int64     `json:"invalid" db:"invalid"`
	Failed         *int64     `json:"failed" db:"failed"`
	ErrorRate      *float64   `json:"error_rate" db:"error_rate"`
	DailyImported  *int64     `json:"daily_imported" db:"daily_imported"`
	DailyUpdated   *int64     `json:"daily_updated" db:"daily_updated"`
	DailyInvalid   *int64     `json:"daily_invalid" db:"daily_invalid"`
	DailyFailed    *int64     `json:"daily_failed" db:"daily_failed"`
	DailyErrorRate *float64   `json:"daily_error_rate" db:"daily_error_rate"`
}

// ImportError is one de-duplicated import error.
type ImportError struct {
	ErrorAt   time.Time `json:"error_at" db:"error_at"`
	Repeats   int64     `json:"repeats" db:"repeats"`
	Content   string    `json:"content" db:"content"`
	FirstSeen time.Time `json:"first_seen" db:"first_seen"`
}

// ResourceChange is one change of one resource key: Old nil means the key
// is new, New nil that it was deleted.
type ResourceChange struct {
	ChangedAt time.Time `json:"changed_at" db:"changed_at"`
	Resource  string    `json:"resource" db:"resource"`
	Key       string    `json:"key" db:"key"`
	Old       *string   `json:"old" db:"old_value"`
	New       *string   `json:"new" db:"new_value"`
}

// StatusChange is one entry of a node's status history.
type StatusChange struct {
	ChangedAt          time.Time      `json:"changed_at" db:"changed_at"`
	Headline           string         `json:"headline" db:"headline"`
	Conditions         pq.StringArray `json:"conditions" db:"conditions"`
	PreviousHeadline   string         `json:"previous_headline" db:"previous_headline"`
	PreviousConditions pq.StringArray `json:"previous_conditions" db:"previous_conditions"`
}

// Mail is one node_mail_log entry.
type Mail struct {
	ID         int64          `json:"-" db:"id"`
	CreatedAt  time.Time      `json:"created_at" db:"created_at"`
	SentAt     *time.Time     `json:"sent_at" db:"sent_at"`
	Condition  string         `json:"condition" db:"condition"`
	Kind       string         `json:"kind" db:"kind"`
	Status     string         `json:"status" db:"status"`
	Language   string         `json:"language" db:"language"`
	Recipients pq.StringArray `json:"recipients" db:"recipients"`
	CC         pq.StringArray `json:"cc" db:"cc"`
	Subject    string         `json:"subject" db:"subject"`
	Error      string         `json:"error" db:"error"`
	// Refused are the recipients the SMTP server refused; the others got
	// the mail (or will, while some are deferred).
	Refused []MailRefusal `json:"refused"`
}

// MailRefusal is a recipient of a node mail that the SMTP server refused.
type MailRefusal struct {
	Address string `json:"address" db:"address"`
	// Permanent is false while the refusal is temporary (a 4xx reply) and
	// the mail is retried for the address.
	Permanent bool `json:"permanent" db:"permanent"`
	// Code is the SMTP reply code; nil when the address could not be
	// mailed at all (not a valid address).
	Code  *int   `json:"code" db:"reply_code"`
	Reply string `json:"reply" db:"reply"`
}

// Detail is everything known about one node.
type Detail struct {
	NodeID string `json:"node_id"`
	// Name is the node's display name (common name or "Node <id>").
	Name string `json:"name"`
	// Settings are the stored settings, or the defaults when HasSettings
	// is false.
	Settings    Settings `json:"settings"`
	HasSettings bool     `json:"has_settings"`
	// Node is nil when the broker has never listed the node.
	Node *Node `json:"node"`
	// Headline and Conditions are the node's status with the GAP overlay.
	Headline   string   `json:"headline"`
	Conditions []string `json:"conditions"`
	// LatestStats is the newest daily stats row; nil when there is none.
	LatestStats *DailyStats `json:"latest_stats"`
	// Errors are the ErrorLimit latest import errors, newest first.
	Errors []ImportError `json:"errors"`
	// Resources are the current values: resource → key → value.
	Resources map[string]map[string]string `json:"resources"`
	// ResourceChanges are the ChangeLimit latest changes, newest first.
	ResourceChanges []ResourceChange `json:"resource_changes"`
	// StatusHistory is the HistoryLimit latest status changes, newest
	// first.
	StatusHistory []StatusChange `json:"status_history"`
	// Contacts are the people told about the node.
	Contacts []Contact `json:"contacts"`
	// Mails are the MailLimit latest mail log entries, newest first.
	Mails []Mail `json:"mails"`
}

// Overlay returns a node's status as shown: GAP IN MONITORING is added when
// lastChecked is nil or more than GapAfter before now, the conditions are
// put in nodehealth's precedence order (others, such as DWH OUTDATED, last
// in their stored order), and
// the headline is the first of them (or the stored headline when none is
// known).
func Overlay(headline string, conditions []string, lastChecked *time.Time, now time.Time) (string, []string) {
	gap := string(nodehealth.GapInMonitoring)
	out := make([]string, 0, len(conditions)+1)
	for _, c := range conditions {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	if (lastChecked == nil || now.Sub(*lastChecked) > GapAfter) && !slices.Contains(out, gap) {
		out = append(out, gap)
	}
	rank := func(c string) int {
		for i, p := range nodehealth.Precedence {
			if string(p) == c {
				return i
			}
		}
		return len(nodehealth.Precedence)
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	if len(out) > 0 && rank(out[0]) < len(nodehealth.Precedence) {
		headline = out[0]
	}
	return headline, out
}

// knownNodes is every node id the broker listed or an operator configured.
const knownNodes = `(SELECT node_id FROM broker_nodes UNION SELECT node_id FROM node_settings)`

// Summary returns the fleet summary at now, nodes ordered by id (numbers
// numerically).
func (s *Store) Summary(ctx context.Context, now time.Time, f SummaryFilter) ([]Summary, error) {
	today := utcDay(now)
	var rows []Summary
	err := s.DB.SelectContext(ctx, &rows, `
		SELECT n.node_id,
			COALESCE(ns.common_name, '') AS common_name,
			COALESCE(ns.import_interface, '') AS import_interface,
			COALESCE(ns.labels, '{}') AS labels,
			ns.node_id IS NOT NULL AS has_settings,
			bn.last_checked,
			bn.last_contact,
			COALESCE(bn.headline, '') AS headline,
			COALESCE(bn.conditions, '{}') AS conditions,
			t.daily_imported + t.daily_updated AS imports_today,
			t.daily_invalid + t.daily_failed AS errors_today,
			t.daily_error_rate AS error_rate_today,
			w.rate AS error_rate_7d,
			w.days AS days_with_data_7d
		FROM `+knownNodes+` n
		LEFT JOIN node_settings ns ON ns.node_id = n.node_id
		LEFT JOIN broker_nodes bn ON bn.node_id = n.node_id
		LEFT JOIN node_daily_stats t ON t.node_id = n.node_id AND t.day = $1::date
		CROSS JOIN LATERAL (
			SELECT round(avg(d.daily_error_rate), 2)::float8 AS rate, count(d.daily_error_rate)::int AS days
			FROM node_daily_stats d
			WHERE d.node_id = n.node_id AND d.day > $1::date - 7 AND d.day <= $1::date
		) w
		WHERE $2 = '' OR $2 = ANY(ns.labels)`, today, f.Label)
	if err != nil {
		return nil, fmt.Errorf("node summary: %w", err)
	}
	out := make([]Summary, 0, len(rows))
	for _, r := range rows {
		r.CommonName = DisplayName(r.NodeID, r.CommonName)
		var conds []string
		r.Headline, conds = Overlay(r.Headline, r.Conditions, r.LastChecked, now)
		r.Conditions = conds
		r.LastChecked, r.LastContact = utcPtr(r.LastChecked), utcPtr(r.LastContact)
		if len(f.Conditions) > 0 && !slices.ContainsFunc(conds, func(c string) bool { return slices.Contains(f.Conditions, c) }) {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return LessNodeID(out[i].NodeID, out[j].NodeID) })
	return out, nil
}

// LessNodeID orders node ids: numbers numerically (equal numbers by their
// text), before other ids in byte order.
func LessNodeID(a, b string) bool {
	na, errA := strconv.ParseUint(a, 10, 64)
	nb, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case errA == nil && errB == nil && na != nb:
		return na < nb
	case errA == nil && errB == nil:
		return a < b
	case errA == nil:
		return true
	case errB == nil:
		return false
	}
	return a < b
}

// Exists reports whether the node is known (listed by the broker or with
// settings).
func (s *Store) Exists(ctx context.Context, nodeID string) (bool, error) {
	var ok bool
	if err := s.DB.GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM `+knownNodes+` n WHERE n.node_id = $1)`, nodeID); err != nil {
		return false, fmt.Errorf("node exists: %w", err)
	}
	return ok, nil
}

// Detail returns everything known about a node at now; ErrNotFound when
// the node is unknown.
func (s *Store) Detail(ctx context.Context, nodeID string, now time.Time) (*Detail, error) {
	d := &Detail{NodeID: nodeID}
	st, err := s.GetSettings(ctx, nodeID)
	switch {
	case err == nil:
		d.Settings, d.HasSettings = st, true
	case errors.Is(err, ErrNotFound):
		d.Settings = Defaults(nodeID)
	default:
		return nil, err
	}
	var n Node
	err = s.DB.GetContext(ctx, &n, `
		SELECT node_id, client_dn, first_seen, last_scan_id, last_checked, last_contact, headline, conditions,
			status_since, to_char(production_since, 'YYYY-MM-DD') AS production_since, dwh_version
		FROM broker_nodes WHERE node_id = $1`, nodeID)
	switch {
	case err == nil:
		n.FirstSeen = n.FirstSeen.UTC()
		n.LastChecked, n.LastContact, n.StatusSince = utcPtr(n.LastChecked), utcPtr(n.LastContact), utcPtr(n.StatusSince)
		d.Node = &n
	case errors.Is(err, sql.ErrNoRows):
		if !d.HasSettings {
			return nil, ErrNotFound
		}
	default:
		return nil, fmt.Errorf("node row: %w", err)
	}
	d.Name = DisplayName(nodeID, "")
	if d.HasSettings {
		d.Name = d.Settings.CommonName
	}
	var lastChecked *time.Time
	var headline string
	var conds []string
	if d.Node != nil {
		lastChecked, headline, conds = d.Node.LastChecked, d.Node.Headline, d.Node.Conditions
	}
	d.Headline, d.Conditions = Overlay(headline, conds, lastChecked, now)

	var stats []DailyStats
	if err := s.DB.SelectContext(ctx, &stats, `SELECT `+statsColumns+` FROM node_daily_stats
		WHERE node_id = $1 ORDER BY day DESC LIMIT 1`, nodeID); err != nil {
		return nil, fmt.Errorf("node latest stats: %w", err)
	}
	if len(stats) == 1 {
		stats[0].normalize()
		d.LatestStats = &stats[0]
	}
	d.Errors = []ImportError{}
	if err := s.DB.SelectContext(ctx, &d.Errors, `SELECT error_at, repeats, content, first_seen FROM node_import_errors
		WHERE node_id = $1 ORDER BY error_at DESC, content_hash LIMIT $2`, nodeID, ErrorLimit); err != nil {
		return nil, fmt.Errorf("node errors: %w", err)
	}
	for i := range d.Errors {
		d.Errors[i].ErrorAt, d.Errors[i].FirstSeen = d.Errors[i].ErrorAt.UTC(), d.Errors[i].FirstSeen.UTC()
	}
	if d.Resources, err = s.resources(ctx, nodeID); err != nil {
		return nil, err
	}
	d.ResourceChanges = []ResourceChange{}
	if err := s.DB.SelectContext(ctx, &d.ResourceChanges, `SELECT changed_at, resource, key, old_value, new_value
		FROM node_resource_changes WHERE node_id = $1 ORDER BY changed_at DESC, id DESC LIMIT $2`, nodeID, ChangeLimit); err != nil {
		return nil, fmt.Errorf("node resource changes: %w", err)
	}
	for i := range d.ResourceChanges {
		d.ResourceChanges[i].ChangedAt = d.ResourceChanges[i].ChangedAt.UTC()
	}
	d.StatusHistory = []StatusChange{}
	if err := s.DB.SelectContext(ctx, &d.StatusHistory, `SELECT changed_at, headline, conditions, previous_headline,
			previous_conditions
		FROM node_status_history WHERE node_id = $1 ORDER BY changed_at DESC, id DESC LIMIT $2`, nodeID, HistoryLimit); err != nil {
		return nil, fmt.Errorf("node status history: %w", err)
	}
	for i := range d.StatusHistory {
		d.StatusHistory[i].ChangedAt = d.StatusHistory[i].ChangedAt.UTC()
	}
	if d.Contacts, err = s.Contacts(ctx, nodeID); err != nil {
		return nil, err
	}
	d.Mails = []Mail{}
	if err := s.DB.SelectContext(ctx, &d.Mails, `SELECT id, created_at, sent_at, condition, kind, status, language,
			recipients, cc, subject, error
		FROM node_mail_log WHERE node_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, nodeID, MailLimit); err != nil {
		return nil, fmt.Errorf("node mail log: %w", err)
	}
	ids := make(pq.Int64Array, len(d.Mails))
	for i := range d.Mails {
		d.Mails[i].CreatedAt, d.Mails[i].SentAt = d.Mails[i].CreatedAt.UTC(), utcPtr(d.Mails[i].SentAt)
		d.Mails[i].Refused = []MailRefusal{}
		ids[i] = d.Mails[i].ID
	}
	var refusals []struct {
		MailID int64 `db:"mail_id"`
		MailRefusal
	}
	if err := s.DB.SelectContext(ctx, &refusals, `SELECT mail_id, address, status = 'refused' AS permanent, reply_code, reply
		FROM node_mail_recipients WHERE mail_id = ANY($1) AND status IN ('refused', 'deferred')
		ORDER BY mail_id, position`, ids); err != nil {
		return nil, fmt.Errorf("node mail refusals: %w", err)
	}
	for _, r := range refusals {
		if i := slices.IndexFunc(d.Mails, func(m Mail) bool { return m.ID == r.MailID }); i >= 0 {
			d.Mails[i].Refused = append(d.Mails[i].Refused, r.MailRefusal)
		}
	}
	return d, nil
}

func (s *Store) resources(ctx context.Context, nodeID string) (map[string]map[string]string, error) {
	var rows []struct {
		Resource string `db:"resource"`
		Key      string `db:"key"`
		Value    string `db:"value"`
	}
	if err := s.DB.SelectContext(ctx, &rows, `SELECT resource, key, value FROM node_resources WHERE node_id = $1`, nodeID); err != nil {
		return nil, fmt.Errorf("node resources: %w", err)
	}
	out := map[string]map[string]string{}
	for _, r := range rows {
		if out[r.Resource] == nil {
			out[r.Resource] = map[string]string{}
		}
		out[r.Resource][r.Key] = r.Value
	}
	return out, nil
}

const statsColumns = `to_char(day, 'YYYY-MM-DD') AS day, checked_at, last_contact, last_start, last_write, last_reject,
	imported, updated, invalid, failed, error_rate::float8 AS error_rate, daily_imported, daily_updated,
	daily_invalid, daily_failed, daily_error_rate::float8 AS daily_error_rate`

func (d *DailyStats) normalize() {
	d.CheckedAt = d.CheckedAt.UTC()
	d.LastContact, d.LastStart, d.LastWrite, d.LastReject = utcPtr(d.LastContact), utcPtr(d.LastStart), utcPtr(d.LastWrite), utcPtr(d.LastReject)
}

// utcDay is the UTC day of t as YYYY-MM-DD.
func utcDay(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// UnknownStatus is what CountByStatus counts a node under when its stored
// headline is outside nodehealth's precedence.
const UnknownStatus = "UNKNOWN"

// CountByStatus returns how many known nodes show each status at now, by
// headline as Summary shows it (GAP IN MONITORING overlaid): every status
// of nodehealth.Precedence is present, zero or not, and a headline outside
// it counts as UnknownStatus.
func (s *Store) CountByStatus(ctx context.Context, now time.Time) (map[string]int, error) {
	var rows []struct {
		Headline    string         `db:"headline"`
		Conditions  pq.StringArray `db:"conditions"`
		LastChecked *time.Time     `db:"last_checked"`
	}
	if err := s.DB.SelectContext(ctx, &rows, `
		SELECT COALESCE(bn.headline, '') AS headline, COALESCE(bn.conditions, '{}') AS conditions, bn.last_checked
		FROM `+knownNodes+` n
		LEFT JOIN broker_nodes bn ON bn.node_id = n.node_id`); err != nil {
		return nil, fmt.Errorf("count nodes by status: %w", err)
	}
	out := make(map[string]int, len(nodehealth.Precedence)+1)
	for _, c := range nodehealth.Precedence {
		out[string(c)] = 0
	}
	for _, r := range rows {
		headline, _ := Overlay(r.Headline, r.Conditions, r.LastChecked, now)
		if _, ok := out[headline]; !ok {
			headline = UnknownStatus
		}
		out[headline]++
	}
	return out, nil
}
