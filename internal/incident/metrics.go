package incident

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"
)

// DurationStats summarises one duration over a set of incidents. Incidents
// that have not reached the end point of the duration (say, were never
// acknowledged) are left out of it, not counted as zero; the mean, median
// and p90 are nil when no incident qualifies.
type DurationStats struct {
	// Count is how many incidents the statistics are over.
	Count int `json:"count"`
	// MeanSeconds is the arithmetic mean.
	MeanSeconds *float64 `json:"mean_seconds"`
	// MedianSeconds is the 50th percentile, interpolated between the two
	// middle values (Postgres percentile_cont(0.5)).
	MedianSeconds *float64 `json:"median_seconds"`
	// P90Seconds is the 90th percentile, interpolated (percentile_cont(0.9)).
	P90Seconds *float64 `json:"p90_seconds"`
}

// MetricsGroup is the response-time metrics of a set of incidents, all
// measured from opened_at (when the first alert was accepted):
//
//   - MTTA: opened_at to acknowledged_at (the first acknowledgement or
//     claim by a person); incidents never acknowledged are excluded.
//   - MTTR: opened_at to resolved_at; only resolved incidents count.
//   - TimeToAssign: opened_at to assigned_at (the first on-call pick).
//   - TimeToFirstPage: opened_at to first_paged_at (the first page
//     actually delivered).
type MetricsGroup struct {
	// Incidents is how many incidents opened in the window.
	Incidents       int           `json:"incidents"`
	MTTA            DurationStats `json:"mtta"`
	MTTR            DurationStats `json:"mttr"`
	TimeToAssign    DurationStats `json:"time_to_assign"`
	TimeToFirstPage DurationStats `json:"time_to_first_page"`
}

// SeverityMetrics is the metrics of the incidents of one severity.
type SeverityMetrics struct {
	Severity string `json:"severity"`
	MetricsGroup
}

// StaffMetrics is the metrics of the incidents assigned to one staff member
// (the current assignee: whoever acknowledged, claimed or was reassigned the
// incident last).
type StaffMetrics struct {
	StaffID   string `json:"staff_id"`
	StaffName string `json:"staff_name"`
	MetricsGroup
}

// Metrics is the response-time report of the incidents opened in a window.
type Metrics struct {
	// From (inclusive) and To (exclusive) bound opened_at.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Totals is over every incident of the window.
	Totals MetricsGroup `json:"totals"`
	// ByStatus counts the incidents by current status; every status is
	// present.
	ByStatus map[string]int `json:"by_status"`
	// BySeverity has every severity, most severe first.
	BySeverity []SeverityMetrics `json:"by_severity"`
	// ByStaff has every staff member assigned at least one incident of the
	// window, by staff id; unassigned incidents count in Totals only.
	ByStaff []StaffMetrics `json:"by_staff"`
}

// metricsRow is one grouping set of the metrics query.
type metricsRow struct {
	GroupedBySeverity bool           `db:"by_severity"`
	GroupedByStaff    bool           `db:"by_staff"`
	Severity          sql.NullString `db:"severity"`
	StaffID           sql.NullString `db:"assigned_to"`
	StaffName         sql.NullString `db:"staff_name"`
	Incidents         int            `db:"incidents"`

	TTA    statsRow `db:"tta"`
	TTR    statsRow `db:"ttr"`
	Assign statsRow `db:"assign"`
	Page   statsRow `db:"page"`
}

// statsRow is the four aggregates stats computes of one duration column,
// scanned from the columns "<name>.count", "<name>.mean" and so on.
type statsRow struct {
	Count  int             `db:"count"`
	Mean   sql.NullFloat64 `db:"mean"`
	Median sql.NullFloat64 `db:"median"`
	P90    sql.NullFloat64 `db:"p90"`
}

// stats returns the four aggregates of one duration column, named as
// statsRow reads them under name.
func stats(col, name string) string {
	return `count(` + col + `) AS "` + name + `.count",
		avg(` + col + `) AS "` + name + `.mean",
		percentile_cont(0.5) WITHIN GROUP (ORDER BY ` + col + `) AS "` + name + `.median",
		percentile_cont(0.9) WITHIN GROUP (ORDER BY ` + col + `) AS "` + name + `.p90"`
}

// metricsQuery computes every group in one pass with grouping sets: by
// severity, by assignee, and the totals. Aggregates skip NULLs, so an
// incident that has not reached a duration's end point is left out of that
// duration's statistics.
var metricsQuery = `
	WITH d AS (
		SELECT severity, assigned_to,
			EXTRACT(EPOCH FROM acknowledged_at - opened_at)::float8 AS tta,
			CASE WHEN status = 'RESOLVED' THEN EXTRACT(EPOCH FROM resolved_at - opened_at)::float8 END AS ttr,
			EXTRACT(EPOCH FROM assigned_at - opened_at)::float8 AS assign,
			EXTRACT(EPOCH FROM first_paged_at - opened_at)::float8 AS page
		FROM incidents
		WHERE opened_at >= $1 AND opened_at < $2
	), g AS (
		SELECT GROUPING(severity) = 0 AS by_severity, GROUPING(assigned_to) = 0 AS by_staff,
			severity, assigned_to, count(*) AS incidents,
			` + stats("tta", "tta") + `,
			` + stats("ttr", "ttr") + `,
			` + stats("assign", "assign") + `,
			` + stats("page", "page") + `
		FROM d
		GROUP BY GROUPING SETS ((severity), (assigned_to), ())
	)
	SELECT g.*, s.name AS staff_name
	FROM g LEFT JOIN staff s ON g.by_staff AND s.id = g.assigned_to`

// Metrics computes the response-time metrics of the incidents opened in
// [from, to), in one snapshot.
func (s *Store) Metrics(ctx context.Context, from, to time.Time) (*Metrics, error) {
	if from.IsZero() || to.IsZero() || from.After(to) {
		return nil, fmt.Errorf("%w: window %v to %v", ErrInvalidFilter, from, to)
	}
	tx, err := s.DB.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin metrics read: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	var rows []metricsRow
	if err := tx.SelectContext(ctx, &rows, metricsQuery, from, to); err != nil {
		return nil, fmt.Errorf("compute incident metrics: %w", err)
	}
	var statuses []struct {
		Status string `db:"status"`
		Count  int    `db:"n"`
	}
	if err := tx.SelectContext(ctx, &statuses, `
		SELECT status, count(*) AS n FROM incidents
		WHERE opened_at >= $1 AND opened_at < $2
		GROUP BY status`, from, to); err != nil {
		return nil, fmt.Errorf("count incidents by status: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("end metrics read: %w", err)
	}

	m := &Metrics{
		From: from.UTC(), To: to.UTC(),
		ByStatus:   make(map[string]int, len(Statuses)),
		BySeverity: make([]SeverityMetrics, 0, len(Severities)),
		ByStaff:    []StaffMetrics{},
	}
	for _, st := range Statuses {
		m.ByStatus[st] = 0
	}
	for _, st := range statuses {
		m.ByStatus[st.Status] = st.Count
	}
	bySeverity := map[string]MetricsGroup{}
	for _, r := range rows {
		switch {
		case r.GroupedBySeverity:
			bySeverity[r.Severity.String] = r.group()
		case r.GroupedByStaff:
			if r.StaffID.Valid {
				m.ByStaff = append(m.ByStaff, StaffMetrics{StaffID: r.StaffID.String, StaffName: r.StaffName.String, MetricsGroup: r.group()})
			}
		default:
			m.Totals = r.group()
		}
	}
	for _, sev := range Severities {
		m.BySeverity = append(m.BySeverity, SeverityMetrics{Severity: sev, MetricsGroup: bySeverity[sev]})
		delete(bySeverity, sev)
	}
	// A severity outside the catalogue's four still shows, after them.
	for _, sev := range sortedKeys(bySeverity) {
		m.BySeverity = append(m.BySeverity, SeverityMetrics{Severity: sev, MetricsGroup: bySeverity[sev]})
	}
	slices.SortFunc(m.ByStaff, func(a, b StaffMetrics) int { return strings.Compare(a.StaffID, b.StaffID) })
	return m, nil
}

func (r *metricsRow) group() MetricsGroup {
	return MetricsGroup{
		Incidents:       r.Incidents,
		MTTA:            r.TTA.durationStats(),
		MTTR:            r.TTR.durationStats(),
		TimeToAssign:    r.Assign.durationStats(),
		TimeToFirstPage: r.Page.durationStats(),
	}
}

func (s statsRow) durationStats() DurationStats {
	return DurationStats{Count: s.Count, MeanSeconds: ptr(s.Mean), MedianSeconds: ptr(s.Median), P90Seconds: ptr(s.P90)}
}

func ptr(f sql.NullFloat64) *float64 {
	if !f.Valid {
		return nil
	}
	v := f.Float64
	return &v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Bucket is the width of a metrics time series' buckets.
type Bucket string

// The bucket widths.
const (
	BucketHour Bucket = "hour"
	BucketDay  Bucket = "day"
)

// MaxSeriesBuckets bounds a time series (a year of days, or 60 days of
// hours).
const MaxSeriesBuckets = 1464

// SeriesPoint is one bucket of a metrics time series: the incidents opened
// in [Start, the next bucket's start) and the means of their durations,
// measured as in MetricsGroup (nil when no incident of the bucket reached
// the duration's end point).
type SeriesPoint struct {
	Start               time.Time `json:"start"`
	Incidents           int       `json:"incidents"`
	MTTASeconds         *float64  `json:"mtta_seconds"`
	MTTRSeconds         *float64  `json:"mttr_seconds"`
	TimeToAssignSeconds *float64  `json:"time_to_assign_seconds"`
}

// seriesQuery counts the incidents opened in each bucket [start, next
// start) of $1 (the buckets' starts, ascending), the last ending at $2,
// from $3 on; buckets without incidents have no row.
const seriesQuery = `
	WITH b AS (
		SELECT u.start, lead(u.start, 1, $2::timestamptz) OVER (ORDER BY u.i) AS stop, u.i - 1 AS i
		FROM unnest($1::timestamptz[]) WITH ORDINALITY AS u(start, i)
	)
	SELECT b.i, count(*) AS incidents,
		avg(EXTRACT(EPOCH FROM n.acknowledged_at - n.opened_at))::float8 AS mtta,
		avg(CASE WHEN n.status = 'RESOLVED' THEN EXTRACT(EPOCH FROM n.resolved_at - n.opened_at) END)::float8 AS mttr,
		avg(EXTRACT(EPOCH FROM n.assigned_at - n.opened_at))::float8 AS assign
	FROM b JOIN incidents n ON n.opened_at >= b.start AND n.opened_at < b.stop AND n.opened_at >= $3
	GROUP BY b.i`

// MetricsSeries is the time series of the incidents opened in [from, to):
// one point per hour or day of loc (UTC when nil), from the bucket that
// holds from to the one that holds the instant before to, every bucket
// present (an empty one has no incidents and nil means). Days follow the
// zone's calendar, so a day of a summer-time change has 23 or 25 hours.
func (s *Store) MetricsSeries(ctx context.Context, from, to time.Time, bucket Bucket, loc *time.Location) ([]SeriesPoint, error) {
	if loc == nil {
		loc = time.UTC
	}
	if from.IsZero() || to.IsZero() || !from.Before(to) {
		return nil, fmt.Errorf("%w: series window %v to %v", ErrInvalidFilter, from, to)
	}
	f := from.In(loc)
	var (
		start time.Time
		next  func(time.Time) time.Time
	)
	switch bucket {
	case BucketHour:
		start = time.Date(f.Year(), f.Month(), f.Day(), f.Hour(), 0, 0, 0, loc)
		next = func(t time.Time) time.Time { return t.Add(time.Hour) }
	case BucketDay:
		start = time.Date(f.Year(), f.Month(), f.Day(), 0, 0, 0, 0, loc)
		next = func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
	default:
		return nil, fmt.Errorf("%w: bucket %q is not hour or day", ErrInvalidFilter, bucket)
	}
	var starts []time.Time
	for t := start; t.Before(to); t = next(t) {
		if len(starts) == MaxSeriesBuckets {
			return nil, fmt.Errorf("%w: more than %d %s buckets from %v to %v", ErrInvalidFilter, MaxSeriesBuckets, bucket, from, to)
		}
		starts = append(starts, t)
	}
	var rows []struct {
		I         int             `db:"i"`
		Incidents int             `db:"incidents"`
		MTTA      sql.NullFloat64 `db:"mtta"`
		MTTR      sql.NullFloat64 `db:"mttr"`
		Assign    sql.NullFloat64 `db:"assign"`
	}
	texts := make([]string, len(starts))
	for i, t := range starts {
		texts[i] = t.Format(time.RFC3339Nano)
	}
	if err := s.DB.SelectContext(ctx, &rows, seriesQuery, pq.StringArray(texts), to, from); err != nil {
		return nil, fmt.Errorf("incident metrics series: %w", err)
	}
	out := make([]SeriesPoint, len(starts))
	for i, t := range starts {
		out[i] = SeriesPoint{Start: t}
	}
	for _, r := range rows {
		if r.I < 0 || r.I >= len(out) {
			return nil, fmt.Errorf("incident metrics series: bucket %d of %d", r.I, len(out))
		}
		out[r.I].Incidents = r.Incidents
		out[r.I].MTTASeconds, out[r.I].MTTRSeconds, out[r.I].TimeToAssignSeconds = ptr(r.MTTA), ptr(r.MTTR), ptr(r.Assign)
	}
	return out, nil
}
