// Package nodehealth holds the pure rules of broker node monitoring: the
// daily statistics row and its deltas, the error rate, the status
// conditions (OFFLINE, NO IMPORTS, …) with their precedence, the DWH
// version comparison and the heatmap colour bands and row weighting.
//
// Deviations from the seed (aktin/broker-monitor), on purpose:
//   - Every condition is evaluated; the seed stopped at the first match, so
//     GAP IN MONITORING or TESTING hid OFFLINE and NO IMPORTS.
//   - Durations are compared exactly (strict >); the seed rounded hours
//     first, so 72h29m counted as 72h and was not yet offline.
//   - The default failure threshold is the seed code's 72 hours, not its
//     README's 24 hours.
package nodehealth

import (
	"math"
	"strings"
	"time"

	"github.com/vigil-health/vigil/internal/node/broker"
)

// Condition is a node status condition, named as the seed's status macro.
type Condition string

// The conditions a node can be in.
const (
	GapInMonitoring  Condition = "GAP IN MONITORING"
	Testing          Condition = "TESTING"
	Offline          Condition = "OFFLINE"
	NoImports        Condition = "NO IMPORTS"
	ExtremeErrorRate Condition = "EXTREME ERROR RATE"
	HighErrorRate    Condition = "HIGH ERROR RATE"
	LowErrorRate     Condition = "LOW ERROR RATE"
	Online           Condition = "ONLINE"
	DWHOutdated      Condition = "DWH OUTDATED"
)

// Precedence is the seed's order of the page status: the headline is the
// first active condition in it. DWHOutdated is independent of it.
var Precedence = []Condition{GapInMonitoring, Testing, Offline, NoImports, ExtremeErrorRate, HighErrorRate, LowErrorRate, Online}

// MailConditions are the conditions that send e-mail to a node's contacts.
var MailConditions = []Condition{Offline, NoImports, DWHOutdated, ExtremeErrorRate}

// Error-rate thresholds in percent (inclusive lower bounds).
const (
	ExtremeErrorRatePercent = 10.0
	HighErrorRatePercent    = 5.0
	LowErrorRatePercent     = 1.0
)

// Settings are the per-node thresholds.
type Settings struct {
	// ThresholdHoursFailure is how long without contact (OFFLINE) or
	// without a write (NO IMPORTS) a node may go.
	ThresholdHoursFailure int `json:"threshold_hours_failure"`
	// ConsecutiveImportDays is how many days in a row with imports end the
	// TESTING phase.
	ConsecutiveImportDays int `json:"consecutive_import_days"`
	// NotificationIntervalWeeks is how long to wait before re-sending a
	// mail for a condition that still holds.
	NotificationIntervalWeeks int `json:"notification_interval_weeks"`
}

// Default settings (the seed code's values; its README's 24 h is stale).
const (
	DefaultThresholdHoursFailure     = 72
	DefaultConsecutiveImportDays     = 3
	DefaultNotificationIntervalWeeks = 1
)

// DefaultSettings returns 72 hours, 3 days and 1 week.
func DefaultSettings() Settings {
	return Settings{
		ThresholdHoursFailure:     DefaultThresholdHoursFailure,
		ConsecutiveImportDays:     DefaultConsecutiveImportDays,
		NotificationIntervalWeeks: DefaultNotificationIntervalWeeks,
	}
}

// WithDefaults replaces zero or negative fields by the defaults (the seed
// fell back to defaults for falsy values).
func (s Settings) WithDefaults() Settings {
	d := DefaultSettings()
	if s.ThresholdHoursFailure <= 0 {
		s.ThresholdHoursFailure = d.ThresholdHoursFailure
	}
	if s.ConsecutiveImportDays <= 0 {
		s.ConsecutiveImportDays = d.ConsecutiveImportDays
	}
	if s.NotificationIntervalWeeks <= 0 {
		s.NotificationIntervalWeeks = d.NotificationIntervalWeeks
	}
	return s
}

// Threshold is ThresholdHoursFailure as a duration (defaults applied).
func (s Settings) Threshold() time.Duration {
	return time.Duration(s.WithDefaults().ThresholdHoursFailure) * time.Hour
}

// NotificationInterval is NotificationIntervalWeeks as a duration
// (defaults applied).
func (s Settings) NotificationInterval() time.Duration {
	return time.Duration(s.WithDefaults().NotificationIntervalWeeks) * 7 * 24 * time.Hour
}

// DailyRow is one day of a node's statistics (the seed's stats CSV row), a
// node_daily_stats row (the db tags are its columns). Cumulative counters
// are the broker's since the DWH start; Daily* are the deltas to
// yesterday's row, nil when they cannot be computed.
type DailyRow struct {
	// Day is the UTC midnight of the row's day.
	Day time.Time `json:"day" db:"day"`
	// CheckedAt is when the row was last written.
	CheckedAt   time.Time  `json:"checked_at" db:"checked_at"`
	LastContact *time.Time `json:"last_contact,omitempty" db:"last_contact"`
	// LastStart is the DWH start reported with the counters.
	LastStart  *time.Time `json:"last_start,omitempty" db:"last_start"`
	LastWrite  *time.Time `json:"last_write,omitempty" db:"last_write"`
	LastReject *time.Time `json:"last_reject,omitempty" db:"last_reject"`

	Imported  *int64   `json:"imported,omitempty" db:"imported"`
	Updated   *int64   `json:"updated,omitempty" db:"updated"`
	Invalid   *int64   `json:"invalid,omitempty" db:"invalid"`
	Failed    *int64   `json:"failed,omitempty" db:"failed"`
	ErrorRate *float64 `json:"error_rate,omitempty" db:"error_rate"`

	DailyImported  *int64   `json:"daily_imported,omitempty" db:"daily_imported"`
	DailyUpdated   *int64   `json:"daily_updated,omitempty" db:"daily_updated"`
	DailyInvalid   *int64   `json:"daily_invalid,omitempty" db:"daily_invalid"`
	DailyFailed    *int64   `json:"daily_failed,omitempty" db:"daily_failed"`
	DailyErrorRate *float64 `json:"daily_error_rate,omitempty" db:"daily_error_rate"`
}

// DayOf returns the UTC midnight of t's UTC day.
func DayOf(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// NextDailyRow builds today's row (the UTC day of checkedAt) from the
// node's last contact and import statistics. Deltas are set only when prev
// is yesterday's row and the DWH start is unchanged (both nil counts as
// unchanged); otherwise they are nil. On a same-day re-run the caller
// passes yesterday's row as prev, not the row being replaced. stats nil
// leaves all counters nil.
func NextDailyRow(prev *DailyRow, checkedAt time.Time, lastContact *time.Time, stats *broker.ImportStats) DailyRow {
	row := DailyRow{
		Day:         DayOf(checkedAt),
		CheckedAt:   checkedAt,
		LastContact: copyTime(lastContact),
	}
	if stats == nil {
		return row
	}
	row.LastStart = copyTime(stats.Start)
	row.LastWrite = copyTime(stats.LastWrite)
	row.LastReject = copyTime(stats.LastReject)
	row.Imported = ptr(stats.Imported)
	row.Updated = ptr(stats.Updated)
	row.Invalid = ptr(stats.Invalid)
	row.Failed = ptr(stats.Failed)
	row.ErrorRate = ErrorRate(stats.Imported, stats.Updated, stats.Invalid, stats.Failed)

	if prev == nil || !prev.Day.Equal(row.Day.AddDate(0, 0, -1)) || !sameTime(prev.LastStart, stats.Start) {
		return row
	}
	if prev.Imported == nil || prev.Updated == nil || prev.Invalid == nil || prev.Failed == nil {
		return row
	}
	di := stats.Imported - *prev.Imported
	du := stats.Updated - *prev.Updated
	dv := stats.Invalid - *prev.Invalid
	df := stats.Failed - *prev.Failed
	if di < 0 || du < 0 || dv < 0 || df < 0 {
		// Counters went backwards without a new start: a reset the broker
		// did not tell us about. No sensible delta.
		return row
	}
	row.DailyImported = ptr(di)
	row.DailyUpdated = ptr(du)
	row.DailyInvalid = ptr(dv)
	row.DailyFailed = ptr(df)
	row.DailyErrorRate = ErrorRate(di, du, dv, df)
	return row
}

// ErrorRate is (invalid+failed)/(imported+updated+invalid+failed)×100,
// rounded to 2 decimal places: 100 when there are failures and no
// successes, nil when all counts are zero.
func ErrorRate(imported, updated, invalid, failed int64) *float64 {
	successes := imported + updated
	failures := invalid + failed
	switch {
	case successes == 0 && failures == 0:
		return nil
	case successes == 0:
		return ptr(100.0)
	}
	r := float64(failures) / float64(successes+failures) * 100
	return ptr(math.Round(r*100) / 100)
}

// Input is everything Evaluate needs about one node.
type Input struct {
	// Now is the evaluation time.
	Now      time.Time
	Settings Settings
	// Rows are the node's daily rows, oldest first, ending with today's
	// row (about the last 60 days are enough).
	Rows []DailyRow
	// ProductionSince is when the node first had ConsecutiveImportDays
	// import days in a row; nil if never.
	ProductionSince *time.Time
	// LastWriteFallback is the latest non-nil last write in older history,
	// used when the last row has none.
	LastWriteFallback *time.Time
	// DWHVersion is the node's dwh-j2ee version; CurrentDWHVersion the
	// configured current release.
	DWHVersion, CurrentDWHVersion string
}

// Status is the evaluation of every condition.
type Status struct {
	// Headline is the first active condition in Precedence.
	Headline Condition `json:"headline"`
	// Conditions are all active conditions in Precedence order, then
	// DWHOutdated.
	Conditions []Condition `json:"conditions"`
	// ProductionReached is true when Rows contain ConsecutiveImportDays
	// rows in a row with imports.
	ProductionReached bool `json:"production_reached"`
}

// Has reports whether c is active.
func (s Status) Has(c Condition) bool {
	for _, x := range s.Conditions {
		if x == c {
			return true
		}
	}
	return false
}

// Evaluate evaluates every condition for a node (see the package doc for
// the rules and how they differ from the seed).
func Evaluate(in Input) Status {
	set := in.Settings.WithDefaults()
	threshold := time.Duration(set.ThresholdHoursFailure) * time.Hour
	active := map[Condition]bool{}
	var st Status

	n := len(in.Rows)
	var last *DailyRow
	if n > 0 {
		last = &in.Rows[n-1]
	}

	// GAP IN MONITORING.
	if last != nil {
		if in.Now.Sub(last.CheckedAt) > 24*time.Hour {
			active[GapInMonitoring] = true
		}
		if n >= 2 && !in.Rows[n-2].Day.AddDate(0, 0, 1).Equal(last.Day) {
			active[GapInMonitoring] = true
		}
	}

	// TESTING.
	st.ProductionReached = hasImportRun(in.Rows, set.ConsecutiveImportDays)
	if n >= set.ConsecutiveImportDays && in.ProductionSince == nil && !st.ProductionReached {
		active[Testing] = true
	}

	// OFFLINE.
	if last == nil || last.LastContact == nil || in.Now.Sub(*last.LastContact) > threshold {
		active[Offline] = true
	}

	// NO IMPORTS.
	lastWrite := in.LastWriteFallback
	if last != nil && last.LastWrite != nil {
		lastWrite = last.LastWrite
	}
	if lastWrite != nil && in.Now.Sub(*lastWrite) > threshold {
		active[NoImports] = true
	}

	// Error rate.
	if last != nil && last.DailyErrorRate != nil {
		switch r := *last.DailyErrorRate; {
		case r >= ExtremeErrorRatePercent:
			active[ExtremeErrorRate] = true
		case r >= HighErrorRatePercent:
			active[HighErrorRate] = true
		case r >= LowErrorRatePercent:
			active[LowErrorRate] = true
		}
	}

	if len(active) == 0 {
		active[Online] = true
	}
	for _, c := range Precedence {
		if active[c] {
			st.Conditions = append(st.Conditions, c)
		}
	}
	st.Headline = st.Conditions[0]
	if Outdated(in.DWHVersion, in.CurrentDWHVersion) {
		st.Conditions = append(st.Conditions, DWHOutdated)
	}
	return st
}

// hasImportRun reports whether rows contain n consecutive rows with
// DailyImported > 0 (nil counts as 0).
func hasImportRun(rows []DailyRow, n int) bool {
	run := 0
	for _, r := range rows {
		if r.DailyImported != nil && *r.DailyImported > 0 {
			run++
			if run >= n {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// NormalizeVersion strips the "dwh-j2ee-" prefix and surrounding space;
// "-" and "" become "".
func NormalizeVersion(v string) string {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "dwh-j2ee-")
	v = strings.TrimSpace(v)
	if v == "-" {
		return ""
	}
	return v
}

// Outdated reports whether the node's version is older than current (PEP
// 440-like: "1.5.1rc1" < "1.5.1"). Empty or unparsable versions are not
// outdated.
func Outdated(nodeVersion, current string) bool {
	nv, cv := NormalizeVersion(nodeVersion), NormalizeVersion(current)
	if nv == "" || cv == "" {
		return false
	}
	n, ok := parseVersion(nv)
	if !ok {
		return false
	}
	c, ok := parseVersion(cv)
	if !ok {
		return false
	}
	return n.compare(c) < 0
}

// HeatBand is a heatmap colour band of a daily error rate.
type HeatBand int

// The heatmap bands.
const (
	// BandNoImports is a day without an error rate (black).
	BandNoImports HeatBand = iota
	// BandOnline is below 1 % (blue).
	BandOnline
	// BandLow is 1 % up to below 10 % (yellow).
	BandLow
	// BandExtreme is 10 % and more (red), as EXTREME ERROR RATE.
	BandExtreme
)

// Band returns the heatmap band of a daily error rate.
func Band(rate *float64) HeatBand {
	switch {
	case rate == nil:
		return BandNoImports
	case *rate >= ExtremeErrorRatePercent:
		return BandExtreme
	case *rate >= LowErrorRatePercent:
		return BandLow
	default:
		return BandOnline
	}
}

// HeatmapWeight is the seed's heatmap row weight: the sum of the older
// days' rates plus 6 × the sum of the last 7 days' (rates oldest → newest,
// nil counts 0).
func HeatmapWeight(rates []*float64) float64 {
	var w float64
	recent := len(rates) - 7
	for i, r := range rates {
		if r == nil {
			continue
		}
		if i >= recent {
			w += 6 * *r
		} else {
			w += *r
		}
	}
	return w
}

func ptr[T any](v T) *T { return &v }

func copyTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}
