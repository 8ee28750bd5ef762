package nodehealth

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-health/vigil/internal/node/broker"
)

func i64(v int64) *int64        { return &v }
func f64(v float64) *float64    { return &v }
func tp(t time.Time) *time.Time { return &t }

// now is the evaluation time of the Evaluate cases.
var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// healthy returns n consecutive daily rows ending today: contact and write
// an hour ago, 10 imports a day, error rate 0.
func healthy(n int) []DailyRow {
	rows := make([]DailyRow, n)
	today := DayOf(now)
	for i := range rows {
		day := today.AddDate(0, 0, i-n+1)
		rows[i] = DailyRow{
			Day:            day,
			CheckedAt:      day.Add(11 * time.Hour),
			LastContact:    tp(day.Add(11 * time.Hour)),
			LastWrite:      tp(day.Add(11 * time.Hour)),
			DailyImported:  i64(10),
			DailyErrorRate: f64(0),
		}
	}
	return rows
}

// withImports sets DailyImported of the rows (−1 = nil).
func withImports(rows []DailyRow, imports ...int64) []DailyRow {
	for i, v := range imports {
		if v < 0 {
			rows[i].DailyImported = nil
			continue
		}
		rows[i].DailyImported = i64(v)
	}
	return rows
}

// last applies f to the last row.
func last(rows []DailyRow, f func(r *DailyRow)) []DailyRow {
	f(&rows[len(rows)-1])
	return rows
}

func TestEvaluate(t *testing.T) {
	threshold := 72 * time.Hour
	tests := []struct {
		name       string
		in         Input
		headline   Condition
		conditions []Condition
		production bool
	}{
		{"healthy", Input{Rows: healthy(5)}, Online, []Condition{Online}, true},
		{"no rows at all", Input{}, Offline, []Condition{Offline}, false},

		// OFFLINE at the threshold.
		{"contact exactly 72h ago", Input{Rows: last(healthy(5), func(r *DailyRow) { r.LastContact = tp(now.Add(-threshold)) })},
			Online, []Condition{Online}, true},
		{"contact 72h+1s ago", Input{Rows: last(healthy(5), func(r *DailyRow) { r.LastContact = tp(now.Add(-threshold - time.Second)) })},
			Offline, []Condition{Offline}, true},
		{"contact 72h29m ago (seed rounded to 72h)", Input{Rows: last(healthy(5), func(r *DailyRow) { r.LastContact = tp(now.Add(-threshold - 29*time.Minute)) })},
			Offline, []Condition{Offline}, true},
		{"no last contact", Input{Rows: last(healthy(5), func(r *DailyRow) { r.LastContact = nil })},
			Offline, []Condition{Offline}, true},
		{"custom 24h: exactly 24h", Input{Settings: Settings{ThresholdHoursFailure: 24}, Rows: last(healthy(5), func(r *DailyRow) { r.LastContact = tp(now.Add(-24 * time.Hour)) })},
			Online, []Condition{Online}, true},
		{"custom 24h: 24h+1s", Input{Settings: Settings{ThresholdHoursFailure: 24}, Rows: last(healthy(5), func(r *DailyRow) { r.LastContact = tp(now.Add(-24*time.Hour - time.Second)) })},
			Offline, []Condition{Offline}, true},
		{"custom 100h: 99h", Input{Settings: Settings{ThresholdHoursFailure: 100}, Rows: last(healthy(5), func(r *DailyRow) { r.LastContact = tp(now.Add(-99 * time.Hour)) })},
			Online, []Condition{Online}, true},
		{"threshold 0 falls back to 72h", Input{Settings: Settings{ThresholdHoursFailure: 0}, Rows: last(healthy(5), func(r *DailyRow) { r.LastContact = tp(now.Add(-71 * time.Hour)) })},
			Online, []Condition{Online}, true},

		// NO IMPORTS.
		{"write exactly 72h ago", Input{Rows: last(healthy(5), func(r *DailyRow) { r.LastWrite = tp(now.Add(-threshold)) })},
			Online, []Condition{Online}, true},
		{"write 72h+1s ago", Input{Rows: last(healthy(5), func(r *DailyRow) { r.LastWrite = tp(now.Add(-threshold - time.Second)) })},
			NoImports, []Condition{NoImports}, true},
		{"no write today, old fallback", Input{LastWriteFallback: tp(now.Add(-100 * time.Hour)), Rows: last(healthy(5), func(r *DailyRow) { r.LastWrite = nil })},
			NoImports, []Condition{NoImports}, true},
		{"no write today, recent fallback", Input{LastWriteFallback: tp(now.Add(-10 * time.Hour)), Rows: last(healthy(5), func(r *DailyRow) { r.LastWrite = nil })},
			Online, []Condition{Online}, true},
		{"never written: not triggered", Input{Rows: last(healthy(5), func(r *DailyRow) { r.LastWrite = nil })},
			Online, []Condition{Online}, true},
		{"today's write wins over fallback", Input{LastWriteFallback: tp(now.Add(-100 * time.Hour)), Rows: healthy(5)},
			Online, []Condition{Online}, true},
		{"custom 24h: write 25h ago", Input{Settings: Settings{ThresholdHoursFailure: 24}, Rows: last(healthy(5), func(r *DailyRow) { r.LastWrite = tp(now.Add(-25 * time.Hour)) })},
			NoImports, []Condition{NoImports}, true},

		// Error rate bands.
		{"rate nil", Input{Rows: last(healthy(5), func(r *DailyRow) { r.DailyErrorRate = nil })}, Online, []Condition{Online}, true},
		{"rate 0.99", Input{Rows: last(healthy(5), func(r *DailyRow) { r.DailyErrorRate = f64(0.99) })}, Online, []Condition{Online}, true},
		{"rate 1", Input{Rows: last(healthy(5), func(r *DailyRow) { r.DailyErrorRate = f64(1) })}, LowErrorRate, []Condition{LowErrorRate}, true},
		{"rate 4.99", Input{Rows: last(healthy(5), func(r *DailyRow) { r.DailyErrorRate = f64(4.99) })}, LowErrorRate, []Condition{LowErrorRate}, true},
		{"rate 5", Input{Rows: last(healthy(5), func(r *DailyRow) { r.DailyErrorRate = f64(5) })}, HighErrorRate, []Condition{HighErrorRate}, true},
		{"rate 9.99", Input{Rows: last(healthy(5), func(r *DailyRow) { r.DailyErrorRate = f64(9.99) })}, HighErrorRate, []Condition{HighErrorRate}, true},
		{"rate 10", Input{Rows: last(healthy(5), func(r *DailyRow) { r.DailyErrorRate = f64(10) })}, ExtremeErrorRate, []Condition{ExtremeErrorRate}, true},
		{"rate 100", Input{Rows: last(healthy(5), func(r *DailyRow) { r.DailyErrorRate = f64(100) })}, ExtremeErrorRate, []Condition{ExtremeErrorRate}, true},
		{"yesterday's rate does not count", Input{Rows: func() []DailyRow {
			rows := healthy(5)
			rows[3].DailyErrorRate = f64(50)
			return rows
		}()}, Online, []Condition{Online}, true},

		// TESTING: consecutive import days (default N = 3).
		{"run of N at the start", Input{Rows: withImports(healthy(6), 1, 1, 1, 0, 0, 0)}, Online, []Condition{Online}, true},
		{"run of N at the end", Input{Rows: withImports(healthy(6), 0, 0, 0, 5, 5, 5)}, Online, []Condition{Online}, true},
		{"runs of N-1 only", Input{Rows: withImports(healthy(6), 1, 1, 0, 1, 1, 0)}, Testing, []Condition{Testing}, false},
		{"run broken by nil", Input{Rows: withImports(healthy(5), 1, 1, -1, 1, 1)}, Testing, []Condition{Testing}, false},
		{"run broken by 0", Input{Rows: withImports(healthy(5), 1, 1, 0, 1, 1)}, Testing, []Condition{Testing}, false},
		{"no imports ever, exactly N rows", Input{Rows: withImports(healthy(3), 0, 0, 0)}, Testing, []Condition{Testing}, false},
		{"fewer rows than N: not testing", Input{Rows: withImports(healthy(2), 0, 0)}, Online, []Condition{Online}, false},
		{"production reached earlier", Input{ProductionSince: tp(now.AddDate(0, -6, 0)), Rows: withImports(healthy(5), 0, 0, 0, 0, 0)},
			Online, []Condition{Online}, false},
		{"custom N=2: run of 2", Input{Settings: Settings{ConsecutiveImportDays: 2}, Rows: withImports(healthy(4), 0, 1, 1, 0)}, Online, []Condition{Online}, true},
		{"custom N=5: run of 4", Input{Settings: Settings{ConsecutiveImportDays: 5}, Rows: withImports(healthy(6), 0, 1, 1, 1, 1, 0)}, Testing, []Condition{Testing}, false},

		// GAP IN MONITORING.
		{"missing calendar day", Input{Rows: func() []DailyRow {
			rows := healthy(5)
			return append(rows[:3:3], rows[4]) // day −1 missing
		}()}, GapInMonitoring, []Condition{GapInMonitoring}, true},
		{"last check exactly 24h ago", Input{Now: now, Rows: last(healthy(5), func(r *DailyRow) { r.CheckedAt = now.Add(-24 * time.Hour) })},
			Online, []Condition{Online}, true},
		{"last check 24h+1s ago", Input{Rows: last(healthy(5), func(r *DailyRow) { r.CheckedAt = now.Add(-24*time.Hour - time.Second) })},
			GapInMonitoring, []Condition{GapInMonitoring}, true},
		{"single row: no gap", Input{Rows: healthy(1)}, Online, []Condition{Online}, false},

		// Several at once: the seed showed only the first.
		{"testing and offline", Input{Rows: last(withImports(healthy(5), 0, 0, 0, 0, 0), func(r *DailyRow) { r.LastContact = tp(now.Add(-100 * time.Hour)) })},
			Testing, []Condition{Testing, Offline}, false},
		{"gap hides nothing", Input{
			LastWriteFallback: tp(now.Add(-200 * time.Hour)),
			DWHVersion:        "1.5.0", CurrentDWHVersion: "1.5.1",
			Rows: func() []DailyRow {
				rows := healthy(5)
				rows = append(rows[:3:3], rows[4])
				return last(rows, func(r *DailyRow) {
					r.LastContact = tp(now.Add(-100 * time.Hour))
					r.LastWrite = nil
					r.DailyErrorRate = f64(12.5)
				})
			}(),
		}, GapInMonitoring, []Condition{GapInMonitoring, Offline, NoImports, ExtremeErrorRate, DWHOutdated}, true},
		{"online but outdated", Input{DWHVersion: "dwh-j2ee-1.5.1rc1", CurrentDWHVersion: "1.5.1", Rows: healthy(5)},
			Online, []Condition{Online, DWHOutdated}, true},
		{"current version", Input{DWHVersion: "1.5.1", CurrentDWHVersion: "1.5.1", Rows: healthy(5)},
			Online, []Condition{Online}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.Now = now
			got := Evaluate(in)
			require.Equal(t, tt.headline, got.Headline)
			require.Equal(t, tt.conditions, got.Conditions)
			require.Equal(t, tt.production, got.ProductionReached)
			for _, c := range tt.conditions {
				require.True(t, got.Has(c))
			}
		})
	}
}

func TestNextDailyRow(t *testing.T) {
	start := tp(time.Date(2026, 1, 2, 8, 0, 0, 0, time.UTC))
	restart := tp(time.Date(2026, 3, 9, 23, 0, 0, 0, time.UTC))
	checked := time.Date(2026, 3, 10, 6, 0, 0, 0, time.UTC)
	contact := tp(checked.Add(-time.Minute))
	stats := func(s *time.Time, imp, upd, inv, fail int64) *broker.ImportStats {
		return &broker.ImportStats{Start: s, LastWrite: tp(checked.Add(-time.Hour)), Imported: imp, Updated: upd, Invalid: inv, Failed: fail}
	}
	prevRow := func(day time.Time, s *time.Time, imp, upd, inv, fail int64) *DailyRow {
		return &DailyRow{Day: day, CheckedAt: day.Add(6 * time.Hour), LastStart: s, Imported: i64(imp), Updated: i64(upd), Invalid: i64(inv), Failed: i64(fail)}
	}
	yesterday := DayOf(checked).AddDate(0, 0, -1)

	type deltas struct {
		imp, upd, inv, fail int64
		rate                *float64
	}
	tests := []struct {
		name    string
		prev    *DailyRow
		checked time.Time
		stats   *broker.ImportStats
		day     time.Time
		want    *deltas // nil: no deltas
	}{
		{"first row", nil, checked, stats(start, 100, 10, 1, 0), DayOf(checked), nil},
		{"yesterday, same start", prevRow(yesterday, start, 90, 10, 0, 0), checked, stats(start, 100, 10, 1, 0), DayOf(checked), &deltas{10, 0, 1, 0, f64(9.09)}},
		{"no change since yesterday", prevRow(yesterday, start, 100, 10, 1, 0), checked, stats(start, 100, 10, 1, 0), DayOf(checked), &deltas{0, 0, 0, 0, nil}},
		{"both starts unknown count as equal", prevRow(yesterday, nil, 90, 10, 0, 0), checked, stats(nil, 100, 10, 1, 0), DayOf(checked), &deltas{10, 0, 1, 0, f64(9.09)}},
		{"start appeared", prevRow(yesterday, nil, 90, 10, 0, 0), checked, stats(start, 100, 10, 1, 0), DayOf(checked), nil},
		{"DWH restart: start changed", prevRow(yesterday, start, 900, 10, 0, 0), checked, stats(restart, 5, 0, 0, 0), DayOf(checked), nil},
		{"counters went back without new start", prevRow(yesterday, start, 900, 10, 0, 0), checked, stats(start, 5, 0, 0, 0), DayOf(checked), nil},
		{"gap: prev two days ago", prevRow(yesterday.AddDate(0, 0, -1), start, 90, 10, 0, 0), checked, stats(start, 100, 10, 1, 0), DayOf(checked), nil},
		{"prev is today's row (caller error)", prevRow(DayOf(checked), start, 90, 10, 0, 0), checked, stats(start, 100, 10, 1, 0), DayOf(checked), nil},
		{"prev without counters", &DailyRow{Day: yesterday, LastStart: start}, checked, stats(start, 100, 10, 1, 0), DayOf(checked), nil},
		{"same-day rerun later: still against yesterday", prevRow(yesterday, start, 90, 10, 0, 0), checked.Add(17 * time.Hour), stats(start, 120, 10, 1, 1), DayOf(checked), &deltas{30, 0, 1, 1, f64(6.25)}},
		{"year change Dec 31 -> Jan 1", prevRow(time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC), start, 50, 0, 0, 0),
			time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC), stats(start, 60, 0, 0, 0), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), &deltas{10, 0, 0, 0, f64(0)}},
		{"year change with a gap (Dec 30 -> Jan 1)", prevRow(time.Date(2025, 12, 30, 0, 0, 0, 0, time.UTC), start, 50, 0, 0, 0),
			time.Date(2026, 1, 1, 0, 5, 0, 0, time.UTC), stats(start, 60, 0, 0, 0), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), nil},
		{"local time late evening is the next UTC day", prevRow(yesterday, start, 90, 10, 0, 0),
			time.Date(2026, 3, 9, 23, 30, 0, 0, time.FixedZone("UTC-3", -3*3600)), stats(start, 100, 10, 0, 0), DayOf(checked), &deltas{10, 0, 0, 0, f64(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row := NextDailyRow(tt.prev, tt.checked, contact, tt.stats)
			require.Equal(t, tt.day, row.Day)
			require.Equal(t, time.UTC, row.Day.Location())
			require.True(t, row.CheckedAt.Equal(tt.checked))
			require.Equal(t, contact, row.LastContact)
			require.Equal(t, tt.stats.Start, row.LastStart)
			require.Equal(t, tt.stats.LastWrite, row.LastWrite)
			require.Equal(t, tt.stats.Imported, *row.Imported)
			require.Equal(t, tt.stats.Failed, *row.Failed)
			require.Equal(t, ErrorRate(tt.stats.Imported, tt.stats.Updated, tt.stats.Invalid, tt.stats.Failed), row.ErrorRate)
			if tt.want == nil {
				require.Nil(t, row.DailyImported)
				require.Nil(t, row.DailyUpdated)
				require.Nil(t, row.DailyInvalid)
				require.Nil(t, row.DailyFailed)
				require.Nil(t, row.DailyErrorRate)
				return
			}
			require.Equal(t, tt.want.imp, *row.DailyImported)
			require.Equal(t, tt.want.upd, *row.DailyUpdated)
			require.Equal(t, tt.want.inv, *row.DailyInvalid)
			require.Equal(t, tt.want.fail, *row.DailyFailed)
			require.Equal(t, tt.want.rate, row.DailyErrorRate)
		})
	}

	t.Run("no stats", func(t *testing.T) {
		row := NextDailyRow(prevRow(yesterday, start, 1, 1, 1, 1), checked, contact, nil)
		require.Equal(t, DailyRow{Day: DayOf(checked), CheckedAt: checked, LastContact: contact}, row)
	})
	t.Run("no aliasing of inputs", func(t *testing.T) {
		c := *contact
		s := stats(tp(*start), 1, 0, 0, 0)
		row := NextDailyRow(nil, checked, &c, s)
		c = c.Add(time.Hour)
		*s.Start = s.Start.Add(time.Hour)
		require.Equal(t, *contact, *row.LastContact)
		require.Equal(t, *start, *row.LastStart)
	})
}

func TestErrorRate(t *testing.T) {
	tests := []struct {
		name                         string
		imported, updated, inv, fail int64
		want                         *float64
	}{
		{"all zero", 0, 0, 0, 0, nil},
		{"invalid only", 0, 0, 3, 0, f64(100)},
		{"failed only", 0, 0, 0, 5, f64(100)},
		{"successes only", 10, 5, 0, 0, f64(0)},
		{"updated only", 0, 7, 0, 0, f64(0)},
		{"just under 1 %", 100, 0, 1, 0, f64(0.99)},
		{"exactly 1 %", 99, 0, 1, 0, f64(1)},
		{"exactly 5 %", 90, 5, 3, 2, f64(5)},
		{"exactly 10 %", 45, 0, 0, 5, f64(10)},
		{"rounded down", 2, 0, 1, 0, f64(33.33)},
		{"rounded up", 1, 0, 2, 0, f64(66.67)},
		{"broker example", 583, 0, 198, 0, f64(25.35)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, ErrorRate(tt.imported, tt.updated, tt.inv, tt.fail))
		})
	}
}

func TestSettings(t *testing.T) {
	tests := []struct {
		name string
		in   Settings
		want Settings
	}{
		{"zero", Settings{}, Settings{72, 3, 1}},
		{"negative", Settings{-1, -2, -3}, Settings{72, 3, 1}},
		{"custom", Settings{24, 5, 2}, Settings{24, 5, 2}},
		{"mixed", Settings{ThresholdHoursFailure: 48}, Settings{48, 3, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.in.WithDefaults())
		})
	}
	require.Equal(t, Settings{72, 3, 1}, DefaultSettings())
	require.Equal(t, 72*time.Hour, Settings{}.Threshold())
	require.Equal(t, 14*24*time.Hour, Settings{NotificationIntervalWeeks: 2}.NotificationInterval())
}

func TestVersions(t *testing.T) {
	tests := []struct {
		node, current string
		outdated      bool
	}{
		{"1.5.1rc1", "1.5.1", true},
		{"1.5.1-rc.1", "1.5.1", true},
		{"1.5.1", "1.5.1", false},
		{"1.5", "1.5.0", false},
		{"1.6.0", "1.5.1", false},
		{"1.5.0", "1.5.1", true},
		{"1.5.9", "1.5.10", true},
		{"1.5.10", "1.5.9", false},
		{"dwh-j2ee-1.5.0", "1.5.1", true},
		{"dwh-j2ee-1.5.1", "dwh-j2ee-1.5.1", false},
		{" 1.4 ", "1.5", true},
		{"v1.4", "1.5", true},
		{"1.5.1a1", "1.5.1b1", true},
		{"1.5.1b2", "1.5.1rc1", true},
		{"1.5.1rc2", "1.5.1rc10", true},
		{"1.5.1.dev1", "1.5.1a1", true},
		{"1.5.1.post1", "1.5.1", false},
		{"1.5.1", "1.5.1.post1", true},
		{"1.5.1+local.7", "1.5.1", false},
		{"1.5.1RC1", "1.5.1", true},
		{"-", "1.5.1", false},
		{"", "1.5.1", false},
		{"1.5.0", "", false},
		{"garbage", "1.5.1", false},
		{"1.5.0", "garbage", false},
		{"1.5.x", "1.6", false},
	}
	for _, tt := range tests {
		t.Run(tt.node+" vs "+tt.current, func(t *testing.T) {
			require.Equal(t, tt.outdated, Outdated(tt.node, tt.current))
		})
	}
}

func TestNormalizeVersion(t *testing.T) {
	for in, want := range map[string]string{
		"dwh-j2ee-1.5.1": "1.5.1", " dwh-j2ee-1.5.1 ": "1.5.1", "1.5.1": "1.5.1", "-": "", " - ": "", "": "",
	} {
		require.Equal(t, want, NormalizeVersion(in), in)
	}
}

func TestBand(t *testing.T) {
	tests := []struct {
		rate *float64
		want HeatBand
	}{
		{nil, BandNoImports},
		{f64(0), BandOnline},
		{f64(0.99), BandOnline},
		{f64(1), BandLow},
		{f64(5), BandLow},
		{f64(9.99), BandLow},
		{f64(10), BandExtreme},
		{f64(100), BandExtreme},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, Band(tt.rate), "%v", tt.rate)
	}
}

func TestHeatmapWeight(t *testing.T) {
	nine := func(vs ...*float64) []*float64 { return vs }
	tests := []struct {
		name  string
		rates []*float64
		want  float64
	}{
		{"empty", nil, 0},
		{"all nil", nine(nil, nil, nil), 0},
		{"older days count once", nine(f64(5), f64(3), f64(0), f64(0), f64(0), f64(0), f64(0), f64(0), f64(0)), 8},
		{"last 7 days count 6x", nine(f64(0), f64(0), f64(1), f64(0), f64(0), f64(0), f64(0), f64(0), f64(2)), 18},
		{"boundary: 8th newest is old", nine(f64(0), f64(1), f64(1), f64(0), f64(0), f64(0), f64(0), f64(0), f64(0)), 7},
		{"fewer than 7 days: all recent", nine(f64(1), nil, f64(1)), 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.InDelta(t, tt.want, HeatmapWeight(tt.rates), 1e-9)
		})
	}
}

func TestPrecedence(t *testing.T) {
	require.Equal(t, []Condition{GapInMonitoring, Testing, Offline, NoImports, ExtremeErrorRate, HighErrorRate, LowErrorRate, Online}, Precedence)
	require.ElementsMatch(t, []Condition{Offline, NoImports, DWHOutdated, ExtremeErrorRate}, MailConditions)
}
